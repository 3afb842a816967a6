"""Issue 12 item 7: fault injection in the spirit of SQLite's own testing.

Every store in `subjects.SUBJECTS` x every fault: the damage is detected, named in one line,
nothing is deleted or rewritten, nothing is served or loaded from the damaged file, and the
rest keeps working. Disk-full and stalled-lock faults, which need a write or a second process,
are in test_write_faults.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.subjects import SUBJECTS


def _truncate_to_zero(path: Path) -> None:
    path.write_bytes(b"")


def _truncate_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path, start: int, count: int) -> None:
    data = bytearray(path.read_bytes())
    for i in range(start, min(start + count, len(data))):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def _flip_header(path: Path) -> None:
    _flip(path, 0, 16)


def _flip_middle(path: Path) -> None:
    _flip(path, path.stat().st_size // 2, 64)


def _delete(path: Path) -> None:
    path.unlink()


def _symlink_elsewhere(path: Path) -> None:
    """Replaced by a symlink to other bytes (the original reversed) outside the store."""
    elsewhere = path.parent.parent / f"elsewhere-{path.name}"
    elsewhere.write_bytes(path.read_bytes()[::-1])
    path.unlink()
    path.symlink_to(elsewhere)


FAULTS: dict[str, Callable[[Path], None]] = {
    "truncate-0": _truncate_to_zero, "truncate-half": _truncate_half,
    "flip-header": _flip_header, "flip-middle": _flip_middle, "delete": _delete,
    "symlink": _symlink_elsewhere,
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("store", sorted(SUBJECTS))
def test_damage_is_detected_named_and_contained(store: str, fault: str,
                                                tmp_path: Path) -> None:
    subject = SUBJECTS[store](tmp_path / "store")
    bystanders = {p: p.read_bytes() for p in subject.bystanders()}
    FAULTS[fault](subject.target)
    damaged = subject.target.read_bytes() if subject.target.exists() else None

    message = subject.detect()

    assert "\n" not in message.strip() and "Traceback" not in message
    assert subject.target.name in message or subject.target.stem in message, message
    assert {p: p.read_bytes() for p in bystanders if p.exists()} == bystanders  # nothing lost
    if damaged is not None:  # the evidence is left as it was found
        assert subject.target.read_bytes() == damaged
    else:
        assert not subject.target.exists()
    subject.rest_works()
