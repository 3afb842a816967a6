"""Issue 13 item 3: frames users already have (Yahoo-style ``Open``/``Adj Close``, any case) are
accepted by validate_ohlcv, build_features, check_causal and the forecast API, or refused with
the missing column named; never ``KeyError: 'open'``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from causalcast.audit import check_causal
from causalcast.config import FeatureConfig, SplitConfig
from causalcast.data.quality import DataValidationError, normalize_columns, validate_ohlcv
from causalcast.data.resolve import resolve_source
from causalcast.features.indicators import build_features
from causalcast.models import build_model
from causalcast.models.bundle import TrainedModel
from causalcast.training.data import build_training_data
from tests.support.frames import random_ohlcv

STYLES = {
    "yahoo": {"open": "Open", "high": "High", "low": "Low", "close": "Close",
              "volume": "Volume"},
    "upper": {"open": "OPEN", "high": "HIGH", "low": "LOW", "close": "CLOSE",
              "volume": "VOLUME"},
    "padded": {"open": " open", "high": "High ", "low": "lOw", "close": "close",
               "volume": "Volume"},
}


def _styled(frame: pd.DataFrame, style: str, adj: bool = True) -> pd.DataFrame:
    out = frame.rename(columns=STYLES[style])
    if adj:
        out["Adj Close"] = frame["close"] * 0.9
    return out


@pytest.fixture(scope="module")
def bundle_and_frames():
    frames, _ = resolve_source("synthetic:2,400,0.5,3")
    d = build_training_data(frames, FeatureConfig(lookback=12, horizons=(1, 3)),
                            SplitConfig())
    model = build_model("ridge", n_features=len(d.feature_names), n_horizons=2, lookback=12)
    rows = d.rows("train")
    model.fit_closed_form(d.x_last(rows), d.y_std[rows], d.zero_point)
    torch.manual_seed(0)
    bundle = TrainedModel(model=model, feature_names=d.feature_names, lookback=12,
                          horizons=(1, 3), scalers=d.scalers, target_mean=d.target_mean,
                          target_std=d.target_std, meta={"symbols": d.symbols})
    return bundle, frames


@pytest.mark.parametrize("style", sorted(STYLES))
def test_validate_and_features_accept_any_case(style: str) -> None:
    frame = random_ohlcv(150, seed=2)
    styled = _styled(frame, style)
    clean, report = validate_ohlcv(styled, "user")
    assert list(clean.columns[:5]) == ["open", "high", "low", "close", "volume"]
    assert "adj_close" in clean.columns and report.n_bars == 150
    pd.testing.assert_frame_equal(build_features(styled), build_features(frame))


def test_check_causal_accepts_a_yahoo_frame() -> None:
    frame = random_ohlcv(200, seed=4)
    got = check_causal(build_features, _styled(frame, "yahoo"), n_cuts=4)
    want = check_causal(build_features, frame, n_cuts=4)
    assert [(c.name, c.subject, c.passed) for c in got] == \
        [(c.name, c.subject, c.passed) for c in want]
    assert all(c.passed for c in got)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_forecast_api_accepts_any_case(bundle_and_frames, style: str) -> None:
    bundle, frames = bundle_and_frames
    plain = frames["SYN000"]
    styled = _styled(plain, style)
    np.testing.assert_array_equal(bundle.latest_window("SYN000", styled),
                                  bundle.latest_window("SYN000", plain))
    assert bundle.forecast({"SYN000": styled}) == bundle.forecast({"SYN000": plain})


def test_missing_column_is_named_everywhere(bundle_and_frames) -> None:
    bundle, frames = bundle_and_frames
    no_volume = _styled(frames["SYN000"], "yahoo").drop(columns=["Volume"])
    calls = [lambda: validate_ohlcv(no_volume, "user"),
             lambda: build_features(no_volume),
             lambda: check_causal(build_features, no_volume, n_cuts=2),
             lambda: bundle.latest_window("SYN000", no_volume),
             lambda: bundle.forecast({"SYN000": no_volume})]
    for call in calls:
        with pytest.raises(DataValidationError, match=r"volume at header: missing column"):
            call()


def test_two_columns_for_one_name_are_refused() -> None:
    frame = random_ohlcv(20, seed=1)
    both = frame.assign(Close=frame["close"] * 2)
    with pytest.raises(DataValidationError, match="more than one column maps to 'close'"):
        normalize_columns(both, "user")
