"""Windows are views over one contiguous array; scalers see training rows only."""

from __future__ import annotations

import numpy as np
import pytest

from causalcast.config import FeatureConfig, SplitConfig
from causalcast.features.pipeline import FoldScaler, align_fold, common_calendar, prepare_symbol
from causalcast.splits import make_folds
from causalcast.windows import build_window_set


@pytest.fixture(scope="module")
def window_data(universe):
    cfg = FeatureConfig(lookback=30, horizons=(1, 5, 10))
    prepared = [prepare_symbol(s, f, cfg) for s, f in universe.frames.items()]
    calendar = common_calendar(prepared)
    fold = make_folds(calendar, cfg, SplitConfig(n_folds=2))[1]
    folds = {p.symbol: align_fold(fold, calendar, p) for p in prepared}
    return prepared, folds


def test_windows_match_materialised_slices(window_data):
    prepared, folds = window_data
    ws, _scalers = build_window_set(prepared, folds)
    rows = np.concatenate([ws.samples["train"][:5], ws.samples["test"][-5:]])
    batch = ws.windows(rows)
    assert batch.shape == (10, 30, ws.features.shape[1]) and batch.dtype == np.float32
    for k, row in enumerate(rows):
        np.testing.assert_array_equal(batch[k], ws.features[row - 29: row + 1])
        sid = ws.symbol_of_row[row]
        assert (ws.symbol_of_row[row - 29: row + 1] == sid).all()  # never crosses symbols


def test_window_view_is_zero_copy(window_data):
    prepared, folds = window_data
    ws, _ = build_window_set(prepared, folds)
    view = ws.window_view()
    assert np.shares_memory(view, ws.features)
    assert not view.flags.writeable
    assert ws.nbytes < view.size * 4 / 10  # materialising would cost >10x more


def test_scaler_statistics_come_from_training_rows_only(window_data):
    prepared, folds = window_data
    _, scalers = build_window_set(prepared, folds)
    for p in prepared:
        fold = folds[p.symbol]
        train = p.features[fold.train.start:fold.train.stop].astype(np.float64)
        np.testing.assert_allclose(scalers[p.symbol].mean_, train.mean(axis=0))
        # Changing every row after the training range changes nothing in the scaler.
        altered = p.features.copy()
        altered[fold.train.stop:] *= 3.0
        refit = FoldScaler().fit(altered[fold.train.start:fold.train.stop])
        np.testing.assert_array_equal(refit.mean_, scalers[p.symbol].mean_)


def test_scaler_refuses_warmup_rows_and_unfitted_use():
    with pytest.raises(ValueError, match="NaN"):
        FoldScaler().fit(np.array([[1.0], [np.nan], [2.0]]))
    with pytest.raises(RuntimeError, match="before fit"):
        FoldScaler().transform(np.zeros((2, 2)))
    state = FoldScaler().fit(np.arange(10.0).reshape(5, 2)).state_dict()
    again = FoldScaler.from_state(state)
    np.testing.assert_array_equal(again.transform(np.ones((1, 2))),
                                  FoldScaler().fit(np.arange(10.0).reshape(5, 2)).transform(
                                      np.ones((1, 2))))


def test_samples_have_complete_windows_and_targets(window_data):
    prepared, folds = window_data
    ws, _ = build_window_set(prepared, folds)
    for split in ("train", "val", "test"):
        rows = ws.samples[split]
        assert np.isfinite(ws.windows(rows)).all()
        assert np.isfinite(ws.y(rows)).all()
