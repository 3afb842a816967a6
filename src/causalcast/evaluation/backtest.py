"""Forecasts -> positions -> equity after costs, executed at the next bar, never the same one.

Timing. ``positions[t]`` is the target position decided at the close of bar t (a forecast
made with bars <= t). It is filled at the *next* bar: at its open (``fill="next_open"``, the
default, needs open prices) or at its close (``fill="next_close"``, for close-only data). So
the decision at t never earns bar t's return; with next_open it earns from the open of t+1,
with next_close from the close of t+1. Nothing is filled at bar 0, and the decision at the
last bar is never filled.

Positions are fractions of equity: +1 all-in long, -1 all-in short, 0.5 half long; any
finite value is allowed (>1 is leverage). Sizing helpers turn forecasts into positions.

Accounting. After a fill the position's value is exactly ``target * equity`` (equity after
the trade's costs). Between fills the units are held (``rebalance="on_change"``, the default:
a trade happens only when the target changes, as a trader would do), so the weight drifts with
the price; ``rebalance="every_bar"`` trades back to the target at every fill instead. Costs
are charged on turnover: ``(cost_bps + slippage_bps) / 1e4`` times the traded notional at the
fill price, where traded notional = |value after - value before|. A flip from +1 to -1 thus
pays on twice the equity.

Why equity is a product: with these rules the equity change across a fill and across each
holding stretch is a factor that depends only on the prices, the target before and after,
and the cost rate, so the whole curve is one cumulative product (vectorised; no loop over
bars). If equity reaches zero (e.g. a short through a price doubling), it stays at zero.

This matches backtesting.py (kernc) on the same signals for all-in long/short/flat signals
to 1e-9, with its ``commission`` set to our ``(cost_bps + slippage_bps) / 1e4`` and its
``spread`` at 0 (its spread is paid once per round trip at entry, so it is not a cost on
turnover); see tests/evaluation/test_eval_backtest.py and docs/evaluation.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from causalcast.evaluation._validate import (
    EvaluationInputError,
    as_float_array,
    check_finite_scalar,
    check_positive,
    check_probability,
    same_length,
)

Fill = Literal["next_open", "next_close"]
Rebalance = Literal["on_change", "every_bar"]


# --------------------------------------------------------------------------- sizing rules


def _long_only(w: np.ndarray, long_only: bool) -> np.ndarray:
    return np.maximum(w, 0.0) if long_only else w


def _cap(cap: float) -> float:
    return check_finite_scalar("cap", cap, low=1e-12)


def sign_positions(forecast, *, long_only: bool = False, threshold: float = 0.0) -> np.ndarray:
    """+1 where the forecast is above `threshold`, -1 below ``-threshold`` (0 if
    `long_only`), 0 in between: the all-in directional rule."""
    f = as_float_array("forecast", forecast)
    thr = check_finite_scalar("threshold", threshold, low=0.0)
    w = np.where(f > thr, 1.0, np.where(f < -thr, -1.0, 0.0))
    return _long_only(w, long_only)


def probability_positions(p_up, *, scale: float = 1.0, cap: float = 1.0,
                          long_only: bool = False) -> np.ndarray:
    """``clip(scale * (2 p_up - 1), -cap, cap)``: flat at P(up) = 0.5, all-in only when the
    model is sure; conviction, not just direction, sets the size."""
    p = check_probability("p_up", as_float_array("p_up", p_up))
    k = check_finite_scalar("scale", scale, low=0.0)
    c = _cap(cap)
    return _long_only(np.clip(k * (2 * p - 1), -c, c), long_only)


def zscore_positions(mean, scale, *, k: float = 1.0, cap: float = 1.0,
                     long_only: bool = False) -> np.ndarray:
    """``clip(k * mean / scale, -cap, cap)`` for a distributional forecast: size grows with
    the forecast's signal-to-noise ratio and is capped."""
    mu = as_float_array("mean", mean)
    s = check_positive("scale", as_float_array("scale", scale))
    same_length(mean=mu, scale=s)
    kk = check_finite_scalar("k", k, low=0.0)
    c = _cap(cap)
    return _long_only(np.clip(kk * mu / s, -c, c), long_only)


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class PerformanceStats:
    """Performance of a per-bar simple-return series (risk-free rate 0).

    Sharpe and Sortino are annualised with sqrt(periods_per_year); Sortino's downside
    deviation is sqrt(mean(min(r, 0)^2)) over all bars. max_drawdown is <= 0 (-0.25 = a 25 %
    fall from a peak). hit_rate and profit_factor are per bar over the bars in the market.
    """

    total_return: float
    annualised_return: float
    annualised_volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float
    hit_rate: float
    profit_factor: float
    turnover: float          # annualised: traded notional / equity per year
    exposure: float          # share of bars with a position held
    n_fills: int
    n_bars: int
    periods_per_year: float

    def to_dict(self) -> dict:
        out = {}
        for k, v in asdict(self).items():
            if isinstance(v, float) and not math.isfinite(v):
                v = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
            out[k] = v
        return out


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return math.nan if num == 0 else math.copysign(math.inf, num)


def performance_stats(returns, *, periods_per_year: float = 252.0, in_market=None,
                      turnover=None, n_fills: int = 0) -> PerformanceStats:
    """Statistics of per-bar simple returns (one per bar *after* the start; equity is
    ``cumprod(1 + returns)``). `in_market` (bools) restricts hit rate and profit factor to
    bars with a position; `turnover` (per bar) gives the annualised turnover."""
    r = as_float_array("returns", returns)
    ppy = check_finite_scalar("periods_per_year", periods_per_year, low=1e-9)
    n = len(r)
    if (r < -1).any():
        raise EvaluationInputError("returns: a simple return below -1 (-100 %) is impossible")
    mask = np.ones(n, bool) if in_market is None else np.asarray(in_market, bool)
    turn = np.zeros(n) if turnover is None else as_float_array("turnover", turnover)
    same_length(returns=r, in_market=mask, turnover=turn)
    equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    growth = equity[-1]
    peak = np.maximum.accumulate(equity)
    max_dd = float(np.min(equity / peak - 1.0))
    ann = growth ** (ppy / n) - 1.0 if growth > 0 else -1.0
    sd = float(np.std(r, ddof=1)) if n > 1 else math.nan
    mean = float(np.mean(r))
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    rm = r[mask]
    gains, losses = float(rm[rm > 0].sum()), float(-rm[rm < 0].sum())
    return PerformanceStats(
        total_return=float(growth - 1.0), annualised_return=float(ann),
        annualised_volatility=sd * math.sqrt(ppy),
        sharpe=_ratio(mean, sd) * math.sqrt(ppy) if sd == sd else math.nan,
        sortino=_ratio(mean, downside) * math.sqrt(ppy),
        max_drawdown=max_dd, calmar=_ratio(float(ann), -max_dd),
        hit_rate=float(np.mean(rm > 0)) if rm.size else math.nan,
        profit_factor=_ratio(gains, losses),
        turnover=float(turn.sum() * ppy / n), exposure=float(mask.mean()),
        n_fills=int(n_fills), n_bars=n, periods_per_year=ppy)


# --------------------------------------------------------------------------- engine


@dataclass
class BacktestResult:
    """Per-bar series (length n, aligned with the input bars) and their statistics.

    equity[t]: equity at the close of bar t (equity[0] = initial equity); returns[t]: simple
    return of bar t (returns[0] = 0); position[t]: position held at the close of bar t as a
    fraction of equity (drifted since its fill); turnover[t]: notional traded in bar t over
    the equity just before the trade; costs[t]: costs of bar t over that same equity;
    traded[t]: whether a fill happened in bar t.
    """

    equity: np.ndarray
    returns: np.ndarray
    position: np.ndarray
    turnover: np.ndarray
    costs: np.ndarray
    traded: np.ndarray
    stats: PerformanceStats
    benchmark: PerformanceStats | None
    config: dict[str, Any]
    index: pd.Index | None = field(default=None, repr=False)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"equity": self.equity, "returns": self.returns,
                             "position": self.position, "turnover": self.turnover,
                             "costs": self.costs, "traded": self.traded},
                            index=self.index)

    def to_dict(self, include_series: bool = False) -> dict:
        out = {"config": dict(self.config), "stats": self.stats.to_dict(),
               "benchmark": None if self.benchmark is None else self.benchmark.to_dict()}
        if include_series:
            out["equity"] = self.equity.tolist()
            if self.index is not None:
                out["index"] = [str(i) for i in self.index]
        return out


def _cost_factor(w_drift: np.ndarray, w_new: np.ndarray, k: float) -> np.ndarray:
    """Equity after / before a trade from drifted weight `w_drift` to post-trade weight
    `w_new` paying `k` per unit of traded notional: the root x of
    ``x = 1 - k |w_new x - w_drift|`` (unique while k |w_new| < 1)."""
    if k == 0.0:
        return np.ones_like(w_new)
    with np.errstate(divide="ignore", invalid="ignore"):
        buy = (1 + k * w_drift) / (1 + k * w_new)
        sell = (1 - k * w_drift) / (1 - k * w_new)
    return np.where(w_new * buy >= w_drift, buy, sell)


def _marks(close: np.ndarray, open_: np.ndarray | None, fill: Fill):
    """Price marks in time order, where each bar's fill happens, and where each bar's close
    is reported."""
    n = len(close)
    bars = np.arange(n)
    if fill == "next_open":
        marks = np.empty(2 * n)
        marks[0::2], marks[1::2] = open_, close
        return marks, 2 * bars, 2 * bars + 1
    return close, bars, bars


def _simulate(w: np.ndarray, marks: np.ndarray, fill_mark: np.ndarray,
              report_mark: np.ndarray, k: float, rebalance: Rebalance, e0: float):
    n = len(w)
    target = np.concatenate([[0.0], w[:-1]])          # target filled at bar t: w[t-1]
    prev = np.concatenate([[0.0], target[:-1]])
    trade_bar = np.flatnonzero(target != prev) if rebalance == "on_change" else np.arange(1, n)
    trade_bar = trade_bar[trade_bar >= 1]
    # trade list with a virtual flat start at mark 0
    t_mark = np.concatenate([[0], fill_mark[trade_bar]])
    t_w = np.concatenate([[0.0], target[trade_bar]])
    ratio = marks[t_mark[1:]] / marks[t_mark[:-1]]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        grow = 1.0 + t_w[:-1] * (ratio - 1.0)
        w_drift = t_w[:-1] * ratio / grow
        x = _cost_factor(w_drift, t_w[1:], k)
        turnover = np.abs(t_w[1:] * x - w_drift)
        e_post = e0 * np.concatenate([[1.0], np.cumprod(grow * x)])
        seg = np.searchsorted(t_mark, report_mark, side="right") - 1
        rel = marks[report_mark] / marks[t_mark[seg]]
        equity = e_post[seg] * (1.0 + t_w[seg] * (rel - 1.0))
        position = t_w[seg] * rel / (1.0 + t_w[seg] * (rel - 1.0))
    ruined = ~(equity > 0)
    if ruined.any():                                   # equity hit zero: it stays there
        first = int(np.argmax(ruined))
        equity[first:], position[first:] = 0.0, 0.0
        keep = trade_bar < first
        trade_bar, turnover = trade_bar[keep], turnover[keep]
    turn = np.zeros(n)
    turn[trade_bar] = turnover
    traded = np.zeros(n, bool)
    traded[trade_bar] = turnover > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.concatenate([[0.0], np.where(equity[:-1] > 0,
                                                  equity[1:] / equity[:-1] - 1.0, 0.0)])
    return equity, returns, position, turn, turn * k, traded


def backtest(positions, close, open_=None, *, fill: Fill = "next_open",
             cost_bps: float = 0.0, slippage_bps: float = 0.0,
             rebalance: Rebalance = "on_change", initial_equity: float = 1.0,
             periods_per_year: float = 252.0, benchmark: bool = True) -> BacktestResult:
    """Backtest target positions decided at each bar's close, filled at the next bar.

    `positions`, `close` and `open_` are aligned per bar (arrays or pandas Series with the
    same index). `benchmark=True` adds buy-and-hold (all-in long from the first fill, same
    prices and costs) as ``result.benchmark``.
    """
    if fill not in ("next_open", "next_close"):
        raise EvaluationInputError(f"fill: must be 'next_open' or 'next_close', got {fill!r}")
    if rebalance not in ("on_change", "every_bar"):
        raise EvaluationInputError(
            f"rebalance: must be 'on_change' or 'every_bar', got {rebalance!r}")
    index = next((s.index for s in (positions, close, open_) if isinstance(s, pd.Series)), None)
    for name, s in (("positions", positions), ("close", close), ("open_", open_)):
        if isinstance(s, pd.Series) and index is not None and not s.index.equals(index):
            raise EvaluationInputError(f"{name}: index differs from the other inputs' index")
    w = as_float_array("positions", positions, min_length=2)
    c = check_positive("close", as_float_array("close", close, min_length=2))
    if fill == "next_open":
        if open_ is None:
            raise EvaluationInputError("open_: fill='next_open' needs open prices "
                                       "(or use fill='next_close' for close-only data)")
        o = check_positive("open_", as_float_array("open_", open_, min_length=2))
        same_length(positions=w, close=c, open_=o)
    else:
        o = None
        same_length(positions=w, close=c)
    k = (check_finite_scalar("cost_bps", cost_bps, low=0.0)
         + check_finite_scalar("slippage_bps", slippage_bps, low=0.0)) / 1e4
    if k * float(np.max(np.abs(w))) >= 1.0:
        raise EvaluationInputError(f"cost_bps/slippage_bps: cost rate {k} times the largest "
                                   f"position must stay below 1")
    e0 = check_finite_scalar("initial_equity", initial_equity, low=1e-300)
    ppy = check_finite_scalar("periods_per_year", periods_per_year, low=1e-9)

    marks, fill_mark, report_mark = _marks(c, o, fill)
    equity, returns, position, turn, costs, traded = _simulate(
        w, marks, fill_mark, report_mark, k, rebalance, e0)
    held = np.abs(position) > 0
    in_market = (held[:-1] | held[1:])
    stats = performance_stats(returns[1:], periods_per_year=ppy, in_market=in_market,
                              turnover=turn[1:], n_fills=int(traded.sum()))
    config = {"fill": fill, "rebalance": rebalance, "cost_bps": float(cost_bps),
              "slippage_bps": float(slippage_bps), "initial_equity": e0,
              "periods_per_year": ppy}
    bench = None
    if benchmark:
        bench = backtest(np.ones_like(w), c, o, fill=fill, cost_bps=cost_bps,
                         slippage_bps=slippage_bps, initial_equity=e0,
                         periods_per_year=ppy, benchmark=False).stats
    return BacktestResult(equity=equity, returns=returns, position=position, turnover=turn,
                          costs=costs, traded=traded, stats=stats, benchmark=bench,
                          config=config, index=index)


def buy_and_hold(close, open_=None, **kwargs) -> BacktestResult:
    """All-in long from the first fill to the end, with the same timing and costs."""
    n = len(np.asarray(close))
    return backtest(np.ones(n), close, open_, benchmark=False, **kwargs)


def backtest_ohlcv(ohlcv: pd.DataFrame, positions, **kwargs) -> BacktestResult:
    """`backtest` on a canonical OHLCV frame (columns open/close, as `load_ohlcv` returns);
    `positions` may be a Series on the frame's index or an array of the same length."""
    missing = {"open", "close"} - set(ohlcv.columns)
    if missing:
        raise EvaluationInputError(f"ohlcv: missing column(s) {sorted(missing)}")
    return backtest(positions, ohlcv["close"], ohlcv["open"], **kwargs)
