"""The numpy rolling helpers behind the indicators agree with pandas' rolling windows (an
independent implementation; a two-pass std per window for the spread), keep NaN windows NaN,
and give exactly 0 spread on flat data."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from causalcast.features.indicators import (
    ema,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_std,
    rolling_sum,
)


@st.composite
def series(draw):
    n = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    lead = draw(st.integers(0, min(n, 5)))          # leading NaN, like a first difference
    x[:lead] = np.nan
    flat_from = draw(st.integers(0, n))              # a flat stretch, like a halted symbol
    start = max(flat_from, lead)
    if start < n:
        x[start:start + 30] = x[start]
    return x, draw(st.integers(1, 70))


@settings(max_examples=80, deadline=None)
@given(data=series())
def test_rolling_helpers_match_pandas(data):
    x, w = data
    s = pd.Series(x)
    np.testing.assert_allclose(rolling_sum(x, w), s.rolling(w).sum(), rtol=1e-9)
    np.testing.assert_allclose(rolling_mean(x, w), s.rolling(w).mean(), rtol=1e-12)
    # pandas' online variance leaves ~1e-7 on flat windows; a two-pass std per window is the
    # accurate reference
    exact = np.full(len(x), np.nan)
    if w <= len(x):
        exact[w - 1:] = sliding_window_view(x, w).std(axis=1)
    np.testing.assert_allclose(rolling_std(x, w), exact, rtol=1e-7, atol=1e-9)
    finite = np.where(np.isnan(x), 1.0, x)           # extremes are only taken of highs/lows
    np.testing.assert_array_equal(rolling_max(finite, w), pd.Series(finite).rolling(w).max())
    np.testing.assert_array_equal(rolling_min(finite, w), pd.Series(finite).rolling(w).min())


@settings(max_examples=40, deadline=None)
@given(data=series(), span=st.integers(1, 40))
def test_ema_matches_pandas_ewm(data, span):
    x, _ = data
    expected = pd.Series(x).ewm(span=span, adjust=False, min_periods=span).mean()
    np.testing.assert_allclose(ema(x, span), expected, rtol=1e-12)


def test_flat_window_has_exactly_zero_spread():
    x = np.r_[np.linspace(90.0, 110.0, 50), np.full(40, 101.37)]
    sd = rolling_std(x, 20)
    assert (sd[69:] == 0.0).all() and (sd[19:69] > 0).all()
