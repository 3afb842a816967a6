"""Training inputs for one fold: the arrays a trainer reads.

Data strings are resolved by `causalcast.data.resolve.resolve_source`.
`build_training_data` runs the foundation pipeline
(`prepare_symbol` -> `common_calendar` -> `make_folds` -> `align_fold` -> [redundancy filter]
-> `build_window_set`) and standardises targets per horizon with statistics of the training
rows only. The optional redundancy filter (`features.selection.CorrelationFilter`, off unless
`decorrelate` is given) is fitted on the pooled training rows of the fold and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from causalcast.config import FeatureConfig, SplitConfig
from causalcast.features.pipeline import (
    FoldScaler,
    PreparedSymbol,
    align_fold,
    common_calendar,
    prepare_symbol,
    required_bars,
)
from causalcast.features.selection import CorrelationFilter
from causalcast.models.bundle import POOLED
from causalcast.splits import Fold, SplitError, make_folds
from causalcast.windows import WindowSet, build_window_set


@dataclass
class TrainingData:
    """One fold's arrays: windows (views), standardised targets, and what fitted them."""

    windows: WindowSet
    y_std: np.ndarray                    # (total_bars, H) float32, standardised targets
    target_mean: np.ndarray              # (H,) float64, from training rows only
    target_std: np.ndarray
    scalers: dict[str, FoldScaler]       # per symbol, plus POOLED over all training rows
    folds: dict[str, Fold]               # per symbol, aligned to its own bar positions
    feature_names: list[str]
    horizons: tuple[int, ...]
    lookback: int
    symbols: list[str]
    selection: dict | None = None        # CorrelationFilter.to_dict() when the filter ran

    def rows(self, split: str) -> np.ndarray:
        return self.windows.samples[split]

    def x(self, rows: np.ndarray) -> np.ndarray:
        return self.windows.windows(rows)

    def x_last(self, rows: np.ndarray) -> np.ndarray:
        return self.windows.features[np.asarray(rows)]

    def positions(self, symbol: str, split: str) -> np.ndarray:
        """Bar positions (within the symbol) of a split's samples."""
        rng = getattr(self.folds[symbol], split)
        return np.arange(rng.start, rng.stop)

    @property
    def zero_point(self) -> np.ndarray:
        """A zero raw log return in standardised units, per horizon."""
        return -self.target_mean / self.target_std


def build_training_data(frames: dict[str, pd.DataFrame], features: FeatureConfig,
                        split: SplitConfig, fold: int = 0, walk_forward: bool = False,
                        feature_names: list[str] | None = None,
                        decorrelate: float | None = None) -> TrainingData:
    need = required_bars(features, split)
    short = {s: len(f) for s, f in frames.items() if len(f) < need}
    if short:
        raise ValueError(f"data: symbols {short} have fewer than the {need} bars needed for "
                         f"lookback {features.lookback} and horizons {list(features.horizons)}")
    prepared = [prepare_symbol(s, f, features, feature_names) for s, f in frames.items()]
    calendar = common_calendar(prepared)
    folds = make_folds(calendar, features, split, walk=walk_forward)
    if not 0 <= fold < len(folds):
        raise SplitError(f"fold: {fold} out of range, the split has {len(folds)} fold(s)")
    aligned = {p.symbol: align_fold(folds[fold], calendar, p) for p in prepared}
    selection = None
    if decorrelate is not None:
        prepared, selection = decorrelate_features(prepared, aligned, decorrelate)
    windows, scalers = build_window_set(prepared, aligned)
    train_rows = windows.samples["train"]
    scalers = {**scalers, POOLED: FoldScaler().fit(pooled_train_rows(prepared, aligned))}
    y_train = windows.targets[train_rows].astype(np.float64)
    mean = y_train.mean(axis=0)
    std = y_train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    y_std = ((windows.targets - mean) / std).astype(np.float32)
    return TrainingData(windows=windows, y_std=y_std, target_mean=mean, target_std=std,
                        scalers=scalers, folds=aligned,
                        feature_names=list(prepared[0].feature_names),
                        horizons=tuple(features.horizons), lookback=features.lookback,
                        symbols=[p.symbol for p in prepared], selection=selection)


def pooled_train_rows(prepared: list[PreparedSymbol], aligned: dict[str, Fold]) -> np.ndarray:
    """Every symbol's rows in its own training range of the fold, stacked."""
    return np.concatenate([p.features[aligned[p.symbol].train.start:
                                      aligned[p.symbol].train.stop] for p in prepared])


def decorrelate_features(prepared: list[PreparedSymbol], aligned: dict[str, Fold],
                         threshold: float) -> tuple[list[PreparedSymbol], dict]:
    """Fit the correlation filter on the fold's pooled training rows (each symbol's own
    training range, nothing after it) and keep the chosen columns in every symbol."""
    selector = CorrelationFilter(threshold).fit(pooled_train_rows(prepared, aligned),
                                                prepared[0].feature_names)
    kept = [replace(p, features=selector.transform(p.features),
                    feature_names=list(selector.names_ or [])) for p in prepared]
    return kept, selector.to_dict()
