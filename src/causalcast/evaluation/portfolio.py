"""Trade a model's pooled test forecasts: one backtest per symbol, one equal-weight portfolio.

Each symbol is traded on its own test bars with `backtest.backtest`: the position decided at
the close of test bar t (from the forecast made with bars <= t) is filled at the next bar -
its open when the OHLCV bars are given (``fill="next_open"``), else its close from the
prediction file (``fill="next_close"``) - and pays ``cost_bps + slippage_bps`` on turnover.
Bars outside the test ranges carry no position. The portfolio holds the symbols in equal
weight, rebalanced daily: its return on a date is the mean of the symbols' strategy returns on
that date, so its Sharpe ratio is that of a tradable book, not an average of Sharpe ratios.
Buy-and-hold on the same bars, with the same fills and costs, is the benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causalcast.evaluation.backtest import backtest, performance_stats, sign_positions


@dataclass
class PortfolioResult:
    stats: dict                      # PerformanceStats of the equal-weight portfolio
    per_symbol: dict[str, dict]      # symbol -> PerformanceStats dict
    dates: list[str]
    equity: list[float]
    fill: str

    def to_dict(self, include_series: bool = True) -> dict:
        out = {"stats": self.stats, "per_symbol": self.per_symbol, "fill": self.fill}
        if include_series:
            out["dates"], out["equity"] = self.dates, self.equity
        return out


def _symbol_series(rows: pd.DataFrame, positions: np.ndarray,
                   frame: pd.DataFrame | None, cost_bps: float, slippage_bps: float
                   ) -> tuple[pd.DataFrame, dict]:
    """Per-bar returns, turnover and exposure of one symbol over its test window."""
    dates = pd.DatetimeIndex(rows["date"])
    if frame is not None:
        window = frame.loc[(frame.index >= dates.min()) & (frame.index <= dates.max())]
        target = pd.Series(0.0, index=window.index)
        target.loc[dates] = positions
        res = backtest(target.to_numpy(), window["close"].to_numpy(dtype=float),
                       window["open"].to_numpy(dtype=float), fill="next_open",
                       cost_bps=cost_bps, slippage_bps=slippage_bps, benchmark=False)
        index = window.index
    else:
        res = backtest(positions, rows["close"].to_numpy(dtype=float), fill="next_close",
                       cost_bps=cost_bps, slippage_bps=slippage_bps, benchmark=False)
        index = dates
    series = pd.DataFrame({"r": res.returns, "turnover": res.turnover,
                           "held": np.abs(res.position) > 0}, index=index)
    return series, res.stats.to_dict()


def trade_forecasts(test_rows: pd.DataFrame, forecast_col: str,
                    frames: Mapping[str, pd.DataFrame] | None = None, *,
                    cost_bps: float = 5.0, slippage_bps: float = 0.0,
                    long_only: bool = False, buy_and_hold: bool = False,
                    periods_per_year: float = 252.0) -> PortfolioResult:
    """Sign-of-forecast positions (+1 / -1, 0 for a forecast of exactly zero; long-only
    optional) per symbol, or all-in long with ``buy_and_hold=True``, pooled equal-weight."""
    per_symbol, series = {}, []
    use_frames = frames is not None and all(s in frames for s in test_rows["symbol"].unique())
    for symbol, rows in test_rows.sort_values("date").groupby("symbol", sort=True):
        if len(rows) < 2:
            continue
        if buy_and_hold:
            w = np.ones(len(rows))
        else:
            w = sign_positions(rows[forecast_col].to_numpy(dtype=float), long_only=long_only)
        s, stats = _symbol_series(rows, w, frames[symbol] if use_frames else None,
                                  cost_bps, slippage_bps)
        per_symbol[str(symbol)] = stats
        series.append(s.assign(symbol=symbol))
    if not series:
        raise ValueError("backtest: no symbol has two or more test bars")
    panel = pd.concat(series)
    by_date = panel.groupby(level=0)
    r = by_date["r"].mean().sort_index()
    turnover = by_date["turnover"].mean().reindex(r.index)
    held = by_date["held"].any().reindex(r.index)
    stats = performance_stats(r.to_numpy()[1:], periods_per_year=periods_per_year,
                              in_market=held.to_numpy()[1:], turnover=turnover.to_numpy()[1:],
                              n_fills=int(sum(v["n_fills"] for v in per_symbol.values())))
    equity = np.cumprod(1.0 + r.to_numpy())
    return PortfolioResult(stats=stats.to_dict(), per_symbol=per_symbol,
                           dates=[d.strftime("%Y-%m-%d") for d in r.index],
                           equity=[float(x) for x in equity],
                           fill="next_open" if use_frames else "next_close")
