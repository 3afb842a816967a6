"""One way to train: `causalcast train`, `train --parallel`, the main job's training stage and
the Python API all run `Executor`, so one spec and seed give byte-identical artifacts; the
device option, and a tuning result passed straight back to `train`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.data.resolve import resolve_source
from causalcast.models.bundle import TrainedModel
from causalcast.pipeline import Dataset, train_dataset
from causalcast.registry import Registry
from causalcast.training.device import resolve_device
from causalcast.training.runner import Executor, RunnerError, RunSpec

DATA = "synthetic:2,400,0.5,1"
SPEC = RunSpec(data=DATA, models=("ridge", "lstm"), scopes=("global",), horizons=(1, 2),
               lookback=10, seed=3, model_params={"lstm": {"hidden": 8}},
               train_params={"epochs": 1})
CLI = ["--data", "synthetic:2,400,0.5,1", "--seed", "3", "--models", "ridge,lstm", "--horizons",
       "1,2", "--lookback", "10", "--set", "lstm.hidden=8", "--epochs", "1", "--quiet",
       "--json"]


def _bundle_sha(out: Path, model: str) -> str:
    data = (out / "final" / model / "global" / "fold0" / "model.safetensors").read_bytes()
    return hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_every_entry_point_trains_byte_identical_artifacts(tmp_path):
    runner = CliRunner()
    seq = runner.invoke(app, ["train", *CLI, "--threads", "1", "--out", str(tmp_path / "seq")])
    assert seq.exit_code == 0, seq.output
    sequential = {r["model"]: r["sha256"] for r in json.loads(seq.stdout)}

    par = runner.invoke(app, ["train", *CLI, "--parallel", "--workers", "2", "--no-audit",
                              "--home", str(tmp_path / "par"), "--run-id", "par"])
    assert par.exit_code == 0, par.output
    parallel = {j["model"]: j["sha256"] for j in json.loads(par.stdout)["jobs"]}

    frames, universe = resolve_source(DATA)
    ds = Dataset("synthetic", DATA, frames, audit=None, ceiling=universe)  # type: ignore[arg-type]
    run = train_dataset(ds, home=tmp_path / "run", models=SPEC.models, n_folds=2,
                        horizons=SPEC.horizons, lookback=SPEC.lookback, seed=SPEC.seed,
                        profile="quick", workers=2, train_params=SPEC.train_params,
                        model_params=SPEC.model_params, audit=False)
    pipeline = {j.model: j.sha256 for j in run.jobs if j.label.endswith("/final")}

    api = Executor("inline", threads=1, progress=False).run(SPEC, home=tmp_path / "api")
    python_api = {j.model: j.sha256 for j in api.jobs}

    assert set(sequential) == {"ridge", "lstm"} and all(sequential.values())
    assert sequential == parallel == pipeline == python_api
    for model, digest in sequential.items():   # the files themselves, not only the records
        assert _bundle_sha(tmp_path / "seq", model) == digest
        assert _bundle_sha(tmp_path / "run" / "runs" / run.run_id, model) == digest

    # `evaluate --run --attach` scores the run's walk-forward folds and attaches the result
    # to the final fits it registered: no second registration.
    home = tmp_path / "run"
    res = runner.invoke(app, ["evaluate", "--run", run.run_id, "--home", str(home), "--data",
                              DATA, "--no-audit", "--ensemble", "none", "--attach", "--json"])
    assert res.exit_code == 0, res.output
    attached = json.loads(res.stdout)["attached"]
    assert attached == {"ridge": "ridge/global:1", "lstm": "lstm/global:1"}
    with Registry.open(home, create=False) as registry:
        assert len(registry.versions(name="ridge/global")) == 1
        evaluation = registry.evaluation("ridge/global:1")
        assert evaluation["evaluation_run"] == run.run_id
        assert evaluation["baseline_comparison"]["split"] == "validation"
        assert evaluation["significance"]["split"] == "walk_forward_test"


def test_device_option_is_honoured_or_refused_in_one_line(tmp_path):
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device: choose from auto, cpu, cuda"):
        resolve_device("gpu")
    runner = CliRunner()
    res = runner.invoke(app, ["train", *CLI, "--device", "gpu", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "device: choose from" in res.output
    assert len(res.output.strip().splitlines()) == 1
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RunnerError, match="no CUDA device"):
            Executor("inline", device="cuda")
        res = runner.invoke(app, ["train", *CLI, "--device", "cuda", "--out", str(tmp_path)])
        assert res.exit_code == 2 and "no CUDA device" in res.output
        assert len(res.output.strip().splitlines()) == 1 and not any(tmp_path.iterdir())
    spec = RunSpec(**{**SPEC.to_dict(), "models": ("lstm",)})
    auto = Executor("inline", device="auto", threads=1, progress=False).run(
        spec, out=tmp_path / "auto")
    cpu = Executor("inline", device="cpu", threads=1, progress=False).run(
        spec, out=tmp_path / "cpu")
    assert cpu.status == "done" and cpu.results[0]["status"] == "ok"
    if resolve_device("auto").type == "cpu":
        assert cpu.jobs[0].sha256 == auto.jobs[0].sha256


def test_a_tuning_result_is_passed_straight_back_to_train(tmp_path):
    from causalcast.training.tuning import tune

    result = tune("ridge", DATA, tmp_path / "home", 2, horizons=(1, 2), lookback=10,
                  n_folds=3, seed=0)
    alpha = result.best_params["alpha"]
    assert result.train_args == ["--set", f"ridge.alphas={alpha!r}"]
    assert result.to_dict()["train_args"] == result.train_args
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["train", "--data", "synthetic:2,400,0.5,1", "--models", "ridge",
                                   "--horizons", "1,2", "--lookback", "10", "--quiet",
                                   "--out", str(out), *result.train_args])
    assert res.exit_code == 0, res.output
    bundle = TrainedModel.load(out / "final" / "ridge" / "global" / "fold0" / "model")
    assert bundle.model.config.alphas == (alpha,)   # exactly the tuned penalty
    shown = CliRunner().invoke(app, ["tune", "--model", "ridge", "--data", DATA, "--trials",
                                     "2", "--home", str(tmp_path / "home"), "--horizons",
                                     "1,2", "--lookback", "10", "--folds", "3"])
    assert shown.exit_code == 0, shown.output
    assert f"--set ridge.alphas={alpha!r}" in shown.output
