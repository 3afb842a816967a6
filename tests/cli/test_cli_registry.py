"""`causalcast registry ...` end to end on a real registry: output, JSON, exit codes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.registry import Lineage, Registry, baseline_comparison, significance_record
from causalcast.weights import serialize

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    reg = Registry.open(tmp_path)
    run = reg.start_run("run1", config={"profile": "quick"})
    reg.record_audit(run, {"passed": True, "n_checks": 5, "n_failures": 0, "checks": []})
    lin = Lineage("c" * 64, {"lookback": 8}, {"n_folds": 2}, symbol="AAA", model="lstm")
    for i, mse in enumerate((0.9, 0.8, 1.3)):
        # Real weights files: promotion proves the artifact loads (issue 12).
        artifact = serialize({"w": torch.full((4, 4), float(i))}, {"i": i})[0]
        reg.register_version("lstm-AAA", artifact, {"i": i}, {
            "val_mse": mse, "baseline_comparison": baseline_comparison(
                "val_mse", mse, 1.0, lower_is_better=True),
            "significance": significance_record({"dm_vs_naive": 0.01, "direction": 0.02})},
            lin, run_id=run)
    reg.plan_jobs(run, [("AAA", "lstm", 0), ("BBB", "lstm", 0)])
    reg.job_started(run, ("BBB", "lstm", 0))
    try:
        raise RuntimeError("out of memory twice")
    except RuntimeError as exc:
        reg.job_failed(run, ("BBB", "lstm", 0), exc)
    reg.close()
    return tmp_path


def cli(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["registry", *args, "--home", str(home)])
    return result.exit_code, result.output


def test_list_and_show(home: Path) -> None:
    code, out = cli(home, "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["ref"] for r in rows] == ["lstm-AAA:1", "lstm-AAA:2", "lstm-AAA:3"]
    assert {r["stage"] for r in rows} == {"candidate"}
    code, out = cli(home, "list")
    assert code == 0 and "lstm-AAA:2" in out
    code, out = cli(home, "list", "--runs", "--json")
    assert json.loads(out)[0]["jobs"] == {"pending": 1, "running": 0, "done": 0, "failed": 1,
                                          "total": 2}
    code, out = cli(home, "show", "--run", "run1", "--json")
    failed = [j for j in json.loads(out)["jobs"] if j["status"] == "failed"]
    assert failed[0]["error"] == "RuntimeError: out of memory twice"
    assert "Traceback" in failed[0]["traceback"]
    code, out = cli(home, "show", "lstm-AAA:2", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["metrics"]["val_mse"] == 0.8
    assert shown["data_fingerprint"] == "c" * 64 and shown["code_version"]["package"]
    assert shown["history"][0]["action"] == "register"
    code, out = cli(home, "show", "lstm-AAA:2")
    assert code == 0 and "data fingerprint" in out


def test_promote_refuse_and_rollback_with_history(home: Path) -> None:
    code, out = cli(home, "promote", "lstm-AAA:1", "--by", "alice", "--reason", "first")
    assert code == 0 and "production" in out
    code, out = cli(home, "promote", "2", "--reason", "lower error", "--json")
    assert code == 0 and json.loads(out)["stage"] == "production"
    code, out = cli(home, "promote", "lstm-AAA:3", "--json")
    assert code == 1
    refused = json.loads(out)
    assert refused["promoted"] is False and "beats_naive_baseline" in refused["error"]
    code, out = cli(home, "promote", "lstm-AAA:3")
    assert code == 1 and "refused" in out and "does not beat" in out
    code, out = cli(home, "rollback", "lstm-AAA", "--reason", "regression", "--by", "bob")
    assert code == 0 and "lstm-AAA:1 is production again" in out
    code, out = cli(home, "show", "lstm-AAA:1", "--json")
    history = json.loads(out)["history"]
    assert [(e["action"], e["by"]) for e in history] == [
        ("register", history[0]["by"]), ("promote", "alice"), ("replaced", history[2]["by"]),
        ("rollback", "bob")]
    code, out = cli(home, "verify")
    assert code == 0 and "clean" in out


def test_bad_input_exits_2_with_a_clear_message(home: Path, tmp_path: Path) -> None:
    for args, message in [
        (("show", "lstm-AAA:9"), "no such version"),
        (("promote", "lstm-AAA:1", "--to", "staging"), "unknown stage 'staging'"),
        (("rollback", "lstm-AAA"), "no production version"),
        (("promote", "lstm-AAA:1", "--gate", "nope"), "unknown ['nope']"),
        (("show",), "give a version reference or --run"),
    ]:
        code, out = cli(home, *args)
        assert code == 2, (args, out)
        assert message in " ".join(out.split()), (args, out)
    code, out = cli(tmp_path / "empty", "verify")
    assert code == 2 and "no registry under" in out
    assert not (tmp_path / "empty").exists()
    code, out = cli(home, "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_verify_exits_1_on_a_corrupt_artifact_and_gc_cleans_orphans(home: Path) -> None:
    reg = Registry.open(home)
    orphan = reg.artifacts.put(b"nobody uses me")
    old = time.time() - 7200
    os.utime(reg.artifacts.path(orphan), (old, old))
    victim = reg.get_version("lstm-AAA:2").artifact_sha256
    reg.close()
    code, out = cli(home, "gc", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["removed"] == [orphan]
    code, out = cli(home, "gc", "--json")
    assert json.loads(out)["removed"] == [orphan]
    assert not (home / "registry" / "objects" / orphan[:2] / orphan[2:]).exists()
    path = home / "registry" / "objects" / victim[:2] / victim[2:]
    os.chmod(path, 0o644)
    path.write_bytes(b"garbage")
    code, out = cli(home, "verify")
    assert code == 1 and f"artifact {victim}: corrupt" in " ".join(out.split())
    code, out = cli(home, "verify", "--json")
    assert code == 1 and not json.loads(out)["ok"]


def test_every_registry_command_has_help() -> None:
    for command in ("list", "show", "verify", "promote", "rollback", "gc"):
        result = runner.invoke(app, ["registry", command, "--help"])
        assert result.exit_code == 0 and "--home" in result.output, command
