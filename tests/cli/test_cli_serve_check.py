"""`causalcast serve --check [--json]`: what would be served, without listening."""

from __future__ import annotations

import json

import pytest

from causalcast.cli import main
from causalcast.registry import Registry
from tests.faults.subjects import LINEAGE, weights


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    return (stop.value.code or 0), out, err


def test_serve_check_reports_each_production_version(tmp_path, capsys):
    with Registry.open(tmp_path) as reg:
        good = reg.register_version("good", weights(1), {}, {}, LINEAGE)
        bad = reg.register_version("bad", weights(2), {}, {}, LINEAGE)
        for version in (good, bad):
            reg.promote(version.ref, gates=[])
        path = reg.artifacts.path(bad.artifact_sha256)
    code, out, err = run_cli(["serve", "--check", "--json", "--home", str(tmp_path)], capsys)
    assert code == 0, err
    rows = sorted(json.loads(out)["production"], key=lambda r: r["version"])
    assert rows == [{"version": v.ref, "ok": True, "problem": None} for v in (bad, good)]
    path.chmod(0o644)
    path.write_bytes(b"not weights")
    code, out, err = run_cli(["serve", "--check", "--json", "--home", str(tmp_path)], capsys)
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    failed = [r for r in report["production"] if not r["ok"]]
    assert [r["version"] for r in failed] == ["bad:1"] and "bad:1" in failed[0]["problem"]
