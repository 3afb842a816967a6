"""The parallel runner on a real process pool: everything recorded, failures isolated,
deterministic, resumable after SIGKILL; and `causalcast train --parallel`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.data.resolve import resolve_source
from causalcast.models.bundle import TrainedModel
from causalcast.registry import ALL_SYMBOLS, Registry, fingerprint_frames
from causalcast.training import JobSpec, run_job
from causalcast.training.plan import FINAL_FOLD
from causalcast.training.predictions import load_predictions
from causalcast.training.runner import RunnerError, RunSpec, train_run
from tests.support.frames import random_ohlcv, yahoo_csv
from tests.training.runner.common import N_JOBS, TINY, contents

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


def test_pool_run_records_everything(reference):
    s = reference.summary
    assert (s.status, s.planned, s.ran, s.skipped, s.done, s.failed) == (
        "done", N_JOBS, N_JOBS, 0, N_JOBS, 0)
    assert s.workers == 2 and s.audit_passed is True
    with Registry.open(reference.home, create=False) as reg:
        assert reg.verify().ok
        run = reg.get_run("reference")
        assert run.status == "done" and run.audit["passed"] is True
        assert RunSpec.from_dict(run.config["spec"]) == TINY
        assert reg.progress("reference") == {"pending": 0, "running": 0, "done": N_JOBS,
                                             "failed": 0, "total": N_JOBS}
        versions = {v.name: v for v in reg.versions(run_id="reference")}
        assert set(versions) == {f"{m}/{s}" for m in ("ridge", "lstm")
                                 for s in ("global", "SYN000", "SYN001", "SYN002")}
        frames, _ = resolve_source(TINY.data)
        for job in reg.jobs("reference"):
            version = reg.get_version(job.version_id)
            scope = "global" if job.symbol == ALL_SYMBOLS else job.symbol
            assert version.name == f"{job.model}/{scope}" and job.fold == FINAL_FOLD
            # lineage: data fingerprint of exactly the job's symbols, settings, code, seed
            used = frames if job.symbol == ALL_SYMBOLS else {job.symbol: frames[job.symbol]}
            assert version.data_fingerprint == fingerprint_frames(used)
            assert version.feature_config["horizons"] == [1, 2]
            assert version.feature_config["lookback"] == 10
            assert version.split_config["n_folds"] == 1
            assert version.code_version["package"]
            assert version.lineage["seed"] == 3 and version.lineage["fold"] == FINAL_FOLD
            # metrics: test metrics, validation loss, baseline comparison on validation
            assert version.metrics["test"]["n"] > 0 and version.metrics["val_loss"] > 0
            assert version.metrics["baseline_comparison"]["split"] == "validation"
            # per-epoch metrics copied from metrics.jsonl
            epochs = reg.epoch_metrics("reference", job.key)
            assert [e["epoch"] for e in epochs] == ([1] if job.model == "ridge" else [1, 2])
            assert all(e["val_loss"] > 0 for e in epochs)
            # the artifact is the bundle: it loads and forecasts
            bundle = TrainedModel.from_artifact(reg.load_artifact(version),
                                                sha256=version.artifact_sha256)
            assert bundle.name == job.model
            sym = "SYN001" if job.symbol == ALL_SYMBOLS else job.symbol
            forecast = bundle.forecast({sym: frames[sym]})[sym]
            assert 0 < forecast.to_dict()["horizons"][0]["prob_up"] < 1
            # the predictions evaluation reads sit where the lineage says
            preds = load_predictions(reference.home / version.lineage["extra"]["predictions"])
            assert set(preds["split"]) == {"val", "test"}
        # gates can judge every version: the audit passed, the comparison is recorded
        gates = reg.check_gates(versions["ridge/global"].version_id)
        assert {g.gate: g.passed for g in gates}["leakage_audit"] is True
        assert "naive" in {g.gate: g.detail for g in gates}["beats_naive_baseline"]


def test_same_bytes_as_in_process_and_with_one_worker(reference, tmp_path):
    """Workers change nothing: a 1-worker run of part of the plan and an in-process
    `run_job` give the reference's artifacts byte for byte."""
    part = RunSpec.from_dict({**TINY.to_dict(), "symbols": ["SYN001"],
                              "scopes": ["per-symbol"]})
    summary = train_run(part, home=tmp_path / "one", workers=1, progress=False,
                        audit=False)
    assert summary.done == 2 and summary.audit_passed is None
    ref = contents(reference.home, "reference")
    assert contents(tmp_path / "one", summary.run_id) == {
        k: v for k, v in ref.items() if k[0] == "SYN001"}
    spec = JobSpec(model="lstm", data=TINY.data, out_dir=str(tmp_path / "inproc"),
                   symbols=("SYN001",), horizons=TINY.horizons, lookback=TINY.lookback,
                   seed=TINY.seed, threads=1, model_params={"hidden": 8},
                   train_params={"epochs": 2})
    assert run_job(spec).sha256 == ref[("SYN001", "lstm", FINAL_FOLD)][1]


def test_failing_job_is_isolated_and_recorded(tmp_path):
    """A symbol with too few bars fails for real; the others are registered; a rerun of the
    run retries only that job."""
    data = tmp_path / "data"
    data.mkdir()
    for k, sym in enumerate(["AAA", "BBB"]):
        yahoo_csv(random_ohlcv(400, seed=k), data / f"{sym}.csv")
    yahoo_csv(random_ohlcv(30, seed=9), data / "TINY.csv")
    spec = RunSpec(data=str(data), models=("ridge",), horizons=(1, 2), lookback=10)
    summary = train_run(spec, home=tmp_path / "home", run_id="fails", workers=2,
                        progress=False, audit=False)
    assert (summary.status, summary.done, summary.failed) == ("failed", 2, 1)
    bad = next(j for j in summary.jobs if j.symbol == "TINY")
    assert bad.status == "failed" and "fewer than" in bad.error
    with Registry.open(tmp_path / "home", create=False) as reg:
        job = reg.meta.get_job("fails", ("TINY", "ridge", FINAL_FOLD))
        assert job.status == "failed" and "fewer than" in job.error
        assert "Traceback" in job.traceback and "build_training_data" in job.traceback
        assert reg.get_run("fails").status == "failed"
        assert {v.name for v in reg.versions(run_id="fails")} == {"ridge/AAA", "ridge/BBB"}
        assert reg.verify().ok
    again = train_run(None, home=tmp_path / "home", run_id="fails", workers=2,
                      progress=False)
    assert [j.symbol for j in again.jobs if j.ran] == ["TINY"]
    assert (again.skipped, again.failed) == (2, 1)
    with Registry.open(tmp_path / "home", create=False) as reg:
        assert reg.meta.get_job("fails", ("TINY", "ridge", FINAL_FOLD)).attempts == 2


def _alive_in_group(pgid: int) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return out


def test_sigkill_mid_run_then_rerun_completes_the_missing_jobs(reference, tmp_path):
    home, run_id = tmp_path / "home", "killed"
    proc = subprocess.Popen([sys.executable, "-m", "tests.training.runner._proc", str(home),
                             run_id],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if (home / "registry" / "registry.db").exists():
                with Registry.open(home, create=False) as reg:
                    try:
                        done = reg.progress(run_id)["done"]
                    except Exception:  # run not created yet
                        done = 0
                if done >= 1:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()}"
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers must follow
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while _alive_in_group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        orphans = _alive_in_group(proc.pid)
        assert not orphans, f"workers outlived the killed run: {orphans}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in _alive_in_group(proc.pid):
            p.kill()

    with Registry.open(home, create=False) as reg:
        report = reg.verify()
        assert report.ok, report.problems
        planned = {j.key for j in reg.jobs(run_id)}
        before = reg.completed_jobs(run_id)
        assert len(planned) == N_JOBS and 1 <= len(before) < N_JOBS
        assert reg.get_run(run_id).status == "running"  # it never finished
    summary = train_run(None, home=home, run_id=run_id, workers=2, progress=False)
    ran = {(j.symbol, j.model, j.fold) for j in summary.jobs if j.ran}
    assert ran == {tuple(k) for k in planned - before}
    assert summary.skipped == len(before) and summary.status == "done"
    with Registry.open(home, create=False) as reg:
        assert reg.verify().ok
        assert reg.get_run(run_id).status == "done"
        assert all(j.status == "done" for j in reg.jobs(run_id))
    assert contents(home, run_id) == contents(reference.home, "reference")


def test_resume_refuses_a_changed_description(reference):
    changed = RunSpec.from_dict({**TINY.to_dict(), "seed": 4})
    with pytest.raises(RunnerError, match=r"different description \(fields \['seed'\]\)"):
        train_run(changed, home=reference.home, run_id="reference", progress=False)
    with pytest.raises(RunnerError, match="no such run"):
        train_run(None, home=reference.home, run_id="nope", progress=False)
    again = train_run(None, home=reference.home, run_id="reference", progress=False)
    assert (again.ran, again.skipped, again.workers) == (0, N_JOBS, 0)  # no pool started


TINY_CLI = ["--data", "synthetic:2,400,0.5,0", "--horizons", "1,2", "--lookback", "10",
            "--models", "ridge,drift", "--per-symbol"]


def test_cli_parallel_json_and_resume(tmp_path):
    runner = CliRunner()
    home = str(tmp_path / "home")
    res = runner.invoke(app, ["train", *TINY_CLI, "--workers", "2", "--home", home,
                              "--run-id", "cli", "--no-audit", "--quiet", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["run_id"] == "cli" and out["status"] == "done" and out["backend"] == "pool"
    assert sorted((j["label"], j["status"], j["ran"]) for j in out["jobs"]) == [
        (f"{m}/{s}/final", "done", True) for m in ("drift", "ridge")
        for s in ("SYN000", "SYN001")]
    assert all(j["version"].endswith(":1") for j in out["jobs"])
    res = runner.invoke(app, ["train", "--home", home, "--run-id", "cli", "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again["skipped"] == 4 and not any(j["ran"] for j in again["jobs"])
    res = runner.invoke(app, ["train", "--home", home, "--run-id", "cli", "--quiet"])
    assert res.exit_code == 0 and "already done" in res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--fold", "all", "--out", "x"], "need --parallel"),
    (["--parallel", "--backend", "dask"], "backend: choose from"),
    (["--parallel", "--folds", "3", "--fold", "4"], "fold 4 out of range"),
    (["--parallel", "--resume"], "--run-id RUN_ID"),
    (["--models", "ridge"], "--out: required"),
])
def test_cli_parallel_bad_input(tmp_path, args, message):
    data = ["--data", "synthetic:2,400,0.325,0"]
    base = ["train", *data, "--models", "ridge", "--home",
            str(tmp_path)] if "--parallel" in args else ["train", *data]
    res = CliRunner().invoke(app, [*base, *args])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()), res.output
    res = CliRunner().invoke(app, ["train", "--home", str(tmp_path), "--run-id", "nope"])
    assert res.exit_code == 2 and "no such run" in res.output


def test_a_dead_worker_is_replaced_and_its_job_retried(tmp_path, monkeypatch):
    """A worker killed outright (segfault, OOM killer) breaks the pool: the runner starts a
    new pool and retries the jobs that were in flight; nothing is lost or failed."""
    from tests.training.runner import _crash

    monkeypatch.setattr("causalcast.training.runner.execute_job", _crash.crash_once)
    spec = RunSpec.from_dict({**TINY.to_dict(), "models": ["ridge"], "model_params": {},
                              "scopes": ["per-symbol"]})
    out = tmp_path / "out"
    (out).mkdir()
    (out / "crash-ridge-SYN001").touch()
    summary = train_run(spec, home=tmp_path / "home", out=out, workers=2, progress=False,
                        audit=False)
    assert not (out / "crash-ridge-SYN001").exists()  # the crash happened
    assert (summary.status, summary.done, summary.failed) == ("done", 3, 0)
    with Registry.open(tmp_path / "home", create=False) as reg:
        assert reg.meta.get_job(summary.run_id, ("SYN001", "ridge", FINAL_FOLD)).attempts == 2
        assert reg.verify().ok


@pytest.mark.parametrize("how", ["sigterm-runner", "ctrl-c-group"])
def test_a_signal_stops_the_run_cleanly(tmp_path, how):
    """SIGTERM to the runner, or Ctrl+C (SIGINT to the whole process group, as a terminal
    sends it): the training workers checkpoint, their jobs are recorded as interrupted (with
    the command that resumes), the run is closed as failed, the registry is sound."""
    home, run_id = tmp_path / "home", "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "tests.training.runner._proc", str(home), run_id,
                             "long"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = home / "runs" / run_id / "final" / "lstm" / "global" / "fold0" / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.exists() and metrics.read_text().count('"kind": "epoch"') >= 1:
                break  # the global model is inside its training loop
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before SIGTERM: {proc.stderr.read()}"
        if how == "sigterm-runner":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=90) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in _alive_in_group(proc.pid):
            p.kill()
    with Registry.open(home, create=False) as reg:
        assert reg.verify().ok
        assert reg.get_run(run_id).status == "failed"
        jobs = {j.key: j for j in reg.jobs(run_id)}
        assert not [j for j in jobs.values() if j.status == "running"]
        stopped = jobs[(ALL_SYMBOLS, "lstm", FINAL_FOLD)]
        assert stopped.status == "failed" and stopped.error.startswith("interrupted")
        assert "SIGINT" in stopped.error and "checkpoint saved" in stopped.error
        assert f"--run-id {run_id}" in stopped.error
        assert reg.epoch_metrics(run_id, stopped.key)  # epochs so far are kept
    assert (metrics.parent / "checkpoints" / "latest.json").exists()


def test_a_script_without_main_guard_runs_once(tmp_path):
    """Pool workers do not re-run the calling script (no ``if __name__ == "__main__"``
    needed, unlike plain multiprocessing): its top-level side effect happens once."""
    script = tmp_path / "script.py"
    script.write_text(
        "from pathlib import Path\n"
        "from causalcast.training.runner import RunSpec, train_run\n"
        "with open(Path(__file__).with_suffix('.log'), 'a') as f:\n"
        "    f.write('ran\\n')\n"
        "spec = RunSpec(data='synthetic:2,400,0.5,1', models=('drift',), horizons=(1, 2),\n"
        "               lookback=10)\n"
        "s = train_run(spec, home='home', workers=2, progress=False, audit=False)\n"
        "assert s.status == 'done' and s.done == 2, s\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "script.log").read_text() == "ran\n"
