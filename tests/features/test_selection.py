"""Feature redundancy filter: fitted on training rows only, off unless asked for."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.audit import perturb_after
from causalcast.config import FeatureConfig, SplitConfig
from causalcast.data.resolve import resolve_source
from causalcast.features.pipeline import prepare_symbol
from causalcast.features.selection import CorrelationFilter
from causalcast.models.bundle import TrainedModel
from causalcast.training.data import build_training_data
from causalcast.training.job import JobSpec, run_job

DATA = "synthetic:3,700,0.325,5"
FEATURES = FeatureConfig(lookback=12, horizons=(1, 5))


def test_filter_drops_a_near_copy_and_a_constant_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500), rng.normal(size=500)
    x = np.column_stack([a, a * 2 + 1e-3 * rng.normal(size=500), b, np.full(500, 3.0),
                         -a + 0.5 * b])
    f = CorrelationFilter(0.95).fit(x, ["a", "a2", "b", "const", "mix"])
    assert f.names_ == ["a", "b", "mix"]
    assert f.dropped_ == {"a2": "a", "const": "(constant on training rows)"}
    np.testing.assert_array_equal(f.transform(x), x[:, [0, 2, 4]])
    with pytest.raises(ValueError, match="threshold must be in"):
        CorrelationFilter(1.5)
    with pytest.raises(RuntimeError, match="before fit"):
        CorrelationFilter().transform(x)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.5, 0.99))
def test_no_two_kept_columns_exceed_the_threshold(seed, threshold):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(200, 4))
    x = np.column_stack([base, base @ rng.normal(size=(4, 6)) + 0.3 * rng.normal(size=(200, 6))])
    f = CorrelationFilter(threshold).fit(x, [f"c{j}" for j in range(x.shape[1])])
    kept = f.transform(x)
    corr = np.abs(np.corrcoef(kept.T))
    np.fill_diagonal(corr, 0)
    assert corr.max() <= threshold + 1e-9
    # every dropped column names a kept twin it is (over-)correlated with
    for name, twin in f.dropped_.items():
        j, k = int(name[1:]), int(twin[1:])
        assert abs(np.corrcoef(x[:, j], x[:, k])[0, 1]) > threshold - 1e-9


def test_training_data_fits_the_filter_on_training_rows_only():
    frames, _ = resolve_source(DATA)
    split = SplitConfig(n_folds=3)
    data = build_training_data(frames, FEATURES, split, fold=1, walk_forward=True,
                               decorrelate=0.9)
    assert data.selection is not None and data.selection["dropped"]
    assert data.feature_names == data.selection["kept"]
    assert data.windows.features.shape[1] == len(data.feature_names)
    # Refit by hand on exactly the (unscaled) training rows of every symbol: same choice.
    full = build_training_data(frames, FEATURES, split, fold=1, walk_forward=True)
    raw = np.concatenate([prepare_symbol(s, f, FEATURES).features[
        full.folds[s].train.start:full.folds[s].train.stop] for s, f in frames.items()])
    ref = CorrelationFilter(0.9).fit(raw, full.feature_names)
    assert ref.names_ == data.feature_names
    # Changing every bar after the training range changes nothing in the choice.
    last_train = max(full.folds[s].train.stop for s in full.symbols)
    moved = {s: perturb_after(f, last_train - 1, np.random.default_rng(1))
             for s, f in frames.items()}
    again = build_training_data(moved, FEATURES, split, fold=1, walk_forward=True,
                                decorrelate=0.9)
    assert again.selection == data.selection
    # ... while changing training bars can change it (the check is not vacuous).
    early = {s: perturb_after(f, 80, np.random.default_rng(2)) for s, f in frames.items()}
    changed = build_training_data(early, FEATURES, split, fold=1, walk_forward=True,
                                  decorrelate=0.9)
    assert changed.windows.features.tobytes() != data.windows.features.tobytes()


def test_job_switch_is_off_by_default_and_the_bundle_carries_the_kept_features(tmp_path):
    spec = JobSpec(model="ridge", data=DATA, out_dir=str(tmp_path / "on"), horizons=(1, 5),
                   lookback=12, decorrelate=0.9)
    off = JobSpec(model="ridge", data=DATA, out_dir=str(tmp_path / "off"), horizons=(1, 5),
                  lookback=12)
    assert "decorrelate" not in off.identity() and "until" not in off.identity()
    assert spec.identity()["decorrelate"] == 0.9 and spec.key() != off.key()
    on_result, off_result = run_job(spec), run_job(off)
    assert on_result.status == off_result.status == "ok", on_result.error
    on_bundle = TrainedModel.load(on_result.bundle)
    off_bundle = TrainedModel.load(off_result.bundle)
    assert len(on_bundle.feature_names) < len(off_bundle.feature_names)
    assert on_bundle.meta["selection"]["kept"] == on_bundle.feature_names
    assert "selection" not in off_bundle.meta
    # The filtered bundle still forecasts from raw bars (serving computes only kept features).
    frames, _ = resolve_source(DATA)
    forecast = on_bundle.forecast(frames)
    assert sorted(forecast) == sorted(frames)
