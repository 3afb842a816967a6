"""Training-only augmentation (invariant 3: split first, augment after).

Two kinds, both seeded and off by default:

* Batch transforms (`BatchAugmenter`): jitter and magnitude warping, applied to training
  batches only, in the units of the already-scaled features (so their size is relative to the
  training range's spread).
* Block bootstrap (`bootstrap_training_bars`): new bar series resampled, in blocks, from the
  bars of the training range only (arch's circular block bootstrap), turned into features and
  targets like real bars and added to the training samples. Validation and test samples never
  change, which the leakage audit checks byte for byte.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from arch.bootstrap import CircularBlockBootstrap

from causalcast.config import AugmentConfig, FeatureConfig
from causalcast.features.pipeline import PreparedSymbol, prepare_symbol
from causalcast.splits import Fold


class BatchAugmenter:
    """Jitter and magnitude warping of (B, L, F) training windows."""

    def __init__(self, config: AugmentConfig):
        self.config = config
        self.rng = np.random.default_rng(config.seed)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        if not self.config.enabled:
            return windows
        b, length, f = windows.shape
        out = windows.astype(np.float32, copy=True)
        if self.config.magnitude_warp_std > 0:
            knots = 4
            at = np.linspace(0, length - 1, knots)
            factors = self.rng.normal(1.0, self.config.magnitude_warp_std, (b, knots, f))
            grid = np.arange(length)
            curve = np.empty((b, length, f), dtype=np.float32)
            for i in range(b):
                for j in range(f):
                    curve[i, :, j] = np.interp(grid, at, factors[i, :, j])
            out *= curve
        if self.config.jitter_std > 0:
            out += self.rng.normal(0.0, self.config.jitter_std, out.shape).astype(np.float32)
        return out


def bootstrap_training_bars(symbol: PreparedSymbol, ohlcv: pd.DataFrame, fold: Fold,
                            cfg: FeatureConfig, augment: AugmentConfig) -> list[PreparedSymbol]:
    """`augment.bootstrap_copies` series built from blocks of the training range's bars.

    Bars are resampled as tuples of (open, high, low, close) relative to the previous close
    plus log volume, so each resampled bar keeps its own shape; prices are rebuilt by
    compounding. Only bars strictly inside the training range (positions < fold.train.stop)
    are used, and their labels are recomputed inside each synthetic series."""
    if not augment.enabled or augment.bootstrap_copies == 0:
        return []
    stop = fold.train.stop
    bars = ohlcv.iloc[: stop]
    prev = bars["close"].shift(1)
    rel = np.log(bars[["open", "high", "low", "close"]].div(prev, axis=0)).iloc[1:]
    vol = np.log1p(bars["volume"]).iloc[1:]
    data = np.column_stack([rel.to_numpy(), vol.to_numpy()])
    boot = CircularBlockBootstrap(augment.block_size, data, seed=augment.seed)
    copies = []
    for k, (pos, _) in enumerate(boot.bootstrap(augment.bootstrap_copies)):
        sample = pos[0]
        log_close = np.log(bars["close"].iloc[0]) + np.cumsum(sample[:, 3])
        prev_close = np.concatenate([[np.log(bars["close"].iloc[0])], log_close[:-1]])
        frame = pd.DataFrame({
            "open": np.exp(prev_close + sample[:, 0]),
            "high": np.exp(prev_close + sample[:, 1]),
            "low": np.exp(prev_close + sample[:, 2]),
            "close": np.exp(log_close),
            "volume": np.expm1(sample[:, 4]),
        }, index=bars.index[1:])
        prepared = prepare_symbol(f"{symbol.symbol}#boot{k}", frame, cfg, symbol.feature_names)
        if prepared.n_samples > 0:
            copies.append(prepared)
    return copies
