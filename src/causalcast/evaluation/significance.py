"""Is it skill? Tests of forecasts against baselines and against each other.

* `diebold_mariano`: equal expected loss of two forecasts (Diebold & Mariano 1995) with the
  Harvey, Leybourne & Newbold (1997) small-sample correction and Student-t(n-1) p-values.
* `pesaran_timmermann`: directional skill beyond what the up/down frequencies of forecasts
  and outcomes give by chance (Pesaran & Timmermann 1992).
* `binomial_test`: an exact test of a hit count against a fixed rate.

Long-run variance rule for h > 1. Optimal h-step forecast errors are MA(h-1), so the loss
differential has autocovariances up to lag h-1 and none beyond. The default estimator sums
exactly those with equal (rectangular, "uniform") weights - the original DM/HLN estimator and
R ``forecast::dm.test``'s default. Newey-West (Bartlett) weights with the same lag
(``kernel="bartlett"``) are always non-negative but shrink the very autocovariances that are
there: simulating an MA(h-1) differential under the null (4000 series, benchmarks/
eval_dm_size.py), the 5 % test with HLN rejected 8.6-12.9 % of series with Bartlett weights
and 4.2-6.3 % with the rectangular kernel for h = 2..10 and n = 100..1000 (except 9.5 % at
n = 100, h = 10); tests/evaluation/test_eval_significance.py keeps a version of that check. If the
rectangular estimate is not positive, the Bartlett estimate is used instead and the result
says so (`fallback`).

All tests accept 1-D inputs (one series) or 2-D inputs (columns = independent series, tested
column by column in one vectorised pass); fields are floats for 1-D and arrays for 2-D.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Literal

import numpy as np
from scipy import stats

from causalcast.evaluation._validate import (
    EvaluationInputError,
    as_float_array,
    check_alpha,
    check_horizon,
    same_length,
)

Kernel = Literal["uniform", "bartlett"]
Alternative = Literal["two-sided", "greater", "less"]


def _out(x: np.ndarray, squeeze: bool):
    """Scalar (Python type) for 1-D input, array for 2-D input."""
    if not squeeze:
        return x
    v = x.reshape(-1)[0]
    return bool(v) if x.dtype == bool else float(v)


def _jsonable(obj) -> dict:
    out = {}
    for k, v in asdict(obj).items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, float) and not math.isfinite(v):
            v = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        out[k] = v
    return out


# --------------------------------------------------------------------------- Diebold-Mariano


@dataclass(frozen=True)
class DMResult:
    """Diebold-Mariano test of H0: E[loss_a - loss_b] = 0.

    A negative statistic means model a had the lower mean loss. `p_value` is two-sided;
    `p_a_better` is the one-sided p-value for H1: a has lower expected loss (use it to test a
    model against the naive baseline passed as b); `p_b_better` the reverse.
    """

    statistic: float | np.ndarray
    p_value: float | np.ndarray
    p_a_better: float | np.ndarray
    p_b_better: float | np.ndarray
    mean_diff: float | np.ndarray     # mean of loss_a - loss_b
    n: int
    h: int
    lag: int
    kernel: str
    fallback: bool | np.ndarray       # True where the Bartlett estimate replaced a
    hln: bool                         # non-positive rectangular one
    distribution: str

    def to_dict(self) -> dict:
        return _jsonable(self)


def long_run_variance(d: np.ndarray, lag: int, kernel: Kernel = "uniform") -> np.ndarray:
    """Kernel estimate of the long-run variance of each column of `d` (autocovariances with
    divisor n, as in DM 1995 and R's ``acf``): ``g0 + 2 sum_{j<=lag} w_j g_j`` with
    ``w_j = 1`` (uniform) or ``1 - j/(lag+1)`` (Bartlett / Newey-West)."""
    if kernel not in ("uniform", "bartlett"):
        raise EvaluationInputError(f"kernel: must be 'uniform' or 'bartlett', got {kernel!r}")
    d2 = d.reshape(d.shape[0], -1)
    n = d2.shape[0]
    dc = d2 - d2.mean(axis=0)
    lrv = np.einsum("ij,ij->j", dc, dc) / n
    for j in range(1, lag + 1):
        w = 1.0 if kernel == "uniform" else 1.0 - j / (lag + 1)
        lrv = lrv + 2.0 * w * np.einsum("ij,ij->j", dc[j:], dc[:-j]) / n
    return lrv


def diebold_mariano(loss_a, loss_b, h: int = 1, *, kernel: Kernel = "uniform",
                    lag: int | None = None, hln: bool = True) -> DMResult:
    """Diebold-Mariano test on per-observation losses of two forecasts of the same targets
    (squared errors, absolute errors, CRPS, NLL, ...).

    `h` is the forecast horizon: the long-run variance uses autocovariances up to
    ``lag = h - 1`` (override with `lag`). With ``hln=True`` the statistic is multiplied by
    ``sqrt((n + 1 - 2h + h(h-1)/n) / n)`` and referred to Student-t(n-1) (Harvey, Leybourne
    & Newbold 1997); for h = 1 this is exactly the one-sample t-test of the differential.
    A differential that is identically zero gives statistic 0 and p-value 1; a constant
    non-zero one an infinite statistic and p-value 0.
    """
    h = check_horizon(h)
    a = as_float_array("loss_a", loss_a, ndim=(1, 2), min_length=2)
    b = as_float_array("loss_b", loss_b, ndim=(1, 2), min_length=2)
    n = same_length(loss_a=a, loss_b=b)
    if a.shape != b.shape:
        raise EvaluationInputError(f"loss_a/loss_b: shapes differ, {a.shape} vs {b.shape}")
    lag = h - 1 if lag is None else lag
    if isinstance(lag, bool) or not isinstance(lag, int | np.integer) or lag < 0 or lag >= n:
        raise EvaluationInputError(f"lag: must be an integer in [0, n-1] = [0, {n - 1}], "
                                   f"got {lag!r}")
    hln_sq = (n + 1 - 2 * h + h * (h - 1) / n) / n
    if hln and hln_sq <= 0:
        raise EvaluationInputError(f"h: the HLN correction needs n > 2h - 1; got n={n}, h={h}")
    squeeze = a.ndim == 1
    d = (a - b).reshape(n, -1)
    mean = d.mean(axis=0)
    lrv = long_run_variance(d, int(lag), kernel)
    fallback = np.zeros_like(lrv, dtype=bool)
    if kernel == "uniform" and lag > 0:
        fallback = lrv <= 0
        if fallback.any():
            lrv = np.where(fallback, long_run_variance(d, int(lag), "bartlett"), lrv)
    # A variance at rounding level of the differential's own size counts as zero (constant d).
    var_mean = np.where(lrv > 1e-24 * np.mean(d * d, axis=0), lrv, 0.0) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(var_mean > 0, mean / np.sqrt(var_mean),
                        np.where(mean == 0, 0.0, np.sign(mean) * np.inf))
    if hln:
        stat = stat * math.sqrt(hln_sq)
        dist, name = stats.t(n - 1), f"t({n - 1})"
    else:
        dist, name = stats.norm(), "normal"
    return DMResult(
        statistic=_out(stat, squeeze), p_value=_out(2 * dist.sf(np.abs(stat)), squeeze),
        p_a_better=_out(dist.cdf(stat), squeeze), p_b_better=_out(dist.sf(stat), squeeze),
        mean_diff=_out(mean, squeeze), n=n, h=h, lag=int(lag), kernel=kernel,
        fallback=_out(fallback, squeeze), hln=hln, distribution=name)


def pairwise_diebold_mariano(losses: Mapping[str, np.ndarray], h: int = 1,
                             **kwargs) -> dict[tuple[str, str], DMResult]:
    """DM test for every pair of models, in the mapping's order: key (a, b) tests a against b.
    Put the naive baseline first or last as you like; the result for (model, "naive") is the
    test against the baseline. p-values are per pair, not adjusted for multiplicity."""
    if len(losses) < 2:
        raise EvaluationInputError(f"losses: need at least two models, got {list(losses)}")
    return {(a, b): diebold_mariano(losses[a], losses[b], h, **kwargs)
            for a, b in combinations(losses, 2)}


# --------------------------------------------------------------------------- Pesaran-Timmermann


@dataclass(frozen=True)
class PTResult:
    """Pesaran-Timmermann test of H0: predicted and realised directions are independent.

    `p_value` is one-sided (H1: the forecast gets the direction right more often than
    independence allows), the test's usual form; `p_two_sided` is also given.
    `expected_hit_rate` is what independent forecasts with the same up-rates would score.
    A constant forecast (or outcome) has nothing the test can see: statistic NaN, p-value 1.
    """

    statistic: float | np.ndarray
    p_value: float | np.ndarray
    p_two_sided: float | np.ndarray
    hit_rate: float | np.ndarray
    expected_hit_rate: float | np.ndarray
    realised_up_rate: float | np.ndarray
    predicted_up_rate: float | np.ndarray
    n: int              # observations used (after keeping every h-th one)
    h: int

    def to_dict(self) -> dict:
        return _jsonable(self)


def pesaran_timmermann(realised, predicted, *, h: int = 1) -> PTResult:
    """PT (1992) directional-accuracy test. Directions are signs (up = strictly positive), so
    pass returns and return forecasts (or ``p_up - 0.5``).

    ``S = (P - P*) / sqrt(V(P) - V(P*))`` with P the hit rate, ``P* = py px + (1-py)(1-px)``
    and the variances of PT's eq. (6)-(8); S is asymptotically N(0, 1) for serially
    independent observations. Overlapping h-step outcomes are serially dependent and would
    inflate S, so for h > 1 only every h-th observation is used (non-overlapping).
    """
    h = check_horizon(h)
    y = as_float_array("realised", realised, ndim=(1, 2), min_length=2)
    x = as_float_array("predicted", predicted, ndim=(1, 2), min_length=2)
    same_length(realised=y, predicted=x)
    if y.shape != x.shape:
        raise EvaluationInputError(f"realised/predicted: shapes differ, {y.shape} vs {x.shape}")
    squeeze = y.ndim == 1
    yu = (y[::h] > 0).reshape(-1, 1 if squeeze else y.shape[1])
    xu = (x[::h] > 0).reshape(yu.shape)
    n = yu.shape[0]
    if n < 2:
        raise EvaluationInputError(f"h: keeping every {h}-th observation leaves {n} (< 2)")
    py, px = yu.mean(axis=0), xu.mean(axis=0)
    hit = (yu == xu).mean(axis=0)
    p_star = py * px + (1 - py) * (1 - px)
    # V(P) - V(P*) of PT's eq. (6)-(8) simplifies exactly to 4 px(1-px) py(1-py) (n-1)/n^2;
    # this form avoids the cancellation of the difference for extreme up-rates.
    den = 4 * px * (1 - px) * py * (1 - py) * (n - 1) / n**2
    ok = (px > 0) & (px < 1) & (py > 0) & (py < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(ok, (hit - p_star) / np.sqrt(np.where(ok, den, 1.0)), np.nan)
    p_one = np.where(ok, stats.norm.sf(stat), 1.0)
    p_two = np.where(ok, 2 * stats.norm.sf(np.abs(stat)), 1.0)
    return PTResult(statistic=_out(stat, squeeze), p_value=_out(p_one, squeeze),
                    p_two_sided=_out(p_two, squeeze), hit_rate=_out(hit, squeeze),
                    expected_hit_rate=_out(p_star, squeeze), realised_up_rate=_out(py, squeeze),
                    predicted_up_rate=_out(px, squeeze), n=n, h=h)


# --------------------------------------------------------------------------- binomial


@dataclass(frozen=True)
class BinomialResult:
    successes: int
    n: int
    p0: float
    proportion: float
    p_value: float
    alternative: str
    ci_low: float       # Wilson interval of the proportion
    ci_high: float

    def to_dict(self) -> dict:
        return _jsonable(self)


def binomial_test(successes: int, n: int, p0: float = 0.5, *,
                  alternative: Alternative = "greater", alpha: float = 0.05) -> BinomialResult:
    """Exact binomial test of a hit count against rate `p0` (scipy ``binomtest``).

    Testing directional accuracy against 0.5 ignores the up/down frequencies: a forecaster
    that says "up" 70 % of the time on a market that rises 55 % of the time scores 0.52 in
    expectation with no skill, and this test would eventually call that significant. Use
    `pesaran_timmermann` for skill; use this for a fixed, externally given rate."""
    from causalcast.evaluation.metrics import wilson_interval

    alpha = check_alpha(alpha)
    if isinstance(n, bool) or int(n) != n or n < 1 or int(successes) != successes or \
            not 0 <= successes <= n:
        raise EvaluationInputError(f"successes/n: need integers 0 <= successes <= n, n >= 1; "
                                   f"got {successes}/{n}")
    if not 0.0 < float(p0) < 1.0:
        raise EvaluationInputError(f"p0: must be in (0, 1), got {p0!r}")
    if alternative not in ("two-sided", "greater", "less"):
        raise EvaluationInputError(f"alternative: must be 'two-sided', 'greater' or 'less', "
                                   f"got {alternative!r}")
    k, n = int(successes), int(n)
    res = stats.binomtest(k, n, float(p0), alternative=alternative)
    lo, hi = wilson_interval(k, n, alpha)
    return BinomialResult(successes=k, n=n, p0=float(p0), proportion=k / n,
                          p_value=float(res.pvalue), alternative=alternative, ci_low=lo,
                          ci_high=hi)


def rejection_rate(p_values, alpha: float = 0.05) -> float:
    """Share of p-values below `alpha`: the empirical size of a test under a true null (or its
    power under an alternative)."""
    alpha = check_alpha(alpha)
    p = as_float_array("p_values", p_values, ndim=(1, 2))
    return float(np.mean(p < alpha))
