"""Training inputs for one fold: where the bars come from, and the arrays a trainer reads.

`resolve_source` turns a data string into OHLCV frames (a folder or file, ``sample:msft``,
``store:[PATH][?interval=1h&prices=raw&version=N]`` (see store.frames),
or ``synthetic:N[,BARS[,STRENGTH[,SEED]]]``, regenerated from its seed so a worker process
needs nothing but the string). `build_training_data` runs the foundation pipeline
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
from causalcast.data.sources import load_ohlcv
from causalcast.data.synthetic import SyntheticUniverse, make_universe
from causalcast.features.pipeline import (
    FoldScaler,
    PreparedSymbol,
    align_fold,
    common_calendar,
    make_folds,
    prepare_symbol,
    required_bars,
)
from causalcast.features.selection import CorrelationFilter
from causalcast.models.bundle import POOLED
from causalcast.splits import Fold, SplitError
from causalcast.windows import WindowSet, build_window_set

SYNTHETIC_PREFIX = "synthetic:"


def parse_synthetic(text: str) -> dict:
    """``"synthetic:8,2520,0.325,0"`` -> make_universe keyword arguments."""
    body = text[len(SYNTHETIC_PREFIX):] if text.startswith(SYNTHETIC_PREFIX) else text
    parts = [p.strip() for p in body.split(",") if p.strip()]
    if not 1 <= len(parts) <= 4:
        raise ValueError(f"synthetic: expected N_SYMBOLS[,BARS[,STRENGTH[,SEED]]], got {text!r}")
    try:
        out = {"n_symbols": int(parts[0])}
        if len(parts) > 1:
            out["n_bars"] = int(parts[1])
        if len(parts) > 2:
            out["strength"] = float(parts[2])
        if len(parts) > 3:
            out["seed"] = int(parts[3])
    except ValueError:
        raise ValueError(f"synthetic: numbers expected in {text!r}") from None
    return out


def synthetic_universe(text: str) -> SyntheticUniverse:
    """The universe a ``synthetic:`` string names; the h > 1 Monte Carlo ceilings are skipped
    (tiny sample) because training needs only the bars and the exact h = 1 ceiling."""
    return make_universe(**parse_synthetic(text), mc_states=50, mc_paths=50)


def resolve_source(data: str, symbols: list[str] | tuple[str, ...] | None = None,
                   min_bars: int | None = None
                   ) -> tuple[dict[str, pd.DataFrame], SyntheticUniverse | None]:
    """OHLCV frames (validated) for the requested symbols, and the universe if synthetic."""
    universe = None
    symbols = [s.upper() for s in symbols] if symbols else None
    if data.startswith(SYNTHETIC_PREFIX):
        universe = synthetic_universe(data)
        frames = dict(universe.frames)
    elif data.startswith("store:"):
        from causalcast.store import load_source

        frames = load_source(data, symbols, min_bars)
    else:
        frames = load_ohlcv(data, symbols=symbols or None, min_bars=min_bars)
    if symbols:
        missing = [s for s in symbols if s not in frames]
        if missing:
            raise KeyError(f"symbols: {missing} not in {data!r} (has {sorted(frames)[:10]}...)")
        frames = {s: frames[s] for s in symbols}
    if not frames:
        raise ValueError(f"data: no symbols found in {data!r}")
    return frames, universe


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
