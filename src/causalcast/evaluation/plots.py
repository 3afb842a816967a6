"""The report's figures, each a function from plain arrays to PNG bytes (matplotlib, Agg)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

FIGSIZE = (9.0, 3.6)
# Okabe-Ito: distinct for colour-blind readers too (the dashboard uses the same order).
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B",
           "#7F7F7F")
BENCHMARK_COLOUR = "#000000"
TRADING_DAYS = 252


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _legend_outside(ax, **kwargs) -> None:
    """Legends to the right of the axes: they never cover data."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.03, 1.0), borderaxespad=0.0,
              frameon=False, **kwargs)


def _colour(k: int, name: str) -> str:
    return BENCHMARK_COLOUR if "buy" in name else COLOURS[k % len(COLOURS)]


def drawdown(values: Sequence[float]) -> np.ndarray:
    """Fall from the running peak, as a fraction <= 0."""
    v = np.asarray(values, dtype=float)
    return v / np.maximum.accumulate(v) - 1.0


def rolling_sharpe(values: Sequence[float], window: int = 63) -> np.ndarray:
    """Annualised Sharpe ratio of the simple returns over a trailing window (NaN until full)."""
    v = np.asarray(values, dtype=float)
    out = np.full(len(v), np.nan)
    r = v[1:] / v[:-1] - 1.0
    for i in range(window, len(v)):
        w = r[i - window:i]
        sd = w.std(ddof=1)
        if sd > 0:
            out[i] = w.mean() / sd * np.sqrt(TRADING_DAYS)
    return out


def equity_curves(curves: Mapping[str, Sequence[float]], title: str,
                  dates: Mapping[str, Sequence[str]] | None = None) -> bytes:
    """Growth of 1 after costs on a log axis (equal ratios look equal), the drawdown from the
    running peak below it and the rolling 63-bar Sharpe ratio; the benchmark (buy-and-hold)
    drawn dashed in black. With `dates` (name -> ISO dates) curves are drawn on a calendar
    axis, so models whose test rows differ (an ensemble needs every member's row) line up."""
    fig, (ax, ax_dd, ax_sr) = plt.subplots(3, 1, figsize=(9.0, 6.4), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 1.4, 1.4]})
    for k, (name, values) in enumerate(curves.items()):
        style = "--" if "buy" in name else "-"
        x = (np.array(dates[name], dtype="datetime64[D]") if dates and name in dates
             else np.arange(len(values)))
        colour = _colour(k, name)
        ax.plot(x, values, style, lw=1.2, color=colour, label=name)
        ax_dd.plot(x, 100 * drawdown(values), style, lw=1.0, color=colour)
        ax_sr.plot(x, rolling_sharpe(values), style, lw=1.0, color=colour)
    ax.set_yscale("log")
    # ticks at 1-2-5 steps labelled 0.5, 1, 2 rather than 2 x 10^0
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.axhline(1.0, color="grey", lw=0.6)
    ax.set_title(title)
    ax.set_ylabel("equity (start = 1, log)")
    ax_dd.set_ylabel("drawdown %")
    ax_sr.set_ylabel("Sharpe, 63 bars")
    ax_sr.axhline(0.0, color="grey", lw=0.6)
    ax_sr.set_xlabel("test date (walk-forward folds pooled)" if dates else
                     "test bar (pooled over folds)")
    _legend_outside(ax)
    return _png(fig)


def forecast_vs_realised(realised: Sequence[float], mean: Sequence[float],
                         bands: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                         title: str) -> bytes:
    """Forecast log returns with central intervals against what happened."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    x = np.arange(len(realised))
    for (label, (lo, hi)), alpha in zip(bands.items(), (0.15, 0.3), strict=False):
        ax.fill_between(x, lo, hi, alpha=alpha, color=COLOURS[0], label=label, lw=0)
    ax.plot(x, mean, color=COLOURS[0], lw=1.0, label="forecast mean")
    ax.plot(x, realised, ".", color="black", ms=2.5, label="realised")
    ax.set_title(title)
    ax.set_xlabel("test bar")
    ax.set_ylabel("log return")
    _legend_outside(ax)
    return _png(fig)


def reliability(tables: Mapping[str, Mapping], title: str) -> bytes:
    """Mean forecast P(up) per bin against the realised up-rate (Wilson intervals)."""
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect calibration")
    for k, (name, table) in enumerate(tables.items()):
        pred = np.array(table["mean_predicted"], dtype=float)
        obs = np.array(table["observed_rate"], dtype=float)
        lo = np.array(table["ci_low"], dtype=float)
        hi = np.array(table["ci_high"], dtype=float)
        ok = np.isfinite(pred) & np.isfinite(obs)
        ax.errorbar(pred[ok], obs[ok], yerr=[obs[ok] - lo[ok], hi[ok] - obs[ok]], fmt="o-",
                    ms=3, lw=1, capsize=2, color=_colour(k, name),
                    label=f"{name} (ECE {table['ece']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("forecast P(up)")
    ax.set_ylabel("realised up-rate")
    ax.set_title(title, fontsize=10)
    _legend_outside(ax)
    return _png(fig)


def accuracy_by_horizon(rows: Mapping[str, Mapping[int, tuple[float, float, float]]],
                        baseline: Mapping[int, float], ceiling: Mapping[int, float] | None,
                        title: str) -> bytes:
    """Directional accuracy per horizon with 95% Wilson intervals, beside always-up and (for
    synthetic data) the Bayes-optimal ceiling."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    names = list(rows)
    horizons = sorted({h for r in rows.values() for h in r})
    width = 0.8 / max(len(names), 1)
    positions = np.arange(len(horizons))
    for k, name in enumerate(names):
        acc = np.array([rows[name].get(h, (np.nan,) * 3)[0] for h in horizons])
        lo = np.array([rows[name].get(h, (np.nan,) * 3)[1] for h in horizons])
        hi = np.array([rows[name].get(h, (np.nan,) * 3)[2] for h in horizons])
        ax.errorbar(positions - 0.4 + width * (k + 0.5), acc, yerr=[acc - lo, hi - acc],
                    fmt="o", capsize=3, color=_colour(k, name), label=name)
    ax.plot(positions, [baseline.get(h, np.nan) for h in horizons], "_", color="black", ms=30,
            mew=2, label="always up")
    if ceiling:
        ax.plot(positions, [ceiling.get(h, np.nan) for h in horizons], "_", color="#7F7F7F",
                ms=30, mew=2, label="Bayes-optimal ceiling")
    ax.axhline(0.5, color="grey", lw=0.6)
    ax.set_xticks(positions, [f"h={h}" for h in horizons])
    ax.set_ylabel("directional accuracy")
    ax.set_title(title)
    _legend_outside(ax)
    return _png(fig)
