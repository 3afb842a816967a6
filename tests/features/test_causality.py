"""Invariant 1: every registered indicator is a function of the past only, and the audit
catches planted look-ahead (centred moving average, whole-series z-score, np.convolve 'same')."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causalcast.audit import check_causal, perturb_after
from causalcast.features.indicators import INDICATORS, WARMUP, Bars, build_features
from causalcast.features.targets import make_targets
from tests.support.frames import random_ohlcv

MAX_BARS = 260


@st.composite
def series_and_cut(draw):
    n = draw(st.integers(min_value=5, max_value=MAX_BARS))
    seed = draw(st.integers(min_value=0, max_value=2**31 - 1))
    flat = draw(st.sampled_from([0, 0, 7]))
    cut = draw(st.integers(min_value=0, max_value=n - 1))
    return random_ohlcv(n, seed=seed, flat_every=flat), cut


@pytest.mark.parametrize("name", list(INDICATORS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=series_and_cut())
def test_indicator_is_prefix_invariant(name, data):
    """Value at t from bars[:t+1] equals value at t from the whole series."""
    ohlcv, t = data
    fn = INDICATORS[name].fn
    full = np.asarray(fn(Bars(ohlcv)), dtype=float)
    prefix = np.asarray(fn(Bars(ohlcv.iloc[: t + 1])), dtype=float)
    assert prefix.shape == (t + 1,)
    a, b = prefix[t], full[t]
    assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), (
        f"{name} at t={t}: prefix {a} vs full {b}")


@pytest.mark.parametrize("name", list(INDICATORS))
@settings(max_examples=15, deadline=None)
@given(data=series_and_cut(), seed=st.integers(0, 1000))
def test_indicator_ignores_changes_after_t(name, data, seed):
    ohlcv, t = data
    fn = INDICATORS[name].fn
    before = np.asarray(fn(Bars(ohlcv)), dtype=float)[: t + 1]
    after = np.asarray(fn(Bars(perturb_after(ohlcv, t, np.random.default_rng(seed)))),
                       dtype=float)[: t + 1]
    np.testing.assert_allclose(after, before, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_at_least_twenty_indicators_finite_after_warmup():
    ohlcv = random_ohlcv(400, flat_every=9)
    feats = build_features(ohlcv)
    assert feats.shape[1] >= 20
    assert np.isfinite(feats.iloc[WARMUP:].to_numpy()).all()


def test_targets_are_the_only_forward_looking_function():
    ohlcv = random_ohlcv(100)
    targets = make_targets(ohlcv, (1, 5))
    log_close = np.log(ohlcv["close"].to_numpy())
    np.testing.assert_allclose(targets["ret_fwd_5"].iloc[:-5], log_close[5:] - log_close[:-5])
    assert targets["ret_fwd_5"].iloc[-5:].isna().all()
    assert targets["up_fwd_1"].iloc[:-1].isin([0.0, 1.0]).all()
    # Targets look forward, and the audit says so.
    failures = [c for c in check_causal(lambda f: make_targets(f, (1,)), ohlcv) if not c.passed]
    assert {c.subject for c in failures} >= {"ret_fwd_1"}


def test_rsi_wilder_warmup_matches_textbook_recursion():
    ohlcv = random_ohlcv(60, seed=4)
    rsi = np.asarray(INDICATORS["rsi_14"].fn(Bars(ohlcv)))
    change = np.diff(ohlcv["close"].to_numpy())
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    avg_g, avg_l = gains[:14].mean(), losses[:14].mean()
    expected = [avg_g / (avg_g + avg_l)]
    for g, lo in zip(gains[14:], losses[14:], strict=True):
        avg_g = (avg_g * 13 + g) / 14
        avg_l = (avg_l * 13 + lo) / 14
        expected.append(avg_g / (avg_g + avg_l))
    assert np.isnan(rsi[:14]).all()
    np.testing.assert_allclose(rsi[14:] + 0.5, expected, rtol=1e-10)


def test_bollinger_pctb_is_unclipped():
    ohlcv = random_ohlcv(200, seed=1)
    ohlcv.iloc[150:, :4] *= 1.5  # a jump far outside the bands
    ohlcv.iloc[150, 0] = ohlcv.iloc[149, 3]
    ohlcv.iloc[150, 2] = min(ohlcv.iloc[150, 0], ohlcv.iloc[150, 3])
    pctb = build_features(ohlcv, ["bb_pctb_20"])["bb_pctb_20"]
    assert pctb.iloc[150] > 1.0


# --- planted leaks: the audit must catch each one ---------------------------------------------
def centred_moving_average(ohlcv: pd.DataFrame) -> pd.Series:
    return ohlcv["close"].rolling(11, center=True).mean().rename("centred_sma")


def whole_series_zscore(ohlcv: pd.DataFrame) -> pd.Series:
    c = ohlcv["close"]
    return ((c - c.mean()) / c.std()).rename("global_z")


def convolve_same(ohlcv: pd.DataFrame) -> pd.Series:
    values = np.convolve(ohlcv["close"].to_numpy(), np.ones(10) / 10, mode="same")
    return pd.Series(values, index=ohlcv.index, name="convolve_same")


def forward_filled_future(ohlcv: pd.DataFrame) -> pd.Series:
    return ohlcv["close"].shift(-1).rename("next_close")


@pytest.mark.parametrize("leaky", [centred_moving_average, whole_series_zscore, convolve_same,
                                   forward_filled_future])
def test_audit_catches_planted_leak(leaky):
    checks = check_causal(leaky, random_ohlcv(300, seed=2), n_cuts=10, min_cut=20)
    failed = [c for c in checks if not c.passed]
    assert failed, f"{leaky.__name__} was not caught"
    assert all(c.subject == leaky(random_ohlcv(30)).name for c in failed)
    assert "changes when later bars are" in failed[0].detail


def test_audit_passes_every_registered_indicator():
    checks = check_causal(build_features, random_ohlcv(500, seed=5, flat_every=11), n_cuts=15)
    assert checks and all(c.passed for c in checks), [c for c in checks if not c.passed][:3]
    assert {c.subject for c in checks} == set(INDICATORS)
