"""Augmentation is configurable from RunSpec / the CLI and used by the trainer when switched
on: it changes the training windows the model sees and nothing else (validation and test
windows are byte-identical with it on or off)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.config import AugmentConfig, FeatureConfig, SplitConfig
from causalcast.data.resolve import resolve_source
from causalcast.evaluation.predictions import load_predictions
from causalcast.models.base import build_model
from causalcast.models.bundle import TrainedModel
from causalcast.training.data import build_training_data
from causalcast.training.job import seed_everything
from causalcast.training.plan import PlanError
from causalcast.training.runner import Executor, RunSpec
from causalcast.training.trainer import TrainConfig, Trainer

DATA = "synthetic:2,400,0.5,1"


def _inputs_seen(tmp_path, augment: AugmentConfig | None) -> dict[str, list[bytes]]:
    """Every window batch the model's forward received during one epoch, by mode."""
    frames, _ = resolve_source(DATA)
    data = build_training_data(frames, FeatureConfig(lookback=10, horizons=(1, 2)),
                               SplitConfig(n_folds=1))
    seed_everything(0)
    model = build_model("lstm", n_features=len(data.feature_names), n_horizons=2,
                        lookback=10, hidden=8)
    seen: dict[str, list[bytes]] = {"train": [], "eval": []}
    model.register_forward_pre_hook(lambda m, args: seen["train" if m.training else "eval"]
                                    .append(args[0].detach().numpy().tobytes()))
    config = TrainConfig(epochs=1, batch_size=64, seed=0)
    Trainer(model, data, config, tmp_path / ("on" if augment else "off"), run_key="k",
            augment=augment).fit()
    return seen


def test_the_trainer_augments_training_windows_only(tmp_path):
    off = _inputs_seen(tmp_path, None)
    on = _inputs_seen(tmp_path, AugmentConfig(enabled=True, jitter_std=0.1))
    assert len(on["train"]) == len(off["train"]) > 1
    assert all(a != b for a, b in zip(on["train"], off["train"], strict=True))
    assert on["eval"] == off["eval"] and off["eval"]      # validation windows: same bytes


@pytest.mark.slow
def test_augment_from_the_cli_reaches_the_trained_bundle(tmp_path):
    args = ["train", "--data", "synthetic:2,400,0.5,1", "--models", "lstm", "--horizons", "1,2",
            "--lookback", "10", "--set", "lstm.hidden=8", "--epochs", "1", "--threads", "1",
            "--quiet", "--json"]
    runner = CliRunner()
    plain = runner.invoke(app, [*args, "--out", str(tmp_path / "off")])
    on = runner.invoke(app, [*args, "--augment", "--set", "augment.jitter_std=0.2",
                             "--out", str(tmp_path / "on")])
    assert plain.exit_code == 0 and on.exit_code == 0, on.output
    assert json.loads(on.stdout)[0]["sha256"] != json.loads(plain.stdout)[0]["sha256"]
    job = "final/lstm/global/fold0"
    meta = TrainedModel.load(tmp_path / "on" / job / "model").meta
    assert meta["augment"]["enabled"] and meta["augment"]["jitter_std"] == 0.2
    assert "augment" not in TrainedModel.load(tmp_path / "off" / job / "model").meta
    a = load_predictions(tmp_path / "on" / job / "predictions.parquet")
    b = load_predictions(tmp_path / "off" / job / "predictions.parquet")
    same = ["symbol", "date", "split", "position", "close", "y_1", "y_2"]
    assert a[same].equals(b[same])                        # the same val/test rows and targets


def test_runspec_refuses_augmentation_training_cannot_honour(tmp_path):
    with pytest.raises(PlanError, match=r"augment\.bootstrap_copies"):
        RunSpec(data=DATA, models=("lstm",), augment={"bootstrap_copies": 2})
    with pytest.raises(PlanError,
                       match=r"augment\.jitter_std: .*greater than or equal to 0 \(got -1\)"):
        RunSpec(data=DATA, models=("lstm",), augment={"jitter_std": -1})
    off = RunSpec(data=DATA, models=("ridge",), scopes=("global",),
                  augment={"enabled": False})
    summary = Executor("inline", progress=False).run(off, out=tmp_path)
    assert summary.status == "done"
    assert "augment" not in TrainedModel.load(
        tmp_path / "final" / "ridge" / "global" / "fold0" / "model").meta
    assert torch.get_num_threads() >= 1
