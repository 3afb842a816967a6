"""The leakage audit: proves on the data at hand that nothing looks ahead.

Four checks on the data pipeline, each naming what failed:

(a) prefix invariance: computing on bars[:t+1] gives the same value at t as computing on the
    full series, for every registered indicator and for the whole scaled pipeline;
(b) perturbation: changing bars after t leaves every value at or before t unchanged;
(c) purge: no training (or validation) label window (t, t+H] reaches a bar of the range
    evaluated after it, and the scaler's statistics equal those of the training rows;
(d) isolation: validation and test windows are byte-identical with augmentation on and off.

and one for anything fitted after training (ensemble weights, tuning objectives):

(e) fit isolation (`check_fit_isolation`): the fit gives a bit-identical result when every
    row it must not see (test rows) is replaced by garbage.

It lives beside the pipeline rather than under evaluation/ because training refuses to start
on data that fails it, and evaluation refuses to report accuracy without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from causalcast.augment import bootstrap_training_bars
from causalcast.config import AugmentConfig, Settings
from causalcast.data.quality import normalize_columns
from causalcast.features.indicators import build_features
from causalcast.features.pipeline import (
    FoldScaler,
    PreparedSymbol,
    align_fold,
    common_calendar,
    prepare_symbol,
)
from causalcast.splits import Fold, SplitError, make_folds
from causalcast.windows import WindowSet, build_window_set

FeatureFn = Callable[[pd.DataFrame], pd.DataFrame | pd.Series]


@dataclass
class Check:
    name: str          # prefix | perturb | purge | isolation
    subject: str       # feature, fold or pipeline at fault / checked
    symbol: str
    passed: bool
    detail: str = ""


@dataclass
class AuditReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict:
        return {"passed": self.passed, "n_checks": len(self.checks),
                "n_failures": len(self.failures), "checks": [asdict(c) for c in self.checks]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _as_frame(values: pd.DataFrame | pd.Series) -> pd.DataFrame:
    return values.to_frame() if isinstance(values, pd.Series) else values


def _cut_points(n: int, n_cuts: int, rng: np.random.Generator, start: int = 1) -> np.ndarray:
    if n - start < 2:
        return np.array([], dtype=int)
    k = min(n_cuts, n - start - 1)
    return np.sort(rng.choice(np.arange(start, n - 1), size=k, replace=False))


def _differs(a: np.ndarray, b: np.ndarray, atol: float) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    close = np.isclose(a, b, rtol=1e-9, atol=atol)
    return ~(both_nan | close)


def perturb_after(ohlcv: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    """A copy whose bars after position t are replaced by a different, still valid path."""
    out = ohlcv.copy()
    n = len(out) - t - 1
    if n <= 0:
        return out
    shock = np.exp(np.cumsum(rng.normal(0, 0.05, n)))
    for col in ("open", "high", "low", "close"):
        out.iloc[t + 1:, out.columns.get_loc(col)] = out[col].to_numpy()[t + 1:] * shock
    out.iloc[t + 1:, out.columns.get_loc("volume")] = out["volume"].to_numpy()[t + 1:] * (
        rng.uniform(0.5, 2.0, n))
    return out


def check_causal(feature_fn: FeatureFn, ohlcv: pd.DataFrame, *, n_cuts: int = 20,
                 seed: int = 0, atol: float = 1e-10, symbol: str = "",
                 perturb: bool = True, min_cut: int = 1) -> list[Check]:
    """Checks (a) and (b) for any function from bars to feature columns; one `Check` per
    column per kind, failing with the first cut date where the column looked ahead. Cuts are
    drawn from positions >= `min_cut` (e.g. the evaluation range of a fitted pipeline). Bars
    with Yahoo-style column names are renamed once (data.quality.normalize_columns) before the
    feature function sees them."""
    ohlcv = normalize_columns(ohlcv, f"check_causal {symbol}".strip())
    rng = np.random.default_rng(seed)
    full = _as_frame(feature_fn(ohlcv))
    columns = list(full.columns)
    first_bad: dict[tuple[str, str], str] = {}
    for t in _cut_points(len(ohlcv), n_cuts, rng, start=min_cut):
        kinds = [("prefix", _as_frame(feature_fn(ohlcv.iloc[: t + 1])).iloc[: t + 1])]
        if perturb:
            kinds.append(("perturb", _as_frame(feature_fn(perturb_after(ohlcv, t, rng)))))
        for kind, other in kinds:
            got = other.iloc[: t + 1].to_numpy(dtype=float)
            want = full.iloc[: t + 1].to_numpy(dtype=float)
            # prefix: the value at t; perturb: every value at or before t.
            rows = slice(t, t + 1) if kind == "prefix" else slice(None)
            bad = _differs(got[rows], want[rows], atol).any(axis=0)
            for j in np.flatnonzero(bad):
                first_bad.setdefault((kind, columns[j]), str(ohlcv.index[t]))
    checks = []
    for kind in ("prefix", "perturb") if perturb else ("prefix",):
        for col in columns:
            where = first_bad.get((kind, col))
            detail = (f"value at {where} changes when later bars are "
                      f"{'removed' if kind == 'prefix' else 'changed'}") if where else ""
            checks.append(Check(kind, str(col), symbol, where is None, detail))
    return checks


def check_purge(folds: dict[str, Fold] | list[Fold], max_horizon: int) -> list[Check]:
    """(c) No label window of a training or validation sample reaches the next range."""
    items = folds.items() if isinstance(folds, dict) else (("", f) for f in folds)
    checks = []
    for symbol, fold in items:
        problems = []
        for left, right, names in ((fold.train, fold.val, "train->val"),
                                   (fold.val, fold.test, "val->test"),
                                   (fold.train, fold.test, "train->test")):
            if len(left) and len(right) and left.stop - 1 + max_horizon >= right.start:
                problems.append(f"{names}: label of sample {left.stop - 1} reaches bar "
                                f"{left.stop - 1 + max_horizon} >= {right.start}")
        checks.append(Check("purge", f"fold {fold.index}", symbol, not problems,
                            "; ".join(problems)))
    return checks


def check_scaler_fit(prepared: PreparedSymbol, fold: Fold, scaler: FoldScaler) -> Check:
    """(c) The fitted scaler's statistics are exactly those of the fold's training rows."""
    rows = prepared.features[fold.train.start:fold.train.stop]
    ref = FoldScaler(clip=scaler.clip).fit(rows)
    ok = np.allclose(ref.mean_, scaler.mean_) and np.allclose(ref.scale_, scaler.scale_)
    return Check("scaler", f"fold {fold.index}", prepared.symbol, bool(ok),
                 "" if ok else "scaler statistics differ from the training rows' statistics")


def check_isolation(build: Callable[[AugmentConfig], WindowSet], augment: AugmentConfig,
                    symbol: str = "", subject: str = "augmentation") -> Check:
    """(d) Evaluation windows and targets are byte-identical with augmentation on and off."""
    off = build(augment.model_copy(update={"enabled": False}))
    on = build(augment.model_copy(update={"enabled": True}))
    for split in ("val", "test"):
        a, b = off.samples[split], on.samples[split]
        same_rows = len(a) == len(b)
        if not same_rows or off.windows(a).tobytes() != on.windows(b).tobytes() or \
                off.y(a).tobytes() != on.y(b).tobytes():
            return Check("isolation", subject, symbol, False,
                         f"{split} windows differ when augmentation is switched on")
    return Check("isolation", subject, symbol, True)


def _same(a: Any, b: Any) -> bool:
    """Exact equality of nested results (dicts, sequences, arrays, floats; NaN == NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray | float | np.floating) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        return x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))
    return bool(a == b)


def check_fit_isolation(fit: Callable[[Any], Any], data: Any, poison: Callable[[Any], Any],
                        subject: str, symbol: str = "") -> Check:
    """(e) `fit(data)` equals `fit(poison(data))` exactly, where `poison` replaces every row
    the fit must not read (the test rows) with NaN or absurd values. A fit that reads one of
    them either changes or raises; both fail the check, naming the subject."""
    clean = fit(data)
    try:
        dirty = fit(poison(data))
    except Exception as exc:  # NaN reached a fit that validates its input
        return Check("fit_isolation", subject, symbol, False,
                     f"fit failed on poisoned test rows ({type(exc).__name__}: {exc})")
    same = _same(clean, dirty)
    return Check("fit_isolation", subject, symbol, same,
                 "" if same else "result changed when the test rows were poisoned")


def scaled_pipeline_fn(train: range) -> FeatureFn:
    """The whole feature pipeline for one fold: all indicators, scaled with a scaler fitted on
    the given training rows. Used for prefix/perturbation checks of the pipeline itself."""
    def run(ohlcv: pd.DataFrame) -> pd.DataFrame:
        feats = build_features(ohlcv)
        out = np.full(feats.shape, np.nan)
        if len(feats) >= train.stop:
            scaler = FoldScaler().fit(feats.to_numpy()[train.start:train.stop])
            out = scaler.transform(feats.to_numpy()).astype(float)
        return pd.DataFrame(out, index=feats.index, columns=feats.columns)
    return run


def run_audit(frames: dict[str, pd.DataFrame], settings: Settings | None = None, *,
              n_cuts: int = 20, seed: int = 0,
              augment: AugmentConfig | None = None) -> AuditReport:
    """All four checks on the given symbols with the given settings."""
    settings = settings or Settings()
    cfg = settings.features
    augment = augment or AugmentConfig(enabled=True, bootstrap_copies=2, seed=seed)
    report = AuditReport()
    prepared = [prepare_symbol(s, f, cfg) for s, f in frames.items()]
    calendar = common_calendar(prepared)
    folds = make_folds(calendar, cfg, settings.split)
    aligned: dict[str, dict[str, Fold]] = {}
    for fold in folds:
        try:
            aligned[str(fold.index)] = {p.symbol: align_fold(fold, calendar, p) for p in prepared}
        except SplitError as exc:
            report.checks.append(Check("purge", f"fold {fold.index}", "", False, str(exc)))
    for sym_i, (symbol, ohlcv) in enumerate(frames.items()):
        report.checks += check_causal(build_features, ohlcv, n_cuts=n_cuts,
                                      seed=seed + sym_i, symbol=symbol)
        last = aligned[max(aligned, key=int)] if aligned else None
        if last is not None:
            checks = check_causal(scaled_pipeline_fn(last[symbol].train), ohlcv,
                                  n_cuts=max(n_cuts // 4, 3), seed=seed + sym_i,
                                  symbol=symbol, min_cut=last[symbol].train.stop)
            ok = all(c.passed for c in checks)
            bad = next((c for c in checks if not c.passed), None)
            report.checks.append(Check("prefix", "pipeline (scaled)", symbol, ok,
                                       "" if ok else f"{bad.subject}: {bad.detail}"))
    for fold_id, by_symbol in aligned.items():
        report.checks += check_purge(by_symbol, cfg.max_horizon)
        _, scalers = build_window_set(prepared, by_symbol)
        for p in prepared:
            report.checks.append(check_scaler_fit(p, by_symbol[p.symbol], scalers[p.symbol]))

        def build(aug: AugmentConfig, by_symbol: dict[str, Fold] = by_symbol) -> WindowSet:
            extra = [c for p in prepared for c in bootstrap_training_bars(
                p, frames[p.symbol], by_symbol[p.symbol], cfg, aug)]
            return build_window_set(prepared, by_symbol, extra)[0]

        report.checks.append(check_isolation(build, augment, subject=f"fold {fold_id}"))
    return report


def audit_table_rows(report: AuditReport) -> list[tuple[str, str, int, int, str]]:
    """(check, subject, passed, failed, first failure) rows grouped for display."""
    groups: dict[tuple[str, str], list[Check]] = {}
    for c in report.checks:
        groups.setdefault((c.name, c.subject), []).append(c)
    rows = []
    for (name, subject), checks in groups.items():
        failed = [c for c in checks if not c.passed]
        first = f"{failed[0].symbol}: {failed[0].detail}" if failed else ""
        rows.append((name, subject, len(checks) - len(failed), len(failed), first))
    return rows
