"""Issue 12 item 7, the faults that strike a write: a full disk and a lock holder that never
lets go. Each is detected, named in one line, changes nothing stored, and once it is gone the
store works again.

A full disk is injected where Python writes (``OSError(ENOSPC)`` from the file write) and, for
SQLite, with ``PRAGMA max_page_count`` (SQLite then fails exactly as on a full disk,
``SQLITE_FULL``); a real small tmpfs would need mount privileges the test machines lack.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.registry import BusyError, Registry, RegistryError
from causalcast.training.checkpoint import POINTER, TrainState, restore_checkpoint
from tests.faults.subjects import LINEAGE, Checkpoint, one_line, weights

_REAL_FDOPEN = os.fdopen


class _FullDisk:
    """A file object whose write fails like a full disk."""

    def __init__(self, fd: int) -> None:
        self._handle = _REAL_FDOPEN(fd, "wb")

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


@contextmanager
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While active, every `causalcast.io` atomic write fails with ENOSPC at its write call
    (artifacts, checkpoints, pointers: all crash-safe writes go through it)."""
    import causalcast.io as io_module

    def fdopen(fd: int, mode: str = "r", *args: object, **kwargs: object) -> object:
        return _FullDisk(fd) if mode == "wb" else _REAL_FDOPEN(fd, mode, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(io_module.os, "fdopen", fdopen)
        yield


def _state(reg: Registry) -> tuple:
    return ([(v.ref, v.artifact_sha256) for v in reg.versions()], sorted(reg.artifacts.digests()),
            reg.artifacts.temp_files())


def test_a_full_disk_refuses_an_artifact_and_registers_nothing(tmp_path: Path,
                                                                monkeypatch) -> None:
    with Registry.open(tmp_path) as reg:
        reg.register_version("m", weights(1), {}, {}, LINEAGE)
        before = _state(reg)
        with full_disk(monkeypatch), pytest.raises(RegistryError) as refused:
            reg.register_version("m", weights(2), {}, {}, LINEAGE)
        message = str(refused.value)
        assert "\n" not in message and "No space left on device" in message
        assert "objects" in message and "nothing stored" in message
        assert _state(reg) == before  # no version, no object, no temporary file
        assert reg.register_version("m", weights(2), {}, {}, LINEAGE).version == 2
        assert reg.verify().ok


def test_a_full_database_refuses_the_write_and_changes_nothing(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as reg:
        reg.register_version("m", weights(1), {}, {}, LINEAGE)
        before = [(v.ref, v.stage) for v in reg.versions()]
        conn = reg.meta._conn  # SQLite's own disk-full path: no page may be added
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(RegistryError) as refused:
            for i in range(50):  # the first write that needs a new page fails
                reg.register_version("m", weights(100 + i), {"pad": "x" * 4000}, {}, LINEAGE)
        message = str(refused.value)
        assert "\n" not in message and "registry.db" in message and "full" in message
        assert [(v.ref, v.stage) for v in reg.versions()][: len(before)] == before
        conn.execute("PRAGMA max_page_count = 1073741823")
        count = len(reg.versions())
        reg.register_version("m", weights(999), {}, {}, LINEAGE)
        assert len(reg.versions()) == count + 1 and reg.meta.check_integrity() == []


def test_a_checkpoint_write_on_a_full_disk_leaves_the_previous_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from causalcast.training.checkpoint import save_checkpoint

    subject = Checkpoint(tmp_path)
    pointer = (tmp_path / POINTER).read_bytes()
    files = {p: p.read_bytes() for p in tmp_path.iterdir()}
    model, opt = Checkpoint._parts(3)
    with full_disk(monkeypatch), pytest.raises(OSError) as refused:
        save_checkpoint(tmp_path, model=model, optimizer=opt, scheduler=None,
                        state=TrainState(epoch=3), best=None, run_key="run")
    assert refused.value.errno == errno.ENOSPC
    assert (tmp_path / POINTER).read_bytes() == pointer
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == files  # no temp file left
    state, _ = restore_checkpoint(tmp_path, model=model, optimizer=opt, scheduler=None,
                                  run_key="run")
    assert state.epoch == 2 and all(torch.equal(v, subject.saved[1][k])
                                    for k, v in model.state_dict().items())


HOLD_FILE_LOCK = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1]); lock.acquire(); print("held", flush=True); time.sleep(120)
"""
HOLD_DB_LOCK = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None); con.execute("BEGIN IMMEDIATE")
print("held", flush=True); time.sleep(120)
"""


def _hold(script: str, path: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", script, str(path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("lock", ["registry.lock", "registry.db"])
def test_a_lock_held_forever_gives_one_clear_line_after_the_timeout(tmp_path: Path,
                                                                     lock: str) -> None:
    with Registry.open(tmp_path) as reg:
        reg.register_version("m", weights(1), {}, {}, LINEAGE)
    holder = _hold(HOLD_FILE_LOCK if lock == "registry.lock" else HOLD_DB_LOCK,
                   tmp_path / "registry" / lock)
    try:
        with Registry.open(tmp_path, busy_timeout_s=0.5) as reg:
            started = time.monotonic()
            with pytest.raises(BusyError) as stalled:
                reg.register_version("m", weights(2), {}, {}, LINEAGE)
            assert time.monotonic() - started < 10
            message = str(stalled.value)
            assert "\n" not in message and lock in message and "0.5 s" in message
            assert [v.ref for v in reg.versions()] == ["m:1"]  # readers are not blocked
            if lock == "registry.lock":
                with pytest.raises(BusyError):
                    reg.gc(grace_s=0)
    finally:
        holder.kill()
        holder.wait()
    with Registry.open(tmp_path, busy_timeout_s=5) as reg:  # the holder gone, all works
        assert reg.register_version("m", weights(2), {}, {}, LINEAGE).version == 2
        assert reg.gc(grace_s=0).removed == [] and reg.verify().ok


def test_cli_names_a_stalled_lock_in_one_line(tmp_path: Path, monkeypatch) -> None:
    with Registry.open(tmp_path) as reg:
        reg.register_version("m", weights(1), {}, {}, LINEAGE)
    holder = _hold(HOLD_FILE_LOCK, tmp_path / "registry" / "registry.lock")
    try:
        import causalcast.cli.registry as cli_registry

        real_open = Registry.open
        monkeypatch.setattr(cli_registry.Registry, "open", classmethod(
            lambda cls, home, **kw: real_open(home, **{**kw, "busy_timeout_s": 0.3})))
        result = CliRunner().invoke(app, ["registry", "gc", "--grace", "0", "--json",
                                          "--home", str(tmp_path)])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "registry.lock" in one_line(result.output) and "held by another process" in \
        one_line(result.output)


# ----- the market data store ---------------------------------------------------------------


def _store_snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".lock"}


def test_a_full_disk_during_a_store_write_commits_nothing(tmp_path: Path,
                                                           monkeypatch) -> None:
    """The data file is half written when the disk fills (injected at deltalake's write,
    which runs outside Python's file calls): no new version, the stray bytes are never
    read, one line names the table, and the next write works."""
    import deltalake

    from causalcast.store import BarStore
    from tests.support.frames import random_ohlcv

    store = BarStore(tmp_path)
    store.write({"AAA": random_ohlcv(80, seed=1)})
    before, version = store.read_many(), store.version()

    def full(uri: str, *args: object, **kwargs: object) -> None:
        stray = Path(uri) / "interval=1d" / "part-00000-stray-c000.snappy.parquet"
        stray.write_bytes(b"PAR1" + b"\0" * 100)   # what a filling disk leaves behind
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(deltalake, "write_deltalake", full)
        with pytest.raises(OSError) as refused:
            store.write({"BBB": random_ohlcv(80, seed=2)})
    message = str(refused.value)
    assert "\n" not in message and "No space left on device" in message
    assert "nothing committed" in message and str(tmp_path / "bars") in message
    assert store.version() == version
    pd_equal = [store.read_many()[s].equals(before[s]) for s in before]
    assert all(pd_equal) and sorted(store.read_many()) == ["AAA"]
    assert store.write({"BBB": random_ohlcv(80, seed=2)}).version == version + 1
    assert sorted(store.read_many()) == ["AAA", "BBB"]


def test_a_store_writer_lock_held_forever_is_one_line_and_readers_go_on(
        tmp_path: Path, monkeypatch) -> None:
    import causalcast.store.location as location
    from causalcast.store import BarStore
    from causalcast.store.location import StoreBusyError
    from tests.support.frames import random_ohlcv

    store = BarStore(tmp_path)
    store.write({"AAA": random_ohlcv(80, seed=1)})
    before = _store_snapshot(tmp_path)
    monkeypatch.setattr(location, "LOCK_TIMEOUT_S", 0.3)
    holder = _hold(HOLD_FILE_LOCK, tmp_path / ".locks" / "bars.lock")
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusyError) as stalled:
            store.write({"BBB": random_ohlcv(80, seed=2)})
        assert time.monotonic() - started < 10
        message = str(stalled.value)
        assert "\n" not in message and "bars.lock" in message and "0.3 s" in message
        assert sorted(store.read_many()) == ["AAA"]   # readers are not blocked
        result = CliRunner().invoke(app, ["data", "compact", "--store", str(tmp_path)])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert "bars.lock" in one_line(result.output)
        assert _store_snapshot(tmp_path) == before
    finally:
        holder.kill()
        holder.wait()
    assert store.write({"BBB": random_ohlcv(80, seed=2)}).version == 1
