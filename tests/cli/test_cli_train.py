"""`causalcast train` / `causalcast predict` end to end, including SIGTERM from outside."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from causalcast.cli import app

TINY = ["--data", "synthetic:2,500,0.5,0", "--horizons", "1,2", "--lookback", "10",
        "--set", "lstm.hidden=8", "--set", "tcn.channels=8", "--set", "mamba.d_model=8",
        "--threads", "1", "--quiet"]


def test_train_then_predict_json(tmp_path):
    runner = CliRunner()
    out = tmp_path / "runs"
    res = runner.invoke(app, ["train", *TINY, "--models", "ridge,lstm", "--epochs", "2",
                              "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    results = json.loads(res.stdout)
    assert [r["model"] for r in results] == ["ridge", "lstm"]
    assert all(r["status"] == "ok" and r["metrics"]["n"] > 0 for r in results)
    assert 0.3 < results[1]["metrics"]["dir_acc"] < 0.8
    res = runner.invoke(app, ["predict", "--model", str(out), "--data", "synthetic:2,500,0.5,0",
                              "--json"])
    assert res.exit_code == 0, res.output
    forecasts = json.loads(res.stdout)
    assert {(f["model"], f["symbol"]) for f in forecasts} == {
        (m, s) for m in ("ridge", "lstm") for s in ("SYN000", "SYN001")}
    # the service's vocabulary (horizon, mean_log_return, p_up, lower_80 ...)
    assert all(0 < h["p_up"] < 1 and h["lower_95"] < h["lower_80"] < h["mean_log_return"]
               < h["upper_80"] < h["upper_95"] for f in forecasts for h in f["forecasts"])
    assert [h["horizon"] for h in forecasts[0]["forecasts"]] == [1, 2]
    # a finished job is skipped on --resume
    res = runner.invoke(app, ["train", *TINY, "--models", "lstm", "--epochs", "2", "--out",
                              str(out), "--json", "--resume"])
    assert json.loads(res.stdout)[0]["sha256"] == results[1]["sha256"]


def test_per_symbol_and_bad_input(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", *TINY, "--models", "drift", "--per-symbol",
                              "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    assert sorted(r["scope"] for r in json.loads(res.stdout)) == ["SYN000", "SYN001"]
    res = runner.invoke(app, ["train", *TINY, "--models", "gru", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown name 'gru'" in res.output
    res = runner.invoke(app, ["train", "--models", "lstm", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--data: required" in res.output
    res = runner.invoke(app, ["train", *TINY, "--models", "lstm", "--set", "model.hiden=3",
                              "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no chosen model has the field(s) ['hiden']" in res.output
    stem = tmp_path / "final" / "drift" / "SYN000" / "fold0" / "model.safetensors"
    stem.write_bytes(stem.read_bytes()[:-8] + b"garbage!")
    res = runner.invoke(app, ["predict", "--model", str(stem), "--data", "synthetic:2,500,0.5,0"])
    assert res.exit_code == 2 and "checksum mismatch" in res.output


CLI = [sys.executable, "-c", "import sys; from causalcast.cli import main; "
       "sys.argv[0] = 'causalcast'; main()"]


@pytest.mark.slow
def test_sigterm_to_the_cli_checkpoints_and_says_how_to_resume(tmp_path):
    args = [*CLI, "train", *TINY, "--models", "lstm", "--epochs", "30",
            "--set", "train.patience=1000", "--out", str(tmp_path)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "250"})
    metrics = tmp_path / "final" / "lstm" / "global" / "fold0" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and '"kind": "epoch"' in metrics.read_text():
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err and "--resume" in err
    job = metrics.parent
    assert json.loads((job / "checkpoints" / "latest.json").read_text())["epoch"] >= 1
    assert not (job / "model.json").exists()
    resumed = subprocess.run([*args, "--resume", "--json"], capture_output=True, text=True,
                             timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)[0]["train"]["epochs"] == 30
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()
              if '"kind": "epoch"' in line]
    assert epochs == list(range(1, 31))
