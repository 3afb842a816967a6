"""Every model behind one interface: shapes, config round trip, save -> load with identical
outputs, refusal of corrupt or mismatched files, forecasts from raw OHLCV bars."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from causalcast.config import FeatureConfig, SplitConfig
from causalcast.data.resolve import resolve_source
from causalcast.models import MODELS, build_model, model_from_dict, model_to_dict
from causalcast.models.bundle import POOLED, TrainedModel
from causalcast.models.forecast import ForecastBatch
from causalcast.training.data import build_training_data
from causalcast.weights import WeightsError, serialize, sha256_bytes

SMALL = {"lstm": {"hidden": 8}, "tcn": {"channels": 8, "blocks": 3},
         "mamba": {"d_model": 8, "n_layers": 2, "d_state": 4}}


@pytest.fixture(scope="module")
def data():
    frames, _ = resolve_source("synthetic:2,500,0.5,1")
    return build_training_data(frames, FeatureConfig(lookback=12, horizons=(1, 3)),
                               SplitConfig()), frames


def _bundle(name: str, data) -> TrainedModel:
    torch.manual_seed(0)
    d = data
    model = build_model(name, n_features=len(d.feature_names), n_horizons=2, lookback=12,
                        **SMALL.get(name, {}))
    if model.trainable:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    else:
        rows = d.rows("train")
        model.fit_closed_form(d.x_last(rows), d.y_std[rows], d.zero_point)
    return TrainedModel(model=model, feature_names=d.feature_names, lookback=12,
                        horizons=(1, 3), scalers=d.scalers, target_mean=d.target_mean,
                        target_std=d.target_std, meta={"symbols": d.symbols})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_load_gives_identical_outputs(name, data, tmp_path):
    d, frames = data
    bundle = _bundle(name, d)
    windows = d.x(d.rows("test"))
    expected = bundle.raw_params(windows)
    blob, config = bundle.to_artifact()
    for loaded in (TrainedModel.from_artifact(blob, config),
                   TrainedModel.from_artifact(blob),
                   TrainedModel.load(tmp_path / "m") if bundle.save(tmp_path / "m") else None):
        got = loaded.raw_params(windows)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
        assert loaded.forecast(frames) == bundle.forecast(frames)
    assert bundle.to_artifact()[0] == blob                     # equal model, equal bytes


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shapes_and_config_round_trip(name):
    model = build_model(name, n_features=5, n_horizons=3, lookback=16, **SMALL.get(name, {}))
    loc, scale = model(torch.randn(4, 16, 5))
    assert loc.shape == scale.shape == (4, 3) and bool((scale > 0).all())
    again = model_from_dict(model_to_dict(model))
    assert model_to_dict(again) == model_to_dict(model)
    assert set(again.state_dict()) == set(model.state_dict())


def test_bad_configs_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="unknown config fields \\['hiden'\\]"):
        build_model("lstm", n_features=3, n_horizons=1, lookback=5, hiden=3)
    with pytest.raises(ValueError, match="df"):
        build_model("lstm", n_features=3, n_horizons=1, lookback=5, df=2.0)
    with pytest.raises(KeyError, match="unknown name 'gru'"):
        build_model("gru", n_features=3, n_horizons=1, lookback=5)


def test_corrupt_and_mismatched_bundles_are_refused(data, tmp_path):
    d, _ = data
    bundle = _bundle("lstm", d)
    blob, config = bundle.to_artifact()
    broken = bytearray(blob)
    broken[-3] ^= 0x01

    with pytest.raises(WeightsError, match="checksum mismatch"):
        TrainedModel.from_artifact(bytes(broken), config, sha256_bytes(blob))
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        TrainedModel.from_artifact(blob[:100], config)
    wider = dict(config, model={"name": "lstm", "config": {**config["model"]["config"],
                                                           "hidden": 9}})
    with pytest.raises(WeightsError, match="does not match"):
        TrainedModel.from_artifact(blob, wider)
    # a file whose own header describes a different architecture than its tensors
    other = _bundle("lstm", d)
    other.model = build_model("lstm", n_features=len(d.feature_names), n_horizons=2,
                              lookback=12, hidden=9)
    tensors, cfg = bundle._tensors_and_config()
    cfg["model"] = model_to_dict(other.model)

    forged, _ = serialize(tensors, cfg)
    with pytest.raises(WeightsError, match="shape mismatch"):
        TrainedModel.from_artifact(forged)
    bundle.save(tmp_path / "m")
    (tmp_path / "m.safetensors").write_bytes(bytes(broken))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        TrainedModel.load(tmp_path / "m")


def test_bytes_are_identical_across_processes(tmp_path):
    code = ("import torch,sys; from causalcast.weights import serialize; "
            "sys.stdout.buffer.write(serialize({'b': torch.ones(2), 'a': torch.zeros(3, "
            "dtype=torch.float64)}, {'z': 1, 'a': [1, 2], 'm': {'q': 1.5}})[0])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True,
                           check=True).stdout for _ in range(3)}
    assert len(outs) == 1


def test_forecast_from_raw_bars(data):
    d, frames = data
    bundle = _bundle("ridge", d)
    forecasts = bundle.forecast(frames)
    assert set(forecasts) == set(frames)
    f = forecasts["SYN000"]
    assert f.as_of == frames["SYN000"].index[-1].isoformat() and f.horizons == (1, 3)
    for h in f.horizons:
        row = f.horizon(h)
        assert 0 < row["prob_up"] < 1
        lo80, hi80 = row["intervals"]["80"]
        lo95, hi95 = row["intervals"]["95"]
        assert lo95 < lo80 < row["mean"] < hi80 < hi95
    # an unseen symbol uses the pooled training scaler
    unseen = bundle.forecast({"NEW": frames["SYN001"]})["NEW"]
    assert unseen.mean != forecasts["SYN001"].mean
    assert POOLED in bundle.scalers
    # too few bars for the lookback plus the indicators' warm-up: refused, saying how many
    with pytest.raises(ValueError, match=r"SHORT: 30 bars, need at least \d+"):
        bundle.forecast({"SHORT": frames["SYN000"].iloc[:30]})


def test_forecast_probabilities_and_intervals_match_the_distribution():
    loc = np.array([[0.01, -0.02]])
    scale = np.array([[0.02, 0.04]])
    batch = ForecastBatch.from_params(loc, scale, (1, 5), "student_t", 5.0)
    assert batch.prob_up[0, 0] == pytest.approx(stats.t(5).cdf(0.5))
    assert batch.prob_up[0, 1] == pytest.approx(1 - stats.t(5).cdf(0.5))
    assert batch.upper[0.95][0, 0] == pytest.approx(0.01 + stats.t(5).ppf(0.975) * 0.02)
    # intervals cover what they claim on draws from the same distribution
    rng = np.random.default_rng(0)
    draws = 0.01 + 0.02 * rng.standard_t(5, 200_000)
    inside = (draws >= batch.lower[0.8][0, 0]) & (draws <= batch.upper[0.8][0, 0])
    assert inside.mean() == pytest.approx(0.8, abs=0.005)
    gauss = ForecastBatch.from_params(loc, scale, (1, 5), "gaussian", 5.0)
    assert gauss.prob_up[0, 0] == pytest.approx(stats.norm.cdf(0.5))


@pytest.mark.parametrize("n_horizons", [1, 3])
def test_closed_form_baselines_fit_any_number_of_horizons(n_horizons):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    y = x[:, :1] * 0.5 + rng.standard_normal((200, n_horizons))
    for name in ("naive", "drift", "ridge"):
        model = build_model(name, n_features=4, n_horizons=n_horizons, lookback=3)
        model.fit_closed_form(x, y, zero_point=np.zeros(n_horizons))
        loc, scale = model(torch.as_tensor(x[:, None, :], dtype=torch.float32))
        assert loc.shape == scale.shape == (200, n_horizons)
    assert float(model.coef[0, 0]) == pytest.approx(0.5, abs=0.15)     # ridge learns
