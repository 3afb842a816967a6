"""Point, directional and probabilistic forecast metrics, each with its uncertainty.

Conventions (the same as `causalcast.features.targets`): a forecast is a log return from the
as-of close over h bars; "up" means strictly positive, so a zero return counts as down. All
functions are vectorised over observations, validate their inputs (`EvaluationInputError`
names the argument at fault) and return plain floats or frozen dataclasses with `to_dict()`
so the report and the registry can store them as JSON.

Why accuracy never travels alone: when 54 % of bars go up, "always up" scores 0.54 with no
skill. `directional_accuracy` therefore always reports the realised up-rate (the accuracy of
the drift baseline) beside the model's, each with a Wilson interval; whether the difference
is skill is judged by `significance.pesaran_timmermann`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import special, stats
from statsmodels.stats.proportion import proportion_confint

from causalcast.evaluation._validate import (
    EvaluationInputError,
    as_float_array,
    check_alpha,
    check_binary,
    check_positive,
    check_probability,
    same_length,
)

DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)


def _dict(obj) -> dict:
    """asdict with numpy arrays turned into lists (JSON-ready)."""
    out = asdict(obj)
    for k, v in out.items():
        if isinstance(v, np.ndarray):
            out[k] = v.tolist()
    return out


# --------------------------------------------------------------------------- proportions


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion; unlike the normal approximation it stays
    inside [0, 1] and keeps its coverage near 0 and 1 and for small n."""
    alpha = check_alpha(alpha)
    if n < 1 or not 0 <= successes <= n:
        raise EvaluationInputError(f"successes/n: need 0 <= successes <= n and n >= 1, got "
                                   f"{successes}/{n}")
    low, high = proportion_confint(int(successes), int(n), alpha=alpha, method="wilson")
    return float(low), float(high)


@dataclass(frozen=True)
class DirectionalAccuracy:
    """Hit rate of predicted direction, beside the drift ("always up") baseline."""

    accuracy: float          # share of bars whose direction was predicted correctly
    hits: int
    n: int
    ci_low: float            # Wilson interval of `accuracy`
    ci_high: float
    up_rate: float           # share of realised ups = accuracy of "always up"
    up_rate_ci_low: float
    up_rate_ci_high: float
    predicted_up_rate: float  # share of forecasts that said up
    majority_rate: float     # max(up_rate, 1 - up_rate): best constant guess, in hindsight
    edge_vs_always_up: float  # accuracy - up_rate
    alpha: float

    def to_dict(self) -> dict:
        return _dict(self)


def directional_accuracy(realised: Sequence[float] | np.ndarray,
                         predicted: Sequence[float] | np.ndarray, *,
                         alpha: float = 0.05) -> DirectionalAccuracy:
    """Directional accuracy of `predicted` (whose sign is the predicted direction: a return
    forecast, or ``p_up - 0.5``) against `realised` returns, with Wilson intervals, reported
    beside the up-rate of the realised returns (what "always up" would have scored)."""
    alpha = check_alpha(alpha)
    y = as_float_array("realised", realised)
    f = as_float_array("predicted", predicted)
    n = same_length(realised=y, predicted=f)
    y_up, f_up = y > 0, f > 0
    hits = int(np.count_nonzero(y_up == f_up))
    ups = int(np.count_nonzero(y_up))
    lo, hi = wilson_interval(hits, n, alpha)
    ulo, uhi = wilson_interval(ups, n, alpha)
    up_rate = ups / n
    return DirectionalAccuracy(
        accuracy=hits / n, hits=hits, n=n, ci_low=lo, ci_high=hi, up_rate=up_rate,
        up_rate_ci_low=ulo, up_rate_ci_high=uhi, predicted_up_rate=float(f_up.mean()),
        majority_rate=max(up_rate, 1.0 - up_rate), edge_vs_always_up=hits / n - up_rate,
        alpha=alpha)


# --------------------------------------------------------------------------- price errors


@dataclass(frozen=True)
class PriceErrors:
    """Errors of the price implied by a log-return forecast, in price units (MAE, RMSE) and
    in percent of the realised price (MAPE)."""

    mae: float
    rmse: float
    mape_pct: float
    n: int

    def to_dict(self) -> dict:
        return _dict(self)


def forecast_price(as_of_close: Sequence[float] | np.ndarray,
                   log_return: Sequence[float] | np.ndarray) -> np.ndarray:
    """Price implied by a log-return forecast from the as-of close: ``close * exp(r)``."""
    close = check_positive("as_of_close", as_float_array("as_of_close", as_of_close))
    r = as_float_array("log_return", log_return)
    same_length(as_of_close=close, log_return=r)
    return close * np.exp(r)


def price_errors(as_of_close: Sequence[float] | np.ndarray,
                 forecast_log_return: Sequence[float] | np.ndarray,
                 realised_log_return: Sequence[float] | np.ndarray) -> PriceErrors:
    """MAE, RMSE and MAPE of forecast prices. Both prices are rebuilt from the same as-of
    close, so the errors are comparable across models and with the naive (zero-return)
    forecast, whose price forecast is the as-of close itself."""
    close = check_positive("as_of_close", as_float_array("as_of_close", as_of_close))
    rf = as_float_array("forecast_log_return", forecast_log_return)
    ry = as_float_array("realised_log_return", realised_log_return)
    n = same_length(as_of_close=close, forecast_log_return=rf, realised_log_return=ry)
    p_hat, p = close * np.exp(rf), close * np.exp(ry)
    err = p_hat - p
    return PriceErrors(mae=float(np.mean(np.abs(err))), rmse=float(np.sqrt(np.mean(err**2))),
                       mape_pct=float(100.0 * np.mean(np.abs(err) / p)), n=n)


# --------------------------------------------------------------------------- probabilistic


def _dist_inputs(y, mean, scale, df=None):
    y = as_float_array("y", y)
    mu = as_float_array("mean", mean)
    s = check_positive("scale", as_float_array("scale", scale))
    same_length(y=y, mean=mu, scale=s)
    if df is not None and (not math.isfinite(float(df)) or float(df) <= 0):
        raise EvaluationInputError(f"df: must be finite and > 0, got {df!r}")
    return y, mu, s


def gaussian_nll(y, mean, scale) -> np.ndarray:
    """Per-observation negative log-likelihood of y under N(mean, scale^2)."""
    y, mu, s = _dist_inputs(y, mean, scale)
    z = (y - mu) / s
    return 0.5 * z**2 + np.log(s) + 0.5 * math.log(2 * math.pi)


def gaussian_crps(y, mean, scale) -> np.ndarray:
    """Per-observation CRPS of N(mean, scale^2) at y, closed form (Gneiting & Raftery 2007):
    ``scale * (z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi))``. In the units of y; lower is
    better; it rewards both calibration and sharpness and, unlike the NLL, stays finite for
    a wrong point mass."""
    y, mu, s = _dist_inputs(y, mean, scale)
    z = (y - mu) / s
    return s * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi))


def student_t_nll(y, mean, scale, df: float) -> np.ndarray:
    """Per-observation negative log-likelihood under a location-scale Student-t."""
    y, mu, s = _dist_inputs(y, mean, scale, df)
    return -stats.t.logpdf(y, float(df), loc=mu, scale=s)


def student_t_crps(y, mean, scale, df: float) -> np.ndarray:
    """Per-observation CRPS of a location-scale Student-t with ``df > 1`` (closed form of
    Jordan, Krüger & Lerch 2019, scoringRules):
    ``s [z(2F(z)-1) + 2f(z)(df+z^2)/(df-1) - 2 sqrt(df) B(1/2, df-1/2) / ((df-1) B(1/2, df/2)^2)]``.
    The CRPS needs a finite mean, hence df > 1."""
    y, mu, s = _dist_inputs(y, mean, scale, df)
    nu = float(df)
    if nu <= 1:
        raise EvaluationInputError(f"df: the Student-t CRPS needs df > 1, got {df!r}")
    z = (y - mu) / s
    const = (2 * math.sqrt(nu) * math.exp(special.betaln(0.5, nu - 0.5)
                                          - 2 * special.betaln(0.5, nu / 2)) / (nu - 1))
    return s * (z * (2 * stats.t.cdf(z, nu) - 1)
                + 2 * stats.t.pdf(z, nu) * (nu + z**2) / (nu - 1) - const)


def central_interval(mean, scale, level: float, df: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Central `level` interval of N(mean, scale^2) (or Student-t with `df`)."""
    if not 0.0 < float(level) < 1.0:
        raise EvaluationInputError(f"level: must be in (0, 1), got {level!r}")
    mu = as_float_array("mean", mean)
    s = check_positive("scale", as_float_array("scale", scale))
    same_length(mean=mu, scale=s)
    q = 0.5 + level / 2
    k = stats.norm.ppf(q) if df is None else stats.t.ppf(q, float(df))
    return mu - k * s, mu + k * s


def interval_coverage(y, lower, upper) -> float:
    """Share of y inside the closed intervals [lower, upper]."""
    y = as_float_array("y", y)
    lo = as_float_array("lower", lower)
    hi = as_float_array("upper", upper)
    same_length(y=y, lower=lo, upper=hi)
    if (lo > hi).any():
        raise EvaluationInputError(
            f"lower/upper: lower > upper at position {int(np.argmax(lo > hi))}")
    return float(np.mean((y >= lo) & (y <= hi)))


@dataclass(frozen=True)
class Coverage:
    """Observed coverage of a nominal central interval, with its Wilson interval: a
    calibrated model's nominal level lies inside [ci_low, ci_high] most of the time."""

    nominal: float
    observed: float
    ci_low: float
    ci_high: float
    n: int

    def to_dict(self) -> dict:
        return _dict(self)


def coverage_table(y, mean, scale, levels: Sequence[float] = DEFAULT_LEVELS, *,
                   df: float | None = None, alpha: float = 0.05) -> list[Coverage]:
    """Observed coverage of the central intervals of N(mean, scale^2) (or Student-t) at each
    nominal level."""
    y = as_float_array("y", y)
    out = []
    for level in levels:
        lo, hi = central_interval(mean, scale, level, df)
        same_length(y=y, mean=lo)
        inside = int(np.count_nonzero((y >= lo) & (y <= hi)))
        clo, chi = wilson_interval(inside, len(y), alpha)
        out.append(Coverage(nominal=float(level), observed=inside / len(y), ci_low=clo,
                            ci_high=chi, n=len(y)))
    return out


def prob_up(mean, scale, df: float | None = None) -> np.ndarray:
    """P(return > 0) under N(mean, scale^2) (or Student-t): the P(up) a distributional
    forecast implies, so Brier and calibration apply to every probabilistic model."""
    mu = as_float_array("mean", mean)
    s = check_positive("scale", as_float_array("scale", scale))
    same_length(mean=mu, scale=s)
    z = mu / s
    return stats.norm.cdf(z) if df is None else stats.t.cdf(z, float(df))


# --------------------------------------------------------------------------- P(up) quality


def _prob_inputs(p_up, outcome):
    p = check_probability("p_up", as_float_array("p_up", p_up))
    o = check_binary("outcome", as_float_array("outcome", outcome))
    same_length(p_up=p, outcome=o)
    return p, o


def brier_score(p_up, outcome) -> float:
    """Mean squared error of P(up) against the 0/1 outcome (0 is perfect; a constant 0.5
    scores 0.25)."""
    p, o = _prob_inputs(p_up, outcome)
    return float(np.mean((p - o) ** 2))


def binary_log_loss(p_up, outcome, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the 0/1 outcome under P(up) (clipped to [eps, 1-eps]
    so that one overconfident miss is very costly but finite)."""
    p, o = _prob_inputs(p_up, outcome)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(o * np.log(p) + (1 - o) * np.log1p(-p)))


@dataclass(frozen=True)
class Reliability:
    """Reliability-diagram data for P(up): per bin, how often "up" happened against how
    likely the model said it was.

    `brier_reliability - brier_resolution + brier_uncertainty` is Murphy's decomposition of
    the Brier score on binned forecasts; it equals the Brier score exactly only when the
    forecasts are constant within each bin (the residual is the within-bin variance term).
    """

    edges: np.ndarray          # n_bins + 1 bin edges
    counts: np.ndarray         # forecasts per bin
    mean_predicted: np.ndarray  # mean P(up) per bin (NaN where empty)
    observed_rate: np.ndarray  # realised up-rate per bin (NaN where empty)
    ci_low: np.ndarray         # Wilson interval of observed_rate (NaN where empty)
    ci_high: np.ndarray
    ece: float                 # expected calibration error: sum_b n_b/N |obs_b - pred_b|
    mce: float                 # maximum calibration error over non-empty bins
    brier: float
    brier_reliability: float
    brier_resolution: float
    brier_uncertainty: float
    strategy: str

    def to_dict(self) -> dict:
        out = _dict(self)
        for k, v in out.items():  # JSON has no NaN: empty bins become null
            if isinstance(v, list):
                out[k] = [None if isinstance(x, float) and math.isnan(x) else x for x in v]
        return out


def _bin_edges(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if not isinstance(n_bins, int) or n_bins < 1:
        raise EvaluationInputError(f"n_bins: must be an integer >= 1, got {n_bins!r}")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)))
        edges[0], edges[-1] = 0.0, 1.0
        return np.unique(edges) if len(edges) > 1 else np.array([0.0, 1.0])
    raise EvaluationInputError(f"strategy: must be 'uniform' or 'quantile', got {strategy!r}")


def reliability_table(p_up, outcome, n_bins: int = 10, *,
                      strategy: Literal["uniform", "quantile"] = "uniform",
                      alpha: float = 0.05) -> Reliability:
    """Bin P(up) (equal-width bins, or equal-count with ``strategy="quantile"``) and compare
    each bin's mean forecast with its realised up-rate (Wilson interval per bin)."""
    alpha = check_alpha(alpha)
    p, o = _prob_inputs(p_up, outcome)
    edges = _bin_edges(p, n_bins, strategy)
    k = len(edges) - 1
    idx = np.searchsorted(edges[1:-1], p, side="right")
    counts = np.bincount(idx, minlength=k)
    sum_p = np.bincount(idx, weights=p, minlength=k)
    sum_o = np.bincount(idx, weights=o, minlength=k)
    nonempty = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(nonempty, sum_p / counts, np.nan)
        obs = np.where(nonempty, sum_o / counts, np.nan)
    lo = np.full(k, np.nan)
    hi = np.full(k, np.nan)
    if nonempty.any():
        lo_ne, hi_ne = proportion_confint(sum_o[nonempty].round().astype(int),
                                          counts[nonempty], alpha=alpha, method="wilson")
        lo[nonempty], hi[nonempty] = lo_ne, hi_ne
    w = counts[nonempty] / len(p)
    gap = np.abs(obs[nonempty] - mean_p[nonempty])
    base = float(o.mean())
    return Reliability(
        edges=edges, counts=counts, mean_predicted=mean_p, observed_rate=obs, ci_low=lo,
        ci_high=hi, ece=float(np.sum(w * gap)), mce=float(gap.max()),
        brier=float(np.mean((p - o) ** 2)),
        brier_reliability=float(np.sum(w * (mean_p[nonempty] - obs[nonempty]) ** 2)),
        brier_resolution=float(np.sum(w * (obs[nonempty] - base) ** 2)),
        brier_uncertainty=base * (1 - base), strategy=strategy)


def expected_calibration_error(p_up, outcome, n_bins: int = 10, *,
                               strategy: Literal["uniform", "quantile"] = "uniform") -> float:
    """ECE: the count-weighted mean gap between forecast and realised up-rate over bins."""
    return reliability_table(p_up, outcome, n_bins, strategy=strategy).ece


# --------------------------------------------------------------------------- summary


def forecast_metrics(as_of_close, realised_log_return, forecast_log_return, *,
                     scale=None, df: float | None = None, p_up=None,
                     levels: Sequence[float] = DEFAULT_LEVELS, n_bins: int = 10,
                     alpha: float = 0.05) -> dict:
    """Every metric of this module for one model, horizon and evaluation range, as a JSON-
    ready dict: direction (with the "always up" baseline), price errors, and where a
    distribution is given (`scale`, optionally Student-t `df`) its NLL, CRPS and interval
    coverage. Brier score and reliability use `p_up` if given, else the P(up) implied by the
    distribution; they are omitted for a point forecast without `p_up`."""
    y = as_float_array("realised_log_return", realised_log_return)
    mu = as_float_array("forecast_log_return", forecast_log_return)
    same_length(realised_log_return=y, forecast_log_return=mu)
    out: dict = {
        "n": len(y),
        "direction": directional_accuracy(y, mu, alpha=alpha).to_dict(),
        "price": price_errors(as_of_close, mu, y).to_dict(),
    }
    if scale is not None:
        s = as_float_array("scale", scale)
        if df is None:
            out["nll"] = float(gaussian_nll(y, mu, s).mean())
            out["crps"] = float(gaussian_crps(y, mu, s).mean())
        else:
            out["nll"] = float(student_t_nll(y, mu, s, df).mean())
            out["crps"] = float(student_t_crps(y, mu, s, df).mean())
        out["distribution"] = "normal" if df is None else f"student_t(df={float(df):g})"
        out["coverage"] = [c.to_dict() for c in coverage_table(y, mu, s, levels, df=df,
                                                                alpha=alpha)]
        if p_up is None:
            p_up = prob_up(mu, s, df)
    if p_up is not None:
        outcome = (y > 0).astype(float)
        out["brier"] = brier_score(p_up, outcome)
        out["log_loss"] = binary_log_loss(p_up, outcome)
        out["reliability"] = reliability_table(p_up, outcome, n_bins, alpha=alpha).to_dict()
    return out
