"""gc deletes garbage, never data: it refuses when the database and the objects disagree
wholesale, and shows a large deletion as a dry run first (issue 12, item 1)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.cli.registry import LARGE_GC
from causalcast.registry import DamagedError, Lineage, Registry

runner = CliRunner()
LINEAGE = Lineage("c" * 64, {"lookback": 8}, {"n_folds": 2})


def _age(reg: Registry, digest: str, seconds: float = 7200) -> None:
    old = time.time() - seconds
    os.utime(reg.artifacts.path(digest), (old, old))


def _objects(home: Path) -> set[Path]:
    return {p for p in (home / "registry" / "objects").rglob("*") if p.is_file()}


def test_a_database_from_another_registry_is_refused_by_gc(tmp_path: Path) -> None:
    with Registry.open(tmp_path / "a") as a:
        for i in range(3):
            _age(a, a.register_version("m", bytes([i]) * 100, {}, {}, LINEAGE).artifact_sha256)
    time.sleep(0.01)  # distinct creation times
    with Registry.open(tmp_path / "b") as b:
        b.register_version("other", b"other bytes", {}, {}, LINEAGE)
    before = _objects(tmp_path / "a")
    for suffix in ("", "-wal", "-shm"):
        source = tmp_path / "b" / "registry" / f"registry.db{suffix}"
        target = tmp_path / "a" / "registry" / f"registry.db{suffix}"
        target.unlink(missing_ok=True)
        if source.exists():
            shutil.copy(source, target)
    with Registry.open(tmp_path / "a") as swapped:
        with pytest.raises(DamagedError, match="gc refused"):
            swapped.gc(grace_s=0)
        with pytest.raises(DamagedError, match="gc refused"):
            swapped.gc(grace_s=0, dry_run=True)
    assert _objects(tmp_path / "a") == before
    result = runner.invoke(app, ["registry", "gc", "--grace", "0", "--home",
                                 str(tmp_path / "a")])
    assert result.exit_code == 2 and "gc refused" in " ".join(result.output.split())
    assert _objects(tmp_path / "a") == before


def test_old_objects_and_no_version_at_all_is_refused(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as reg:
        digest = reg.artifacts.put(b"written by a registry that has forgotten it")
        _age(reg, digest)
        with pytest.raises(DamagedError, match="references no object"):
            reg.gc(grace_s=0)
        assert reg.artifacts.exists(digest)
        assert reg.gc(grace_s=0, force=True).removed == [digest]  # a deliberate override


def test_a_large_deletion_is_a_dry_run_until_confirmed(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as reg:
        reg.register_version("m", b"kept", {}, {}, LINEAGE)
        orphans = [reg.artifacts.put(f"orphan {i}".encode()) for i in range(LARGE_GC + 1)]
        for digest in orphans:
            _age(reg, digest)
    before = _objects(tmp_path)
    result = runner.invoke(app, ["registry", "gc", "--json", "--home", str(tmp_path)])
    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert shown["dry_run"] and shown["needs_yes"] and sorted(shown["removed"]) == sorted(orphans)
    assert _objects(tmp_path) == before
    result = runner.invoke(app, ["registry", "gc", "--yes", "--json", "--home", str(tmp_path)])
    assert result.exit_code == 0 and not json.loads(result.stdout)["dry_run"]
    assert len(_objects(tmp_path)) == len(before) - len(orphans)
