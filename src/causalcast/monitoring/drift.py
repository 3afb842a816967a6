"""Drift detectors: inputs against the training range, calibration, and live loss against the
naive forecast. Pure functions of arrays (no model, no I/O) so they can be tested on simulated
score streams; thresholds are module constants, documented in docs/monitoring.md.

* **Input drift** (`feature_drift`): the population stability index of each feature's live
  values against its reference (training-range) values, in ten reference-quantile bins.
  PSI < 0.1: stable; 0.1-0.25: `watch`; > 0.25: drifted (`watch` too: inputs moving is a
  reason to look, not proof the forecasts are worse).
* **Calibration drift** (`coverage_drift`): the share of the last `COVERAGE_WINDOW` outcomes
  inside the 80 % and 95 % central intervals, with an exact two-sided binomial test against
  the nominal level; p < 0.001 is `watch`, p < 1e-6 with at least 50 outcomes is `degraded`
  (strict because the test is repeated on every poll).
* **Loss against naive** (`loss_cusum`): a one-sided CUSUM on the per-forecast difference of
  squared errors, model minus naive (naive forecasts a zero log return), standardised by its
  running standard deviation and clipped at ±3: it accumulates evidence that the model is
  now *worse than naive*. S > CUSUM_H is `degraded`, S > CUSUM_H / 2 is `watch`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from causalcast.evaluation import central_interval, wilson_interval

PSI_WATCH = 0.10
PSI_DRIFT = 0.25
PSI_BINS = 10
MIN_LIVE_INPUTS = 20          # live feature rows before input drift is judged
COVERAGE_WATCH_P = 0.001
COVERAGE_DEGRADED_P = 1e-6    # strict: the check is repeated on every poll
COVERAGE_WINDOW = 250         # the most recent outcomes whose coverage is tested
MIN_COVERAGE_N = 50           # outcomes before calibration can degrade a version
CUSUM_K = 0.05                # allowance, in standard deviations of the loss difference
CUSUM_H = 25.0                # decision threshold
CUSUM_WARMUP = 50             # outcomes before the CUSUM starts (its scale estimate settles)
CUSUM_CLIP = 3.0


def psi(reference: np.ndarray, live: np.ndarray, bins: int = PSI_BINS,
        eps: float = 1e-4) -> float:
    """Population stability index of ``live`` against ``reference``: sum over reference-
    quantile bins of (q - p) ln(q / p); 0 when the shares match."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(live, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if len(ref) < bins or len(cur) == 0:
        raise ValueError(f"psi: need >= {bins} reference and >= 1 live values, got "
                         f"{len(ref)} and {len(cur)}")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    p = np.maximum(p / p.sum(), eps)
    q = np.maximum(q / q.sum(), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def feature_drift(reference: np.ndarray, live: np.ndarray, names: list[str]
                  ) -> dict[str, dict[str, float]]:
    """PSI and the two-sample KS p-value of each feature column (rows are bars)."""
    out = {}
    for j, name in enumerate(names):
        ks = stats.ks_2samp(reference[:, j], live[:, j])
        out[name] = {"psi": psi(reference[:, j], live[:, j]), "ks_p": float(ks.pvalue)}
    return out


@dataclass(frozen=True)
class CoverageCheck:
    level: float
    covered: int
    n: int
    share: float
    ci_low: float
    ci_high: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def coverage_drift(y: np.ndarray, mean: np.ndarray, scale: np.ndarray, df: float | None,
                   levels: tuple[float, ...] = (0.8, 0.95)) -> list[CoverageCheck]:
    """Realised coverage of each central interval over the last `COVERAGE_WINDOW` outcomes,
    tested against its nominal level."""
    y, mean, scale = (np.asarray(a, dtype=float)[-COVERAGE_WINDOW:] for a in (y, mean, scale))
    out = []
    for level in levels:
        lo, hi = central_interval(mean, scale, level, df)
        inside = int(np.count_nonzero((y >= lo) & (y <= hi)))
        n = len(y)
        low, high = wilson_interval(inside, n)
        p = float(stats.binomtest(inside, n, level).pvalue)
        out.append(CoverageCheck(level, inside, n, inside / n, low, high, p))
    return out


@dataclass(frozen=True)
class CusumResult:
    statistic: float          # the CUSUM now
    peak: float               # its highest value so far
    alarm_at: int | None      # index of the first outcome at which it crossed CUSUM_H
    n: int
    mean_difference: float    # mean (model - naive) squared error; > 0: worse than naive

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loss_cusum(y: np.ndarray, forecast: np.ndarray, *, k: float = CUSUM_K,
               h: float = CUSUM_H, warmup: int = CUSUM_WARMUP) -> CusumResult:
    """One-sided CUSUM of d_t = (y - f)^2 - y^2 (model minus naive squared error), in time
    order. Each d_t is standardised by the standard deviation of d_1..d_{t-1} (no look-ahead)
    and clipped at ±CUSUM_CLIP; S_t = max(0, S_{t-1} + z_t - k). Mean zero is the boundary
    "as good as naive": a model worse than naive drifts S upward."""
    y = np.asarray(y, dtype=float)
    f = np.asarray(forecast, dtype=float)
    d = (y - f) ** 2 - y**2
    n = len(d)
    # sd of d[:t] for every t, from running sums (no look-ahead, O(n))
    count = np.arange(1, n + 1, dtype=float)
    mean = np.cumsum(d) / count
    var = np.maximum(np.cumsum(d * d) / count - mean**2, 0.0)
    s, peak, alarm = 0.0, 0.0, None
    for t in range(max(warmup, 1), n):
        sd = float(np.sqrt(var[t - 1]))
        if sd <= 0:
            continue
        z = float(np.clip(d[t] / sd, -CUSUM_CLIP, CUSUM_CLIP))
        s = max(0.0, s + z - k)
        peak = max(peak, s)
        if alarm is None and s > h:
            alarm = t
    return CusumResult(s, peak, alarm, len(d), float(d.mean()) if len(d) else 0.0)


STATUSES = ("ok", "watch", "degraded")


def judge(*, inputs: dict[str, dict[str, float]] | None, coverage: list[CoverageCheck],
          cusum: CusumResult | None, below: dict[str, Any] | None) -> tuple[str, list[str]]:
    """The status and its reasons from the detectors' results (missing ones are skipped)."""
    watch: list[str] = []
    degraded: list[str] = []
    for name, r in (inputs or {}).items():
        if r["psi"] > PSI_DRIFT:
            watch.append(f"input {name} drifted (PSI {r['psi']:.2f} > {PSI_DRIFT})")
        elif r["psi"] > PSI_WATCH:
            watch.append(f"input {name} shifting (PSI {r['psi']:.2f} > {PSI_WATCH})")
    for c in coverage:
        what = (f"{int(c.level * 100)}% interval covers {c.share:.0%} of {c.n} outcomes "
                f"(p={c.p_value:.2g})")
        if c.p_value < COVERAGE_DEGRADED_P and c.n >= MIN_COVERAGE_N:
            degraded.append(what)
        elif c.p_value < COVERAGE_WATCH_P:
            watch.append(what)
    if cusum is not None:
        if cusum.alarm_at is not None:
            degraded.append(f"live loss worse than naive (CUSUM crossed {CUSUM_H:g} at "
                            f"outcome {cusum.alarm_at + 1} of {cusum.n})")
        elif cusum.statistic > CUSUM_H / 2:
            watch.append(f"live loss drifting toward naive (CUSUM {cusum.statistic:.1f})")
    if below is not None and below["significantly_below"]:
        watch.append(f"live accuracy {below['live_accuracy']:.3f} significantly below "
                     f"walk-forward {below['walk_forward_accuracy']:.3f} "
                     f"(p={below['p_value']:.2g}, n={below['n']})")
    if degraded:
        return "degraded", degraded + watch
    return ("watch", watch) if watch else ("ok", [])
