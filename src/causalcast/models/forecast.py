"""Forecast results: per horizon, the mean log return, the scale, P(up) and intervals.

`ForecastBatch` holds arrays for a whole batch (what serving computes in one forward pass);
`Forecast` is one symbol's view of it with plain floats, ready for JSON. All numbers are in
raw units (log returns over h bars): the standardisation used in training is already undone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special, stats

DEFAULT_LEVELS: tuple[float, ...] = (0.8, 0.95)


@lru_cache(maxsize=64)
def _quantile(likelihood: str, df: float, p: float) -> float:
    """Standard quantile, cached: serving asks for the same few levels on every request."""
    return float(stats.norm.ppf(p) if likelihood == "gaussian" else stats.t.ppf(p, df))


def _cdf(likelihood: str, df: float, z: np.ndarray) -> np.ndarray:
    """Standard CDF through scipy's ufuncs (no frozen-distribution overhead per call)."""
    return special.ndtr(z) if likelihood == "gaussian" else special.stdtr(df, z)


@dataclass(frozen=True)
class Forecast:
    """One symbol's forecast for every horizon (floats, not arrays)."""

    symbol: str
    as_of: str | None                   # timestamp of the last bar used, ISO format
    model: str
    horizons: tuple[int, ...]
    mean: tuple[float, ...]             # forecast log return per horizon (the t location)
    scale: tuple[float, ...]            # t (or Gaussian) scale per horizon
    prob_up: tuple[float, ...]          # P(log return > 0)
    intervals: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)

    def horizon(self, h: int) -> dict[str, Any]:
        """Everything about one horizon: ``f.horizon(5)["prob_up"]``."""
        if h not in self.horizons:
            raise KeyError(f"horizon: {h} not forecast; available {list(self.horizons)}")
        i = self.horizons.index(h)
        return {"h": h, "mean": self.mean[i], "scale": self.scale[i],
                "prob_up": self.prob_up[i],
                "intervals": {lvl: list(iv[i]) for lvl, iv in self.intervals.items()}}

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "as_of": self.as_of, "model": self.model,
                "horizons": [self.horizon(h) for h in self.horizons]}


@dataclass
class ForecastBatch:
    """Arrays (B, H) for a batch of windows."""

    horizons: tuple[int, ...]
    mean: np.ndarray
    scale: np.ndarray
    prob_up: np.ndarray
    lower: dict[float, np.ndarray]
    upper: dict[float, np.ndarray]

    @classmethod
    def from_params(cls, loc: np.ndarray, scale: np.ndarray, horizons: tuple[int, ...],
                    likelihood: str, df: float,
                    levels: tuple[float, ...] = DEFAULT_LEVELS) -> ForecastBatch:
        """Raw-unit location and scale -> P(up) and central intervals."""
        loc = np.asarray(loc, dtype=np.float64)
        scale = np.asarray(scale, dtype=np.float64)
        prob_up = _cdf(likelihood, df, loc / scale)   # P(loc + scale*T > 0), T symmetric
        lower, upper = {}, {}
        for level in levels:
            if not 0 < level < 1:
                raise ValueError(f"levels: each must be in (0, 1), got {level}")
            q = _quantile(likelihood, float(df), 0.5 + level / 2)
            lower[level], upper[level] = loc - q * scale, loc + q * scale
        return cls(tuple(horizons), loc, scale, prob_up, lower, upper)

    def __len__(self) -> int:
        return len(self.mean)

    def row(self, i: int, symbol: str, model: str, as_of: str | None = None) -> Forecast:
        ivs = {f"{round(level * 100):d}": tuple(
            (float(self.lower[level][i, j]), float(self.upper[level][i, j]))
            for j in range(len(self.horizons))) for level in self.lower}
        return Forecast(symbol=symbol, as_of=as_of, model=model, horizons=self.horizons,
                        mean=tuple(map(float, self.mean[i])),
                        scale=tuple(map(float, self.scale[i])),
                        prob_up=tuple(map(float, self.prob_up[i])), intervals=ivs)


def price_median_and_mean(last_close: float, loc: np.ndarray, scale: np.ndarray,
                          likelihood: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The price implied by a log-return forecast: (median_price, mean_price).

    The log return is symmetric about ``loc``, so the price's median is close·e^loc for either
    likelihood. Its mean is E[close·e^R]: close·e^(loc + scale²/2) when R is Gaussian; when R
    is Student-t (any finite degrees of freedom) E[e^R] is infinite — the tails are too heavy
    for an exponential — so there is no mean and None is returned instead of a number that
    would only reflect where the tails were cut. The HTTP service uses these same names."""
    loc = np.asarray(loc, dtype=np.float64)
    median = last_close * np.exp(loc)
    if likelihood != "gaussian":
        return median, None
    return median, last_close * np.exp(loc + 0.5 * np.asarray(scale, dtype=np.float64) ** 2)
