"""The training loop survives failures: kill -9 and resume to identical weights, SIGTERM
checkpoint and resume, NaN rollback with LR halving, out-of-memory batch halving, refusal of
corrupt or mismatched checkpoints, and metrics persisted per epoch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from causalcast.config import FeatureConfig, SplitConfig
from causalcast.data.resolve import resolve_source
from causalcast.models import build_model
from causalcast.models.bundle import TrainedModel
from causalcast.training import JobSpec, TrainConfig, Trainer, TrainHooks, TrainingFailed, run_job
from causalcast.training.checkpoint import POINTER
from causalcast.training.data import build_training_data
from causalcast.training.job import seed_everything
from causalcast.training.trainer import read_jsonl

ROOT = Path(__file__).resolve().parents[2]

# One small symbol, short windows, a tiny LSTM: an epoch takes a few steps.
TINY = dict(model="lstm", data="synthetic:1,600,0.5,3", lookback=10, horizons=(1, 2),
            seed=11, threads=1, model_params={"hidden": 8},
            train_params={"epochs": 6, "batch_size": 64, "patience": 100})


def _spec(out: Path, **kw) -> JobSpec:
    return JobSpec(out_dir=str(out), **{**TINY, **kw})


def _proc(spec: JobSpec, hook: str | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "tests.support.train_proc", json.dumps(dataclasses.asdict(spec))]
    if hook:
        args.append(hook)
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240)


def _bundle_sha(result_json: str) -> str:
    return json.loads(result_json.strip().splitlines()[-1])["sha256"]


@pytest.fixture(scope="module")
def reference_sha(tmp_path_factory) -> str:
    """An uninterrupted run in a fresh process: the weights every resume must reproduce."""
    done = _proc(_spec(tmp_path_factory.mktemp("ref")))
    assert done.returncode == 0, done.stderr
    return _bundle_sha(done.stdout)


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_weights(tmp_path, reference_sha):
    spec = _spec(tmp_path)
    killed = _proc(spec, "sigkill@4.1")              # dies mid-epoch 4, no cleanup at all
    assert killed.returncode == -9
    job = tmp_path / "lstm" / "SYN000" / "fold0"
    assert not (job / "model.json").exists()
    pointer = json.loads((job / "checkpoints" / POINTER).read_text())
    assert pointer["epoch"] == 3 and pointer["position"] == 0
    resumed = _proc(dataclasses.replace(spec, resume=True))
    assert resumed.returncode == 0, resumed.stderr
    assert _bundle_sha(resumed.stdout) == reference_sha
    epochs = [r["epoch"] for r in read_jsonl(job / "metrics.jsonl") if r["kind"] == "epoch"]
    assert epochs == [1, 2, 3, 4, 5, 6]             # nothing lost, nothing duplicated


@pytest.mark.slow
def test_sigterm_checkpoints_mid_epoch_and_resume_gives_identical_weights(tmp_path,
                                                                         reference_sha):
    spec = _spec(tmp_path)
    stopped = _proc(spec, "sigterm@2.1")
    assert stopped.returncode == 143, stopped.stderr
    assert "SIGTERM" in stopped.stderr and "--resume" in stopped.stderr
    job = tmp_path / "lstm" / "SYN000" / "fold0"
    pointer = json.loads((job / "checkpoints" / POINTER).read_text())
    assert pointer["epoch"] == 1 and pointer["position"] == 128   # after step 1 finished
    resumed = _proc(dataclasses.replace(spec, resume=True))
    assert resumed.returncode == 0, resumed.stderr
    assert _bundle_sha(resumed.stdout) == reference_sha
    events = [r["event"] for r in read_jsonl(job / "metrics.jsonl") if r["kind"] == "event"]
    assert "interrupted" in events and "resumed" in events


def _trainer(tmp_path: Path, hooks: TrainHooks | None = None, **train) -> Trainer:
    frames, _ = resolve_source(TINY["data"])
    data = build_training_data(frames, FeatureConfig(lookback=10, horizons=(1, 2)),
                               SplitConfig())
    seed_everything(5)
    model = build_model("lstm", n_features=len(data.feature_names), n_horizons=2,
                        lookback=10, hidden=8)
    cfg = TrainConfig(**{"epochs": 4, "batch_size": 64, "patience": 100, "seed": 5, **train})
    return Trainer(model, data, cfg, tmp_path, run_key="test", hooks=hooks)


def test_nan_loss_rolls_back_and_halves_lr(tmp_path):
    fired = []

    def after_loss(info, loss):
        if (info.epoch, info.step) == (3, 1) and not fired:
            fired.append(True)
            return loss * float("nan")
        return loss

    trainer = _trainer(tmp_path, TrainHooks(after_loss=after_loss), lr=1e-2, lr_patience=100)
    outcome = trainer.fit()
    assert fired and outcome.nan_retries == 1 and outcome.epochs == 4
    records = read_jsonl(tmp_path / "metrics.jsonl")
    rollback = [r for r in records if r.get("event") == "nan_rollback"]
    assert len(rollback) == 1 and rollback[0]["lr_after"] == pytest.approx(5e-3)
    lrs = {r["epoch"]: r["lr"] for r in records if r["kind"] == "epoch"}
    assert lrs[2] == pytest.approx(1e-2) and lrs[3] == pytest.approx(5e-3)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_nan_loss_retries_are_bounded_with_a_failure_record(tmp_path):
    always_nan = TrainHooks(after_loss=lambda info, loss: loss * float("nan")
                            if info.epoch >= 2 else loss)
    trainer = _trainer(tmp_path, always_nan, max_nan_retries=2)
    with pytest.raises(TrainingFailed, match="not finite after 2 rollbacks") as err:
        trainer.fit()
    failure = json.loads((tmp_path / "failure.json").read_text())
    assert failure["nan_retries"] == 2 and err.value.record["reason"] == failure["reason"]
    assert failure["lr"] == pytest.approx(2e-3 / 4)


def test_out_of_memory_halves_the_batch_and_retries(tmp_path):
    seen = []

    def before_step(info):
        seen.append(info.batch_size)
        if info.batch_size > 16:
            raise RuntimeError("CPU out of memory: tried to allocate 1.00 GiB (simulated)")

    trainer = _trainer(tmp_path, TrainHooks(before_step=before_step), epochs=2)
    outcome = trainer.fit()
    assert outcome.final_batch_size == 16 and outcome.oom_retries == 2
    assert seen[:3] == [64, 32, 16] and set(seen[3:]) == {16}
    events = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r.get("event") == "oom"]
    assert [e["batch_size"] for e in events] == [32, 16]


def test_out_of_memory_retries_are_bounded(tmp_path):
    def always_oom(info):
        raise RuntimeError("out of memory (simulated)")

    trainer = _trainer(tmp_path, TrainHooks(before_step=always_oom), max_oom_retries=3)
    with pytest.raises(TrainingFailed, match="out of memory at batch size 8"):
        trainer.fit()
    assert json.loads((tmp_path / "failure.json").read_text())["oom_retries"] == 3


def test_other_runtime_errors_are_not_mistaken_for_oom(tmp_path):
    def broken(info):
        raise RuntimeError("shape mismatch")

    spec_result = None
    trainer = _trainer(tmp_path, TrainHooks(before_step=broken))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        trainer.fit()
    assert spec_result is None


def test_failed_job_is_recorded_not_raised(tmp_path):
    result = run_job(_spec(tmp_path, model="no-such-model"))
    assert result.status == "failed" and "no-such-model" in result.error
    assert "Traceback" in result.traceback
    saved = json.loads((Path(result.job_dir) / "result.json").read_text())
    assert saved["status"] == "failed"


def test_resume_refuses_corrupt_or_mismatched_checkpoints(tmp_path):
    spec = _spec(tmp_path, train_params={**TINY["train_params"], "epochs": 2})
    first = run_job(spec)
    assert first.status == "ok"
    other = run_job(dataclasses.replace(spec, resume=True, train_params={
        **TINY["train_params"], "epochs": 3}, model_params={"hidden": 9}))
    assert other.status == "failed" and "different run" in other.error
    ckpt = Path(first.job_dir) / "checkpoints"
    assert json.loads((ckpt / POINTER).read_text())["stem"]
    # A damaged latest checkpoint falls back to the previous good one (tests/faults); with
    # every checkpoint damaged there is nothing to resume from, and the job says why.
    for tensor_file in ckpt.glob("ckpt-*.safetensors"):
        blob = bytearray(tensor_file.read_bytes())
        blob[-5] ^= 0xFF
        tensor_file.write_bytes(bytes(blob))
    (Path(first.job_dir) / "result.json").unlink()
    corrupt = run_job(dataclasses.replace(spec, resume=True))
    assert corrupt.status == "failed" and "checksum mismatch" in corrupt.error


def test_completed_job_resume_is_a_no_op_and_metrics_are_per_epoch(tmp_path):
    spec = _spec(tmp_path, train_params={**TINY["train_params"], "epochs": 3})
    first = run_job(spec)
    assert first.status == "ok", first.error
    again = run_job(dataclasses.replace(spec, resume=True))
    assert again.sha256 == first.sha256
    records = read_jsonl(Path(first.job_dir) / "metrics.jsonl")
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    for r in epochs:
        assert {"train_loss", "val_loss", "val_dir_acc", "lr", "batch_size"} <= set(r)
        assert np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"])
    bundle = TrainedModel.load(first.bundle)
    assert bundle.meta["best_epoch"] == first.train["best_epoch"]


def test_early_stopping_restores_best_epoch(tmp_path):
    trainer = _trainer(tmp_path, epochs=30, patience=2, lr=5e-2)
    outcome = trainer.fit()
    assert outcome.stopped_early and outcome.epochs < 30
    assert outcome.epochs - outcome.best_epoch == 2
    val, _ = trainer.evaluate(trainer.val_rows)
    assert val == pytest.approx(outcome.best_val_loss, rel=1e-5)
