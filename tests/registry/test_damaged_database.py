"""Issue 12 defects 1 and 3: a registry never trusts a database it cannot prove.

A missing, empty or damaged ``registry.db`` is refused with one line naming the file and the
problem; read-only commands never create or recreate a registry; `verify` reports damage as
a problem (exit 1) and `gc` never deletes objects against a database it cannot read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.registry import Lineage, NotFoundError, Registry, RegistryError

runner = CliRunner()
LINEAGE = Lineage("c" * 64, {"lookback": 8}, {"n_folds": 2})


def _registry_with_versions(home: Path, n: int = 3) -> list[str]:
    with Registry.open(home) as reg:
        return [reg.register_version("m", bytes([i]) * 4096, {}, {}, LINEAGE).artifact_sha256
                for i in range(n)]


def _objects(home: Path) -> list[Path]:
    return sorted(p for p in (home / "registry" / "objects").rglob("*") if p.is_file())


def _cli(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["registry", *args, "--home", str(home)])
    return result.exit_code, result.output


def _one_line_naming(output: str, *words: str) -> None:
    """One message (rich may wrap it on screen) that names every word; no traceback."""
    assert "Traceback" not in output
    assert output.count("error:") + output.count("problem:") == 1, output
    joined = output.replace("\n", "")
    assert all(w in joined for w in words), output


# ---------------------------------------------------------------- defect 1: empty database
def test_an_empty_database_is_refused_not_recreated(tmp_path: Path) -> None:
    _registry_with_versions(tmp_path)
    db = tmp_path / "registry" / "registry.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"")
    objects = _objects(tmp_path)
    for create in (False, True):
        with pytest.raises(RegistryError, match=r"registry\.db.*empty"):
            Registry.open(tmp_path, create=create)
    assert db.stat().st_size == 0  # nothing recreated
    for command in (["list"], ["verify"], ["gc", "--grace", "0"], ["list", "--runs"]):
        code, out = _cli(tmp_path, *command)
        assert code in (1, 2), (command, out)
        _one_line_naming(out, "registry.db", "empty")
    assert _objects(tmp_path) == objects  # gc deleted nothing
    assert db.stat().st_size == 0


def test_read_only_commands_never_create_a_registry(tmp_path: Path) -> None:
    for command in (["list"], ["verify"], ["gc"]):
        code, out = _cli(tmp_path / "nothing", *command)
        assert code == 2, out
        _one_line_naming(out, "registry")
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(NotFoundError):
        Registry.open(tmp_path / "nothing", create=False)


def test_objects_without_a_database_are_refused_even_when_creating(tmp_path: Path) -> None:
    """A lost database next to existing objects is not 'an empty place': recreating it would
    let gc delete every object. `registry recover` is the way back."""
    _registry_with_versions(tmp_path)
    db = tmp_path / "registry" / "registry.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with pytest.raises(RegistryError, match="recover"):
        Registry.open(tmp_path)
    assert not db.exists()


# ---------------------------------------------------------------- defect 3: damaged database
def _damage(db: Path, how: str) -> None:
    data = db.read_bytes()
    if how == "header":
        db.write_bytes(b"\xff" * 16 + data[16:])
    elif how == "middle":
        # From the start of the page in the middle of the file (its b-tree header and first
        # cells): bytes flipped only in a page's unused tail would damage no data at all.
        page = int.from_bytes(data[16:18], "big") or 65536
        start = (len(data) // 2) // page * page
        middle = bytearray(data)
        for i in range(start, start + 2048):
            middle[i] ^= 0xA5
        db.write_bytes(bytes(middle))
    elif how == "half":
        db.write_bytes(data[: len(data) // 2])
    else:
        raise AssertionError(how)


def _checkpointed_registry(home: Path) -> Path:
    """A registry whose content is all in the main file (no WAL), as after a clean close."""
    _registry_with_versions(home, 40)
    db = home / "registry" / "registry.db"
    import sqlite3

    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


@pytest.mark.parametrize("how", ["header", "middle", "half"])
def test_a_damaged_database_is_named_in_one_line_never_a_traceback(
        tmp_path: Path, how: str) -> None:
    db = _checkpointed_registry(tmp_path)
    _damage(db, how)
    damaged = db.read_bytes()
    objects = _objects(tmp_path)
    with pytest.raises(RegistryError, match=r"registry\.db"):
        Registry.open(tmp_path, create=False)
    code, out = _cli(tmp_path, "verify")
    assert code == 1, out  # damage is a problem verify found
    _one_line_naming(out, "registry.db")
    for command in (["list"], ["list", "--runs"], ["gc", "--grace", "0"], ["show", "m:1"]):
        code, out = _cli(tmp_path, *command)
        assert code == 2, (command, out)
        _one_line_naming(out, "registry.db")
    assert _objects(tmp_path) == objects
    assert db.read_bytes() == damaged  # nothing rewritten
    assert os.path.getsize(db) == len(damaged)


def test_a_reader_waits_for_a_registry_being_created(tmp_path: Path) -> None:
    """Creation runs under the registry lock; a reader that finds the file before its tables
    waits for the lock instead of calling the registry damaged or empty."""
    import sqlite3
    import threading
    import time
    from contextlib import nullcontext

    from filelock import FileLock

    from causalcast.registry import SQLiteStore

    root = tmp_path / "registry"
    root.mkdir()
    creator = FileLock(str(root / "registry.lock"))
    creator.acquire()
    con = sqlite3.connect(root / "registry.db", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")  # the file exists, with a header, no tables
    seen: dict = {}

    def reader() -> None:
        try:
            with Registry.open(tmp_path, create=False) as reg:
                seen["versions"] = reg.versions()
        except Exception as exc:
            seen["error"] = exc

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive() and not seen  # waiting for the creator, not failing
    SQLiteStore(root / "registry.db", setup_lock=nullcontext).close()  # the creator migrates
    con.close()
    creator.release()
    thread.join(timeout=30)
    assert seen == {"versions": []}


def test_a_creation_killed_before_its_tables_is_not_read_as_a_registry(tmp_path: Path) -> None:
    import sqlite3

    root = tmp_path / "registry"
    root.mkdir()
    con = sqlite3.connect(root / "registry.db", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    with pytest.raises(NotFoundError, match="creation was interrupted"):
        Registry.open(tmp_path, create=False)
    with Registry.open(tmp_path) as reg:  # a writer finishes the creation: nothing to lose
        assert reg.meta.schema_version() >= 1
