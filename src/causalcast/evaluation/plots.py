"""The report's figures, each a function from plain arrays to PNG bytes (matplotlib, Agg)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

FIGSIZE = (9.0, 4.2)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def equity_curves(curves: Mapping[str, Sequence[float]], title: str) -> bytes:
    """Growth of 1 after costs; the benchmark (buy-and-hold) drawn dashed."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for name, values in curves.items():
        style = "--" if "buy" in name else "-"
        ax.plot(np.arange(len(values)), values, style, lw=1.2, label=name)
    ax.axhline(1.0, color="grey", lw=0.6)
    ax.set_title(title)
    ax.set_xlabel("test bar (pooled over folds)")
    ax.set_ylabel("equity (start = 1)")
    ax.legend(fontsize=8, ncol=3)
    return _png(fig)


def forecast_vs_realised(realised: Sequence[float], mean: Sequence[float],
                         bands: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                         title: str) -> bytes:
    """Forecast log returns with central intervals against what happened."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    x = np.arange(len(realised))
    for (label, (lo, hi)), alpha in zip(bands.items(), (0.15, 0.3), strict=False):
        ax.fill_between(x, lo, hi, alpha=alpha, color="tab:blue", label=label, lw=0)
    ax.plot(x, mean, color="tab:blue", lw=1.0, label="forecast mean")
    ax.plot(x, realised, ".", color="black", ms=2.5, label="realised")
    ax.set_title(title)
    ax.set_xlabel("test bar")
    ax.set_ylabel("log return")
    ax.legend(fontsize=8, ncol=4)
    return _png(fig)


def reliability(tables: Mapping[str, Mapping], title: str) -> bytes:
    """Mean forecast P(up) per bin against the realised up-rate (Wilson intervals)."""
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect calibration")
    for name, table in tables.items():
        pred = np.array(table["mean_predicted"], dtype=float)
        obs = np.array(table["observed_rate"], dtype=float)
        lo = np.array(table["ci_low"], dtype=float)
        hi = np.array(table["ci_high"], dtype=float)
        ok = np.isfinite(pred) & np.isfinite(obs)
        ax.errorbar(pred[ok], obs[ok], yerr=[obs[ok] - lo[ok], hi[ok] - obs[ok]], fmt="o-",
                    ms=3, lw=1, capsize=2, label=f"{name} (ECE {table['ece']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("forecast P(up)")
    ax.set_ylabel("realised up-rate")
    ax.set_title(title)
    ax.legend(fontsize=7)
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
                    fmt="o", capsize=3, label=name)
    ax.plot(positions, [baseline.get(h, np.nan) for h in horizons], "k_", ms=30, mew=2,
            label="always up")
    if ceiling:
        ax.plot(positions, [ceiling.get(h, np.nan) for h in horizons], "r_", ms=30, mew=2,
                label="Bayes-optimal ceiling")
    ax.axhline(0.5, color="grey", lw=0.6)
    ax.set_xticks(positions, [f"h={h}" for h in horizons])
    ax.set_ylabel("directional accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=3)
    return _png(fig)
