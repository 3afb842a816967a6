"""Issue 12 item 2 (registry side) and the lesser finding on re-registration: promotion proves
the artifact loads before the stage changes; re-registering bytes whose stored copy is damaged
heals the object."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from causalcast.registry import ArtifactError, Lineage, Registry
from causalcast.weights import parse, serialize
from causalcast.weights_header import WeightsError, check_weights_header

LINEAGE = Lineage("c" * 64, {"lookback": 8}, {"n_folds": 2})
GATES: list[str] = []  # no gates: only the artifact check stands between candidate and live


def _weights(seed: int) -> bytes:
    gen = torch.Generator().manual_seed(seed)
    return serialize({"a": torch.randn(4, 3, generator=gen), "b": torch.arange(5)},
                     {"seed": seed})[0]


def _damage(reg: Registry, digest: str, data: bytes) -> Path:
    path = reg.artifacts.path(digest)
    os.chmod(path, 0o644)
    path.write_bytes(data)
    return path


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    with Registry.open(tmp_path) as registry:
        yield registry


def test_header_check_agrees_with_the_torch_loader_on_valid_and_damaged_bytes() -> None:
    data = _weights(3)
    assert check_weights_header(data) == parse(data)[1] == {"seed": 3}
    n = int.from_bytes(data[:8], "little")
    damaged = {
        "empty": b"", "truncated": data[: len(data) - 7], "half": data[: len(data) // 2],
        "length": (len(data) * 4).to_bytes(8, "little") + data[8:],
        "header json": data[:8] + b"\xff" + data[9:],
        "extra data": data + b"\0" * 8,
        "format": data.replace(b"causalcast-weights-v1", b"causalcast-weights-v9"),
        "not weights": b"x" * 100,
    }
    for what, bad in damaged.items():
        with pytest.raises(WeightsError):
            check_weights_header(bad, what)
        with pytest.raises(Exception):  # noqa: B017 - the loader agrees: it cannot load these
            parse(bad)
    assert n > 0


def test_promotion_refuses_an_artifact_that_cannot_be_loaded(reg: Registry) -> None:
    good = reg.register_version("m", _weights(1), {}, {}, LINEAGE)
    reg.promote(good.ref, gates=GATES)
    garbage = reg.register_version("m", b"not a model", {}, {}, LINEAGE)
    with pytest.raises(ArtifactError, match=r"m:2 artifact.*cannot be loaded, stage unchanged"):
        reg.promote(garbage.ref, gates=GATES)
    flipped = reg.register_version("m", _weights(2), {}, {}, LINEAGE)
    data = bytearray(_weights(2))
    data[-3] ^= 0xFF
    _damage(reg, flipped.artifact_sha256, bytes(data))
    with pytest.raises(ArtifactError, match=r"m:3.*corrupt.*stage unchanged"):
        reg.promote(flipped.ref, gates=GATES)
    assert reg.production("m").version_id == good.version_id  # nothing moved
    assert [v.stage for v in reg.versions("m")] == ["production", "candidate", "candidate"]
    assert reg.promote(garbage.ref, stage="archived").version.stage == "archived"


def test_reregistering_bytes_heals_a_damaged_stored_copy(reg: Registry) -> None:
    data = _weights(7)
    first = reg.register_version("m", data, {}, {}, LINEAGE)
    for damage in (b"\0" * len(data), b""):  # same size flipped, then truncated to 0
        _damage(reg, first.artifact_sha256, damage)
        assert reg.artifacts.check(first.artifact_sha256) is not None
        again = reg.register_version("m", data, {}, {}, LINEAGE)
        assert again.artifact_sha256 == first.artifact_sha256
        assert reg.load_artifact(first) == data and reg.load_artifact(again) == data
        assert reg.verify().ok
