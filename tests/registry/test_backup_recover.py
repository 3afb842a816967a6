"""Issue 12 item 1: `registry backup DEST` (SQLite online backup API) and its restore, and
`registry recover` rebuilding versions from the artifacts' own headers."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.registry import DamagedError, Lineage, Registry, RegistryError
from causalcast.registry.maintenance import backup, restore
from causalcast.weights import serialize

runner = CliRunner()
LINEAGE = Lineage("c" * 64, {"lookback": 8}, {"n_folds": 2})


def _weights(seed: int, model: str = "ridge", symbol: str = "AAA") -> bytes:
    config = {"kind": "causalcast-model", "model": {"name": model, "config": {}},
              "lookback": 8, "horizons": [1], "meta": {"symbols": [symbol]}}
    return serialize({"w": torch.full((2, 2), float(seed))}, config)[0]


def _state(reg: Registry) -> list[tuple]:
    return [(v.ref, v.stage, v.artifact_sha256)
            for v in sorted(reg.versions(), key=lambda v: v.version_id)]


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["registry", *args])
    return result.exit_code, result.output


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Registry.open(home) as reg:
        for i in range(4):
            v = reg.register_version(f"m{i % 2}", _weights(i, symbol=f"S{i}"), {"i": i}, {},
                                     LINEAGE)
        reg.promote(v.ref, gates=[])
    return home


def test_backup_while_writing_then_restore_over_a_damaged_registry(home: Path,
                                                                   tmp_path: Path) -> None:
    stop = threading.Event()

    def writer() -> None:
        with Registry.open(home) as live:
            i = 100
            while not stop.is_set():
                live.register_version("busy", _weights(i), {}, {}, LINEAGE)
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with Registry.open(home) as reg:
            report = backup(reg, tmp_path / "bk")
    finally:
        stop.set()
        thread.join()
    assert report.verify["ok"] and report.n_versions >= 4
    with Registry.open(tmp_path / "bk", create=False) as copy:
        snapshot = _state(copy)
        assert copy.verify().ok
    with Registry.open(home) as reg:
        live = _state(reg)
    assert snapshot == live[: len(snapshot)]  # a consistent prefix of the live history
    with pytest.raises(RegistryError, match="already holds"), Registry.open(home) as reg:
        backup(reg, tmp_path / "bk")

    db = home / "registry" / "registry.db"
    db.write_bytes(b"")  # the disaster
    moved = restore(tmp_path / "bk", home)
    assert moved is not None and (moved / "registry.db").stat().st_size == 0  # kept aside
    with Registry.open(home, create=False) as reg:
        assert _state(reg) == snapshot and reg.verify().ok
        assert reg.production("m1") is not None
        reg.register_version("after", _weights(999), {}, {}, LINEAGE)  # usable again
        assert reg.gc(grace_s=0, dry_run=True).removed == []  # owner kept: gc not refused


def test_restore_refuses_a_backup_that_does_not_verify(home: Path, tmp_path: Path) -> None:
    with Registry.open(home) as reg:
        backup(reg, tmp_path / "bk")
        before = _state(reg)
    victim = next((tmp_path / "bk" / "registry" / "objects").glob("*/*"))
    victim.chmod(0o644)
    victim.write_bytes(b"rot")
    with pytest.raises(DamagedError, match="does not verify"):
        restore(tmp_path / "bk", home)
    with Registry.open(home) as reg:
        assert _state(reg) == before


def test_recover_rebuilds_versions_from_artifact_headers(home: Path) -> None:
    with Registry.open(home) as reg:
        digests = {v.artifact_sha256 for v in reg.versions()}
        junk = reg.artifacts.put(b"not a weights file")
    code, out = _cli("recover", "--home", str(home))
    assert code == 2 and "is sound" in " ".join(out.split())
    db = home / "registry" / "registry.db"
    db.write_bytes(b"\xff" * 4096)
    code, out = _cli("recover", "--home", str(home), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert len(report["recovered"]) == 4 and len(report["skipped"]) == 1
    assert junk in report["skipped"][0]
    assert Path(report["kept_damaged"]).read_bytes() == b"\xff" * 4096
    with Registry.open(home, create=False) as reg:
        versions = reg.versions()
        assert {v.artifact_sha256 for v in versions} == digests
        assert {v.name for v in versions} == {f"recovered/ridge/S{i}" for i in range(4)}
        assert all(v.stage == "candidate" for v in versions)  # promotions are not invented
        for v in versions:
            assert reg.load_weights(v)[1]["meta"]["symbols"] == [v.name.rsplit("/", 1)[1]]
        with pytest.raises(DamagedError, match="gc refused"):
            reg.gc(grace_s=0)  # the junk object waits for an operator's --force
        assert reg.artifacts.exists(junk)
    code, out = _cli("verify", "--home", str(home))
    assert code == 0 and "gc --force" in " ".join(out.split()), out
    code, out = _cli("gc", "--grace", "0", "--force", "--json", "--home", str(home))
    assert code == 0 and json.loads(out)["removed"] == [junk]
    with Registry.open(home, create=False) as reg:  # confirmed once: gc runs plainly again
        assert reg.gc(grace_s=0).removed == [] and len(reg.versions()) == 4


def test_backup_and_restore_on_the_command_line(home: Path, tmp_path: Path) -> None:
    code, out = _cli("backup", str(tmp_path / "bk"), "--home", str(home), "--json")
    assert code == 0 and json.loads(out)["n_versions"] == 4
    code, out = _cli("backup", str(tmp_path / "bk"), "--home", str(home))
    assert code == 2 and "already holds" in " ".join(out.split())
    code, out = _cli("restore", str(tmp_path / "nothing"), "--home", str(home))
    assert code == 2 and "Traceback" not in out
    code, out = _cli("restore", str(tmp_path / "bk"), "--home", str(home), "--json")
    assert code == 0 and json.loads(out)["previous_moved_to"]
    code, out = _cli("list", "--json", "--home", str(home))
    assert code == 0 and len(json.loads(out)) == 4
