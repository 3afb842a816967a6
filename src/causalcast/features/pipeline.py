"""From validated bars to model-ready arrays: features, targets, calendar-aligned folds and the
fold scaler.

Two rules live here. Samples are only the bars whose whole lookback window has finite
features and whose every target exists. Everything fitted (the scaler) is fitted on the rows
of the current fold's training range and nothing else (invariant 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causalcast.config import FeatureConfig, SplitConfig
from causalcast.features.indicators import WARMUP, build_features
from causalcast.features.targets import make_targets, target_columns
from causalcast.splits import Fold, SplitError


@dataclass
class PreparedSymbol:
    """One symbol's features and targets as contiguous float32 arrays over all its bars."""

    symbol: str
    dates: pd.DatetimeIndex
    close: np.ndarray          # float64 (n,)
    features: np.ndarray       # float32 (n, F), NaN inside warm-up
    targets: np.ndarray        # float32 (n, H) forward log returns, NaN in the last h bars
    feature_names: list[str]
    horizons: tuple[int, ...]
    lookback: int
    first_sample: int          # first bar whose lookback window is all finite
    stop_sample: int           # one past the last bar whose every target exists

    @property
    def n_samples(self) -> int:
        return max(self.stop_sample - self.first_sample, 0)


def required_bars(cfg: FeatureConfig, split: SplitConfig | None = None,
                  min_range: int = 20) -> int:
    """Bars a symbol needs: indicator warm-up, lookback, the largest horizon, and a train, a
    validation and a test range of at least `min_range` samples with purge and embargo."""
    split = split or SplitConfig()
    purge = cfg.max_horizon if split.purge is None else split.purge
    return WARMUP + cfg.lookback + cfg.max_horizon + 3 * min_range + 2 * (purge + split.embargo)


def prepare_symbol(symbol: str, ohlcv: pd.DataFrame, cfg: FeatureConfig,
                   feature_names: list[str] | None = None) -> PreparedSymbol:
    features = build_features(ohlcv, feature_names)
    targets = make_targets(ohlcv, cfg.horizons)
    ret_cols, _ = target_columns(cfg.horizons)
    x = np.ascontiguousarray(features.to_numpy(dtype=np.float32))
    y = np.ascontiguousarray(targets[ret_cols].to_numpy(dtype=np.float32))
    finite_rows = np.isfinite(x).all(axis=1)
    if not finite_rows.any():
        first_valid = len(x)
    else:
        first_valid = int(np.argmax(finite_rows))
        later_bad = np.flatnonzero(~finite_rows[first_valid:])
        if len(later_bad):
            bad_row = first_valid + int(later_bad[0])
            bad_cols = [features.columns[j] for j in np.flatnonzero(~np.isfinite(x[bad_row]))]
            raise ValueError(f"{symbol}: features {bad_cols} not finite at "
                             f"{ohlcv.index[bad_row]} after warm-up; validate the data first")
    return PreparedSymbol(
        symbol=symbol, dates=ohlcv.index, close=ohlcv["close"].to_numpy(dtype=float),
        features=x, targets=y, feature_names=list(features.columns),
        horizons=tuple(cfg.horizons), lookback=cfg.lookback,
        first_sample=first_valid + cfg.lookback - 1,
        stop_sample=len(ohlcv) - cfg.max_horizon,
    )


def common_calendar(prepared: list[PreparedSymbol]) -> pd.DatetimeIndex:
    """Union of sample dates: folds are cut on calendar time so that a model trained across
    symbols never trains on one symbol's bars dated after another symbol's test bars."""
    dates = [p.dates[p.first_sample:p.stop_sample] for p in prepared]
    calendar = dates[0]
    for d in dates[1:]:
        calendar = calendar.union(d)
    return calendar


def align_fold(fold: Fold, calendar: pd.DatetimeIndex, symbol: PreparedSymbol) -> Fold:
    """Map a calendar fold onto one symbol's bar positions.

    Calendar ranges become the symbol's bars dated inside them; then each range is purged by
    label end time: a training (or validation) sample whose label window (t, t+H] reaches the
    next range's first bar is dropped, whatever holes the symbol's own calendar has."""
    h = max(symbol.horizons)
    dates = symbol.dates

    def to_positions(rng: range) -> range:
        lo = max(int(dates.searchsorted(calendar[rng.start], "left")), symbol.first_sample)
        hi = min(int(dates.searchsorted(calendar[rng.stop - 1], "right")), symbol.stop_sample)
        return range(lo, max(hi, lo))

    train, val, test = (to_positions(r) for r in (fold.train, fold.val, fold.test))
    train = range(train.start, max(min(train.stop, val.start - h - fold.embargo), train.start))
    val = range(val.start, max(min(val.stop, test.start - h - fold.embargo), val.start))
    gaps = [val.start - train.stop, test.start - val.stop]
    aligned = Fold(fold.index, train, val, test, purge=h, embargo=max(min(gaps) - h, 0))
    if min(len(train), len(val), len(test)) == 0:
        raise SplitError(f"{symbol.symbol}: fold {fold.index} leaves an empty range after "
                         f"calendar alignment (train={train}, val={val}, test={test})")
    aligned.check(h)
    return aligned


class FoldScaler:
    """Per-feature standardisation whose statistics come from training rows only.

    `fit` takes the rows of the training range and nothing else; `transform` applies those
    statistics to any rows and clips extreme z-scores (crashes such as 1987 would otherwise
    dominate a batch). Follows the scikit-learn contract: constructor stores configuration."""

    def __init__(self, clip: float = 10.0):
        self.clip = clip
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, rows: np.ndarray) -> FoldScaler:
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or len(rows) < 2:
            raise ValueError(f"FoldScaler.fit: need a 2-D array of >= 2 rows, got {rows.shape}")
        if not np.isfinite(rows).all():
            raise ValueError("FoldScaler.fit: training rows contain NaN/inf (warm-up rows?)")
        self.mean_ = rows.mean(axis=0)
        scale = rows.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("FoldScaler.transform called before fit")
        z = (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_
        if self.clip:
            z = np.clip(z, -self.clip, self.clip)
        return np.ascontiguousarray(z, dtype=np.float32)

    def state_dict(self) -> dict[str, list[float] | float]:
        return {"mean": self.mean_.tolist(), "scale": self.scale_.tolist(), "clip": self.clip}

    @classmethod
    def from_state(cls, state: dict) -> FoldScaler:
        scaler = cls(clip=float(state["clip"]))
        scaler.mean_ = np.asarray(state["mean"], dtype=np.float64)
        scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
        return scaler
