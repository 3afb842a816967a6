"""Backtest: next-bar execution (properties), cost accounting (hand values), statistics
(independent computations), and agreement with backtesting.py on the same signals."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.evaluation._validate import EvaluationInputError
from causalcast.evaluation.backtest import (
    backtest,
    backtest_ohlcv,
    buy_and_hold,
    performance_stats,
    probability_positions,
    sign_positions,
    zscore_positions,
)

# --------------------------------------------------------------------------- helpers


@st.composite
def market(draw, min_bars: int = 3, max_bars: int = 30, signal: str = "any"):
    """Random open/close paths and positions; signal 'sign' gives {-1, 0, 1}."""
    n = draw(st.integers(min_bars, max_bars))
    moves = st.floats(-0.1, 0.1, allow_nan=False)
    gaps = np.array(draw(st.lists(moves, min_size=n, max_size=n)))
    days = np.array(draw(st.lists(moves, min_size=n, max_size=n)))
    log_open = np.cumsum(gaps) + np.concatenate([[0.0], np.cumsum(days)[:-1]])
    open_ = 100 * np.exp(log_open)
    close = open_ * np.exp(days)
    if signal == "sign":
        w = np.array(draw(st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=n,
                                   max_size=n)))
    else:
        w = np.array(draw(st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=n,
                                   max_size=n)))
    return open_, close, w


FILLS = st.sampled_from(["next_open", "next_close"])
REBALANCE = st.sampled_from(["on_change", "every_bar"])


# --------------------------------------------------------------------------- timing properties


@given(m=market(), fill=FILLS, rebalance=REBALANCE, data=st.data(),
       cost=st.sampled_from([0.0, 5.0, 25.0]))
@settings(max_examples=150, deadline=None)
def test_a_decision_at_bar_t_never_changes_anything_up_to_bar_t(m, fill, rebalance, data, cost):
    open_, close, w = m
    n = len(w)
    t = data.draw(st.integers(0, n - 1), label="t")
    other = w.copy()
    other[t:] = data.draw(st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=n - t,
                                   max_size=n - t), label="new decisions")
    a = backtest(w, close, open_, fill=fill, rebalance=rebalance, cost_bps=cost,
                 benchmark=False)
    b = backtest(other, close, open_, fill=fill, rebalance=rebalance, cost_bps=cost,
                 benchmark=False)
    np.testing.assert_allclose(a.equity[: t + 1], b.equity[: t + 1], rtol=1e-12)
    np.testing.assert_allclose(a.returns[: t + 1], b.returns[: t + 1], rtol=1e-12, atol=1e-15)


@given(m=market(min_bars=4), fill=FILLS, cheat=st.sampled_from(["random", "same_bar",
                                                                 "future"]))
@settings(max_examples=150, deadline=None)
def test_each_bar_earns_only_the_previous_decision(m, fill, cheat):
    """Zero costs, rebalanced every bar: bar t's return is fixed by decisions before t.
    The 'same_bar' signal knows bar t's own return when deciding at t, the 'future' one even
    bar t+1's: neither earns the bar it looked at."""
    open_, close, w = m
    r = np.concatenate([[0.0], close[1:] / close[:-1] - 1])
    if cheat == "same_bar":
        w = np.sign(r)
    elif cheat == "future":
        w = np.sign(np.concatenate([r[1:], [0.0]]))
    res = backtest(w, close, open_, fill=fill, rebalance="every_bar", benchmark=False)
    got = res.returns
    assert got[1] == pytest.approx(0.0, abs=1e-12) or fill == "next_open"
    for t in range(2, len(w)):
        if fill == "next_close":
            want = w[t - 2] * r[t]              # filled at close t-1, held over bar t
        else:
            g_prev = close[t - 1] / open_[t - 1]
            drift = w[t - 2] * g_prev / (1 + w[t - 2] * (g_prev - 1))
            want = ((1 + drift * (open_[t] / close[t - 1] - 1))
                    * (1 + w[t - 1] * (close[t] / open_[t] - 1)) - 1)
        assert got[t] == pytest.approx(want, rel=1e-9, abs=1e-12)
    lag_matters = np.abs(np.sign(r[:-2]) * r[2:] - np.abs(r[2:])) > 1e-9
    if cheat == "same_bar" and fill == "next_close" and lag_matters.any():
        assert not np.allclose(got[2:], np.abs(r[2:]))   # a same-bar fill would earn |r|


@given(m=market(signal="sign"), fill=FILLS, rebalance=REBALANCE,
       cost=st.floats(0.5, 50.0))
@settings(max_examples=100, deadline=None)
def test_costs_only_ever_reduce_equity(m, fill, rebalance, cost):
    open_, close, w = m
    free = backtest(w, close, open_, fill=fill, rebalance=rebalance, benchmark=False)
    paid = backtest(w, close, open_, fill=fill, rebalance=rebalance, cost_bps=cost,
                    benchmark=False)
    assert np.all(paid.equity <= free.equity * (1 + 1e-12))
    assert (paid.traded == free.traded).all()          # costs change sizes, not timing


def test_the_decision_is_filled_at_the_very_next_bar():
    close = np.array([100.0, 101, 103, 99, 100])
    open_ = np.array([100.0, 100.5, 102, 101, 99])
    w = np.zeros(5)
    w[2] = 1.0                       # decided at the close of bar 2
    res = backtest(w, close, open_, benchmark=False)
    assert res.traded.tolist() == [False, False, False, True, True]   # in at 3, out at 4
    assert res.returns[3] == pytest.approx(99 / 101 - 1)             # open 3 -> close 3
    assert res.returns[4] == pytest.approx(99 / 99 - 1)              # out at open 4
    assert res.returns[:3].tolist() == [0.0, 0.0, 0.0]


# --------------------------------------------------------------------------- accounting


def test_round_trip_and_flip_costs_match_hand_values():
    k = 10e-4  # 7 bps cost + 3 bps slippage
    close = np.full(5, 100.0)
    rt = backtest([1.0, 0, 0, 0, 0], close, close, cost_bps=7, slippage_bps=3,
                  benchmark=False)
    assert rt.equity[-1] == pytest.approx((1 - k) / (1 + k), rel=1e-14)
    assert rt.turnover[1] == pytest.approx(1 / (1 + k))    # bought 1/(1+k) of old equity
    flip = backtest([1.0, -1, -1, -1, -1], close, close, cost_bps=10, benchmark=False)
    # in: 1/(1+k); flip +1 -> -1 trades value + new value: x = (1-k)/(1+k)
    assert flip.equity[2] == pytest.approx((1 - k) / (1 + k) ** 2, rel=1e-14)
    assert flip.position[2] == pytest.approx(-1.0)
    assert flip.stats.n_fills == 2


def test_positions_drift_between_fills_unless_rebalanced_every_bar():
    close = np.array([100.0, 100, 110, 121, 133.1])
    short = -np.ones(5)
    held = backtest(short, close, fill="next_close", benchmark=False)
    rebal = backtest(short, close, fill="next_close", rebalance="every_bar", benchmark=False)
    # held units: equity = 2 - P/P_entry; rebalanced: product of (1 - r)
    np.testing.assert_allclose(held.equity[1:], 2 - close[1:] / 100)
    np.testing.assert_allclose(rebal.equity[1:], np.cumprod([1, 0.9, 0.9, 0.9]))
    assert held.position[2] == pytest.approx(-1.1 / 0.9)


def test_a_short_through_a_doubling_is_ruined_and_stays_at_zero():
    close = np.array([100.0, 100, 150, 210, 180, 150])
    res = backtest(-np.ones(6), close, fill="next_close", benchmark=False)
    assert res.equity[3:].tolist() == [0.0, 0.0, 0.0]
    assert res.returns[3] == -1.0 and res.returns[4:].tolist() == [0.0, 0.0]
    assert res.stats.max_drawdown == -1.0


def test_buy_and_hold_benchmark_enters_at_the_first_open():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 50)))
    open_ = close * np.exp(rng.normal(0, 0.003, 50))
    bh = buy_and_hold(close, open_)
    np.testing.assert_allclose(bh.equity[1:], close[1:] / open_[1])
    res = backtest(sign_positions(rng.normal(size=50)), close, open_)
    assert res.benchmark == bh.stats


# --------------------------------------------------------------------------- statistics


def test_performance_stats_match_independent_computations():
    r = np.array([0.01, -0.02, 0.015, 0.0, -0.005, 0.03, -0.01])
    s = performance_stats(r, periods_per_year=252)
    eq = np.concatenate([[1.0], np.cumprod(1 + r)])
    worst, peak = 0.0, eq[0]
    for v in eq:                              # drawdown by an explicit loop
        peak = max(peak, v)
        worst = min(worst, v / peak - 1)
    assert s.max_drawdown == pytest.approx(worst)
    assert s.total_return == pytest.approx(eq[-1] - 1)
    assert s.annualised_return == pytest.approx(eq[-1] ** (252 / 7) - 1)
    assert s.sharpe == pytest.approx(np.mean(r) / np.std(r, ddof=1) * math.sqrt(252))
    downside = math.sqrt(sum(min(x, 0) ** 2 for x in r) / len(r))
    assert s.sortino == pytest.approx(np.mean(r) / downside * math.sqrt(252))
    assert s.calmar == pytest.approx(s.annualised_return / abs(worst))
    assert s.hit_rate == pytest.approx(3 / 7)
    assert s.profit_factor == pytest.approx(0.055 / 0.035)
    json.dumps(s.to_dict())


def test_performance_stats_degenerate_series():
    flat = performance_stats(np.zeros(5))
    assert math.isnan(flat.sharpe) and math.isnan(flat.profit_factor)
    assert flat.max_drawdown == 0.0 and math.isnan(flat.calmar)
    up = performance_stats(np.full(5, 0.01))
    assert up.sortino == math.inf and up.profit_factor == math.inf
    assert up.to_dict()["sortino"] == "inf"


# --------------------------------------------------------------------------- sizing


def test_sizing_rules():
    f = np.array([-0.02, -0.001, 0.0, 0.001, 0.02])
    assert sign_positions(f).tolist() == [-1, -1, 0, 1, 1]
    assert sign_positions(f, threshold=0.005).tolist() == [-1, 0, 0, 0, 1]
    assert sign_positions(f, long_only=True).tolist() == [0, 0, 0, 1, 1]
    p = np.array([0.0, 0.4, 0.5, 0.6, 1.0])
    np.testing.assert_allclose(probability_positions(p), [-1, -0.2, 0, 0.2, 1])
    np.testing.assert_allclose(probability_positions(p, scale=5, cap=0.5),
                               [-0.5, -0.5, 0, 0.5, 0.5])
    np.testing.assert_allclose(probability_positions(p, long_only=True), [0, 0, 0, 0.2, 1])
    np.testing.assert_allclose(zscore_positions(f, np.full(5, 0.01), k=0.5),
                               [-1, -0.05, 0, 0.05, 1])
    np.testing.assert_allclose(zscore_positions(f, np.full(5, 0.01), cap=0.1,
                                                long_only=True), [0, 0, 0, 0.1, 0.1])


# --------------------------------------------------------------------------- frames, JSON


def test_backtest_on_the_msft_sample_keeps_the_index_and_serialises():
    from causalcast.data.sources import load_sample

    ohlcv = load_sample("msft").iloc[-300:]
    mom = np.log(ohlcv["close"]).diff(20).fillna(0.0)
    res = backtest_ohlcv(ohlcv, sign_positions(mom, long_only=True), cost_bps=5)
    frame = res.to_frame()
    assert frame.index.equals(ohlcv.index)
    assert res.benchmark is not None and res.stats.n_bars == 299
    json.dumps(res.to_dict(include_series=True))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("call", "match"), [
    (lambda: backtest([1.0, np.nan], [1.0, 2.0], [1.0, 2.0]), "positions: contains 1 NaN"),
    (lambda: backtest([1.0, 1.0, 1.0], [1.0, 2.0], [1.0, 2.0]), "length mismatch"),
    (lambda: backtest([1.0, 1.0], [1.0, 2.0]), "open_: fill='next_open' needs open"),
    (lambda: backtest([1.0, 1.0], [1.0, -2.0], fill="next_close"), "close: must be > 0"),
    (lambda: backtest([1.0, 1.0], [1.0, 2.0], fill="same_bar"), "fill"),
    (lambda: backtest([1.0, 1.0], [1.0, 2.0], fill="next_close", rebalance="daily"),
     "rebalance"),
    (lambda: backtest([200.0, 1.0], [1.0, 2.0], fill="next_close", cost_bps=50),
     "cost rate"),
    (lambda: backtest([1.0, 1.0], [1.0, 2.0], fill="next_close", cost_bps=-1), "cost_bps"),
    (lambda: backtest(pd.Series([1.0, 1.0], index=[0, 1]),
                      pd.Series([1.0, 2.0], index=[1, 2]), fill="next_close"), "index"),
    (lambda: probability_positions([1.2]), "p_up"),
    (lambda: zscore_positions([0.1], [0.0]), "scale: must be > 0"),
    (lambda: sign_positions([0.1], threshold=-1), "threshold"),
])
def test_bad_inputs_fail_with_the_argument_named(call, match):
    with pytest.raises(EvaluationInputError, match=match):
        call()


# --------------------------------------------------------------------------- backtesting.py


def _run_backtesting_py(signal: np.ndarray, commission: float, trade_on_close: bool = False):
    """backtesting.py on its GOOG sample with an all-in long/short/flat strategy that follows
    `signal`. Its first `next()` call is at bar 1; with trade_on_close it fills at the bar's
    own close, so the signal is lagged one bar to fill at the next bar's close like ours."""
    bt = pytest.importorskip("backtesting")
    from backtesting.test import GOOG

    class FollowSignal(bt.Strategy):
        def init(self):
            pass

        def next(self):
            i = len(self.data) - 1
            target = signal[i - 1] if trade_on_close else signal[i]
            if target == np.sign(self.position.size):
                return
            if target == 0:
                self.position.close()
            elif target > 0:
                self.buy()       # all-in; exclusive_orders closes a short first
            else:
                self.sell()

    # cash 1e15: whole-share rounding (<= one share per fill) becomes a ~1e-13 effect
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.Backtest(GOOG, FollowSignal, cash=1e15, commission=commission, spread=0.0,
                            exclusive_orders=True, trade_on_close=trade_on_close).run()
    return GOOG, stats


def _signal(n: int, long_only: bool) -> np.ndarray:
    rng = np.random.default_rng(42)
    s = np.sign(pd.Series(rng.standard_normal(n)).rolling(8).mean().fillna(0.0).to_numpy())
    s[:12] = 0.0      # backtesting.py never acts on bar 0; stay flat at the start
    return np.maximum(s, 0.0) if long_only else s


@pytest.mark.parametrize("long_only", [True, False], ids=["long_only", "long_short"])
@pytest.mark.parametrize(("cost_bps", "slippage_bps"), [(0.0, 0.0), (7.0, 3.0)])
def test_matches_backtesting_py_next_open(long_only, cost_bps, slippage_bps):
    from backtesting.test import GOOG

    signal = _signal(len(GOOG), long_only)
    goog, stats = _run_backtesting_py(signal, (cost_bps + slippage_bps) / 1e4)
    ours = backtest(signal, goog["Close"].to_numpy(), goog["Open"].to_numpy(),
                    cost_bps=cost_bps, slippage_bps=slippage_bps)
    theirs = stats["_equity_curve"]["Equity"].to_numpy() / 1e15
    np.testing.assert_allclose(ours.equity, theirs, rtol=1e-9)
    their_returns = np.concatenate([[0.0], theirs[1:] / theirs[:-1] - 1])
    np.testing.assert_allclose(ours.returns, their_returns, atol=1e-9)
    assert ours.stats.total_return * 100 == pytest.approx(stats["Return [%]"], rel=1e-9)
    assert ours.stats.max_drawdown * 100 == pytest.approx(stats["Max. Drawdown [%]"],
                                                          rel=1e-9)
    # their "# Trades" counts closed round trips; ours counts fills (a flip is one fill)
    assert ours.stats.n_fills >= stats["# Trades"]


def test_matches_backtesting_py_next_close_up_to_when_costs_are_booked():
    """Documented difference: backtesting.py records a bar's equity before processing the
    order it fills at that bar's close, and books the costs in the next bar; we record it
    after. So the curves agree at every bar without a fill, and at a fill bar theirs is our
    pre-trade equity, ours / (1 - costs). Without costs they agree everywhere."""
    from backtesting.test import GOOG

    signal = _signal(len(GOOG), long_only=False)
    for k in (0.0, 10e-4):
        goog, stats = _run_backtesting_py(signal, k, trade_on_close=True)
        ours = backtest(signal, goog["Close"].to_numpy(), fill="next_close", cost_bps=k * 1e4)
        theirs = stats["_equity_curve"]["Equity"].to_numpy() / 1e15
        fills = ours.traded
        assert fills.sum() > 50
        np.testing.assert_allclose(ours.equity[~fills], theirs[~fills], rtol=1e-9)
        np.testing.assert_allclose(ours.equity[fills] / (1 - ours.costs[fills]),
                                   theirs[fills], rtol=1e-9)
        if k == 0:
            np.testing.assert_allclose(ours.equity, theirs, rtol=1e-9)
