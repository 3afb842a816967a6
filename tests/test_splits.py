"""Invariant 2: temporal splits with purge and embargo; walk-forward folds; clear errors."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.audit import check_purge
from causalcast.config import FeatureConfig, SplitConfig
from causalcast.features.pipeline import align_fold, common_calendar, prepare_symbol
from causalcast.splits import Fold, SplitError, make_folds, temporal_split, walk_forward
from tests.support.frames import random_ohlcv


def test_temporal_split_orders_and_purges():
    fold = temporal_split(0, 1000, max_horizon=30, embargo=5)
    assert fold.train.start == 0 and fold.test.stop == 1000
    assert fold.val.start - fold.train.stop == 35
    assert fold.test.start - fold.val.stop == 35
    assert all(c.passed for c in check_purge([fold], 30))


@settings(max_examples=200, deadline=None)
@given(n=st.integers(200, 5000), h=st.integers(1, 40), embargo=st.integers(0, 20),
       folds=st.integers(1, 8), mode=st.sampled_from(["expanding", "rolling"]))
def test_walk_forward_never_overlaps_labels(n, h, embargo, folds, mode):
    try:
        result = walk_forward(0, n, max_horizon=h, n_folds=folds, embargo=embargo, mode=mode)
    except SplitError:
        return
    assert len(result) == folds
    for fold in result:
        # No training label (t, t+h] reaches a validation or test bar.
        assert fold.train.stop - 1 + h < fold.val.start
        assert fold.val.stop - 1 + h < fold.test.start
        assert fold.test.stop <= n
    tests = [f.test for f in result]
    assert all(a.stop == b.start for a, b in itertools.pairwise(tests))


def test_expanding_and_rolling_training_ranges():
    exp = walk_forward(0, 2000, max_horizon=10, n_folds=4, mode="expanding")
    roll = walk_forward(0, 2000, max_horizon=10, n_folds=4, mode="rolling", min_train=500)
    assert all(f.train.start == 0 for f in exp)
    assert [len(f.train) for f in exp] == sorted(len(f.train) for f in exp)
    assert all(len(f.train) == 500 for f in roll)


def test_purge_below_horizon_is_refused():
    with pytest.raises(SplitError, match="purge"):
        temporal_split(0, 1000, max_horizon=30, purge=10)
    with pytest.raises(SplitError, match="purge"):
        walk_forward(0, 1000, max_horizon=30, purge=5)


def test_impossible_configurations_fail_clearly():
    with pytest.raises(SplitError, match="cannot hold"):
        walk_forward(0, 100, max_horizon=30, n_folds=5)
    with pytest.raises(SplitError, match="n_folds"):
        walk_forward(0, 1000, max_horizon=5, n_folds=0)
    with pytest.raises(SplitError, match="mode"):
        walk_forward(0, 1000, max_horizon=5, mode="random")
    with pytest.raises(SplitError):
        temporal_split(0, 50, max_horizon=30)


def test_split_without_purge_is_caught_by_the_audit():
    leaky = Fold(0, range(0, 700), range(700, 850), range(850, 1000), purge=0, embargo=0)
    with pytest.raises(SplitError, match="purge"):
        leaky.check(max_horizon=30)
    checks = check_purge({"X": leaky}, 30)
    assert not checks[0].passed and "train->val" in checks[0].detail
    assert checks[0].subject == "fold 0"


def test_overlapping_ranges_fail():
    fold = Fold(1, range(0, 800), range(790, 900), range(935, 1000), purge=30, embargo=5)
    with pytest.raises(SplitError, match="fold 1: train/val"):
        fold.check(30)


def test_calendar_alignment_purges_by_label_end_time():
    cfg = FeatureConfig(lookback=20, horizons=(1, 5))
    a = random_ohlcv(800, seed=1)
    b = random_ohlcv(800, seed=2)
    b = b.drop(b.index[400:430])  # a trading halt: b's bars span more calendar time
    prepared = [prepare_symbol("A", a, cfg), prepare_symbol("B", b, cfg)]
    calendar = common_calendar(prepared)
    for fold in make_folds(calendar, cfg, SplitConfig(n_folds=3)):
        for p in prepared:
            aligned = align_fold(fold, calendar, p)
            assert aligned.train.stop - 1 + 5 < aligned.val.start
            # Calendar time: no training sample of either symbol is dated inside evaluation.
            assert p.dates[aligned.train.stop - 1] < calendar[fold.val.start]
            assert p.dates[aligned.test.start] >= calendar[fold.test.start]
