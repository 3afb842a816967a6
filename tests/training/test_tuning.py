"""Optuna tuning on inner validation only: test folds are never read; the study resumes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import causalcast.training.job as job_module
from causalcast.audit import perturb_after
from causalcast.cli import app
from causalcast.data.resolve import resolve_source
from causalcast.data.sources import write_ohlcv
from causalcast.training.job import JobSpec, run_job
from causalcast.training.predictions import load_predictions
from causalcast.training.tuning import tune

SOURCE = "synthetic:4,1200,0.38,3"
KW = dict(horizons=(1, 5), lookback=12, n_folds=5, seed=0)


@pytest.fixture(scope="module")
def frames():
    return resolve_source(SOURCE)[0]


def _write(frames: dict[str, pd.DataFrame], folder) -> str:
    write_ohlcv(frames, folder, fmt="parquet")
    return str(folder)


def _values(result) -> list[float]:
    return [t["value"] for t in result.trials if t["state"] == "COMPLETE"]


@pytest.mark.slow
def test_trials_never_read_the_outer_test_folds(frames, tmp_path, monkeypatch):
    """The instrumented test: every frame a trial's job loads is recorded, and poisoning every
    bar after the cut-off leaves every trial's validation loss bit-identical."""
    data = _write(frames, tmp_path / "data")
    seen: list[pd.Timestamp] = []
    real = job_module.build_training_data

    def spy(frames_arg, *args, **kwargs):
        seen.append(max(f.index.max() for f in frames_arg.values()))
        return real(frames_arg, *args, **kwargs)

    monkeypatch.setattr(job_module, "build_training_data", spy)
    result = tune("ridge", data, tmp_path / "home", 3, **KW)
    monkeypatch.undo()
    assert result.n_complete == 3 and len(seen) == 3
    until, first_test = pd.Timestamp(result.until), pd.Timestamp(result.first_test)
    assert max(seen) <= until < first_test
    # The outer walk-forward the model is evaluated on: its first test bar comes later.
    outer = run_job(JobSpec(model="naive", data=data, out_dir=str(tmp_path / "outer"), fold=0,
                            **KW))
    preds = load_predictions(outer.predictions)
    assert preds[preds.split == "test"]["date"].min() == first_test
    assert preds[preds.split == "val"]["date"].min() > until

    cut = frames["SYN000"].index.get_loc(until)
    poisoned = {s: perturb_after(f, cut, np.random.default_rng(9)) for s, f in frames.items()}
    assert not poisoned["SYN000"].iloc[cut + 1:].equals(frames["SYN000"].iloc[cut + 1:])
    same = tune("ridge", _write(poisoned, tmp_path / "poisoned"), tmp_path / "home2", 3, **KW)
    assert same.until == result.until and _values(same) == _values(result)
    # Not vacuous: poisoning bars the trials may read does change the losses.
    early = {s: perturb_after(f, cut - 200, np.random.default_rng(9)) for s, f in frames.items()}
    other = tune("ridge", _write(early, tmp_path / "early"), tmp_path / "home3", 3, **KW)
    assert _values(other) != _values(result)


@pytest.mark.slow
def test_study_is_persistent_and_resumable(tmp_path):
    home = tmp_path / "home"
    first = tune("ridge", SOURCE, home, 2, **KW)
    assert (home / "tuning.db").exists() and first.n_new == 2
    again = tune("ridge", SOURCE, home, 3, **KW)
    assert again.n_new == 1 and again.n_complete == 3 and again.study == first.study
    assert _values(again)[:2] == _values(first)
    assert tune("ridge", SOURCE, home, 3, **KW).n_new == 0
    best = json.loads((home / "tuning" / first.study / "best.json").read_text())
    assert best["best_value"] == min(_values(again)) and "alpha" in best["best_params"]
    with pytest.raises(ValueError, match="was run with data until"):
        tune("ridge", SOURCE, home, 3, name=first.study, **{**KW, "n_folds": 3})
    with pytest.raises(ValueError, match="no search space"):
        tune("naive", SOURCE, home, 1, **KW)


@pytest.mark.slow
def test_tune_command_runs_a_deep_model(tmp_path):
    res = CliRunner().invoke(app, ["tune", "--model", "lstm", "--data", SOURCE, "--trials", "1",
                                   "--home", str(tmp_path), "--horizons", "1,5",
                                   "--lookback", "12", "--epochs", "1", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n_complete"] == 1 and np.isfinite(out["best_value"])
    assert out["best_train_params"]["epochs"] == 1 and "hidden" in out["best_model_params"]
