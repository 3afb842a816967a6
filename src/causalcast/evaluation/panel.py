"""Significance tests for a panel: many symbols forecast on shared dates.

Pooling every (symbol, date) row into one long series and running the textbook tests treats
each row as independent. Symbols of one market are not: on a day the market falls most of
them fall, and a model's forecasts for them move together as well. With eight symbols whose
returns share 30 % of their variance, that is enough to push the 5 % Pesaran-Timmermann test
to roughly twice its size on a random walk. Both tests here therefore aggregate across
symbols per date first and then treat the *dates* as the time series, with the long-run
(HAC) variance of `significance.long_run_variance` over ``h - 1`` lags for overlapping h-bar
targets. With one symbol they reduce to the ordinary tests.

* `panel_diebold_mariano`: the DM/HLN test (`significance.diebold_mariano`) of the per-date
  mean losses of two forecasts.
* `panel_direction_test`: the Pesaran-Timmermann null (forecast and realised directions are
  independent) tested through its covariance form, ``hit - P* = 2 cov(x, y)`` for the up
  indicators x and y; the per-date sums of ``(x - x̄)(y - ȳ)`` are the series, so the
  cross-sectional dependence and the overlap of h-bar targets are both in the variance.
  For one symbol and h = 1 it is asymptotically the PT statistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from causalcast.evaluation._validate import EvaluationInputError, check_horizon
from causalcast.evaluation.significance import DMResult, diebold_mariano, long_run_variance


def _per_date(dates, values: dict[str, np.ndarray], how: str) -> pd.DataFrame:
    frame = pd.DataFrame({"date": pd.to_datetime(np.asarray(dates)), **values})
    grouped = frame.groupby("date", sort=True)
    return grouped.mean() if how == "mean" else grouped.sum()


def panel_diebold_mariano(dates, loss_a, loss_b, h: int = 1, **kwargs) -> DMResult:
    """DM (HLN) test of two forecasts' per-observation losses on a panel: losses are averaged
    over the symbols of each date, and the test runs on the date series. `n` in the result is
    the number of dates."""
    h = check_horizon(h)
    a = np.asarray(loss_a, dtype=float)
    b = np.asarray(loss_b, dtype=float)
    if not (len(a) == len(b) == len(np.asarray(dates))):
        raise EvaluationInputError(f"dates/loss_a/loss_b: length mismatch, {len(dates)}, "
                                   f"{len(a)}, {len(b)}")
    daily = _per_date(dates, {"a": a, "b": b}, "mean")
    return diebold_mariano(daily["a"].to_numpy(), daily["b"].to_numpy(), h, **kwargs)


@dataclass(frozen=True)
class PanelDirectionResult:
    """Date-clustered test of H0: predicted and realised directions are independent.

    `p_value` is one-sided (H1: the forecast's direction agrees with the outcome more often
    than independence allows). A constant forecast or outcome gives statistic NaN and
    p-value 1, as in `pesaran_timmermann`."""

    statistic: float
    p_value: float
    p_two_sided: float
    hit_rate: float
    expected_hit_rate: float       # P* of independent directions with the same up-rates
    realised_up_rate: float
    predicted_up_rate: float
    n: int                         # observations (symbol, date)
    n_dates: int
    h: int
    lag: int

    def to_dict(self) -> dict:
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            out[k] = v
        return out


def panel_direction_test(dates, realised, predicted, h: int = 1) -> PanelDirectionResult:
    """Pesaran-Timmermann-type directional test, clustered by date (see module doc). Up means
    strictly positive for both `realised` returns and `predicted` values."""
    h = check_horizon(h)
    y = np.asarray(realised, dtype=float) > 0
    x = np.asarray(predicted, dtype=float) > 0
    n = len(y)
    if not (n == len(x) == len(np.asarray(dates))):
        raise EvaluationInputError(f"dates/realised/predicted: length mismatch, "
                                   f"{len(dates)}, {len(y)}, {len(x)}")
    if n < 2:
        raise EvaluationInputError(f"realised: needs at least 2 observations, got {n}")
    py, px = float(y.mean()), float(x.mean())
    hit = float((x == y).mean())
    p_star = py * px + (1 - py) * (1 - px)
    z = _per_date(dates, {"z": (x - px) * (y - py)}, "sum")["z"].to_numpy()
    t = len(z)
    lag = min(h - 1, max(t - 1, 0))
    stat = math.nan
    if 0 < px < 1 and 0 < py < 1 and t >= 2:
        lrv = float(long_run_variance(z, lag, "uniform")[0])
        if lrv <= 0 and lag > 0:
            lrv = float(long_run_variance(z, lag, "bartlett")[0])
        if lrv > 0:
            stat = float(z.sum() / math.sqrt(t * lrv))
    if math.isnan(stat):
        p_one = p_two = 1.0
    else:
        p_one, p_two = float(stats.norm.sf(stat)), float(2 * stats.norm.sf(abs(stat)))
    return PanelDirectionResult(statistic=stat, p_value=p_one, p_two_sided=p_two, hit_rate=hit,
                                expected_hit_rate=p_star, realised_up_rate=py,
                                predicted_up_rate=px, n=n, n_dates=t, h=h, lag=lag)
