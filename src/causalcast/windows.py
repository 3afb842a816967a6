"""Lookback windows as index views over one contiguous float32 array, never an N x L x F copy.

All symbols of a dataset are stacked into one (total_bars, F) array with per-symbol offsets;
a sample is a global row index t and its window is rows t-L+1..t. `sliding_window_view`
exposes every window as a read-only view, and indexing a batch copies only that batch.
Windows never cross symbols because every sample position is at least `first_sample` (>= L-1)
bars into its own symbol.

Memory for 50 symbols x 2520 bars x 25 features x lookback 60:
features 50*2520*25*4 B = 12.6 MB and targets (4 horizons) 2.0 MB, against 738 MB for
materialised windows (50 x ~2460 samples x 60 x 25 x 4 B); a batch of 256 windows is 1.5 MB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from causalcast.features.pipeline import FoldScaler, PreparedSymbol
from causalcast.splits import Fold


@dataclass
class WindowSet:
    """Scaled features and targets of several symbols, and sample rows per split."""

    features: np.ndarray                 # (total_bars, F) float32, C-contiguous
    targets: np.ndarray                  # (total_bars, H) float32
    lookback: int
    offsets: dict[str, int]              # symbol -> first global row
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # split -> global rows
    symbol_of_row: np.ndarray | None = None   # (total_bars,) int32 symbol id
    symbols: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.features.flags.c_contiguous or self.features.dtype != np.float32:
            raise TypeError("WindowSet.features must be C-contiguous float32")
        self._view = sliding_window_view(self.features, self.lookback, axis=0)  # (N-L+1, F, L)

    def windows(self, rows: np.ndarray) -> np.ndarray:
        """(B, L, F) windows ending at the given global rows (a copy of this batch only)."""
        rows = np.asarray(rows)
        return np.ascontiguousarray(self._view[rows - self.lookback + 1].transpose(0, 2, 1))

    def window_view(self) -> np.ndarray:
        """Every window as a zero-copy, read-only view, shape (N-L+1, F, L)."""
        return self._view

    def y(self, rows: np.ndarray) -> np.ndarray:
        return self.targets[np.asarray(rows)]

    @property
    def nbytes(self) -> int:
        return self.features.nbytes + self.targets.nbytes


def build_window_set(prepared: list[PreparedSymbol], folds: dict[str, Fold],
                     extra_train: list[PreparedSymbol] | None = None) -> tuple[
                         WindowSet, dict[str, FoldScaler]]:
    """Stack symbols into one WindowSet, each scaled by a `FoldScaler` fitted on the rows of
    its own training range. `extra_train` (augmentation: bootstrapped copies of training
    bars) is appended after the real symbols and contributes training samples only, scaled
    with its source symbol's scaler, so evaluation rows are the same bytes with or without."""
    if not prepared:
        raise ValueError("build_window_set: no symbols")
    lookback = prepared[0].lookback
    blocks_x, blocks_y, ids = [], [], []
    offsets: dict[str, int] = {}
    samples: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    scalers: dict[str, FoldScaler] = {}
    row = 0
    for sid, sym in enumerate(prepared):
        fold = folds[sym.symbol]
        scaler = FoldScaler().fit(sym.features[fold.train.start:fold.train.stop])
        scalers[sym.symbol] = scaler
        blocks_x.append(scaler.transform(sym.features))
        blocks_y.append(sym.targets)
        ids.append(np.full(len(sym.features), sid, dtype=np.int32))
        offsets[sym.symbol] = row
        for name in samples:
            rng = getattr(fold, name)
            samples[name].append(np.arange(rng.start, rng.stop, dtype=np.int64) + row)
        row += len(sym.features)
    for k, sym in enumerate(extra_train or []):
        source = sym.symbol.split("#", 1)[0]
        x = scalers[source].transform(sym.features)
        blocks_x.append(x)
        blocks_y.append(sym.targets)
        ids.append(np.full(len(x), -1 - k, dtype=np.int32))
        offsets[sym.symbol] = row
        samples["train"].append(np.arange(sym.first_sample, sym.stop_sample) + row)
        row += len(x)
    window_set = WindowSet(
        features=np.ascontiguousarray(np.concatenate(blocks_x), dtype=np.float32),
        targets=np.ascontiguousarray(np.concatenate(blocks_y), dtype=np.float32),
        lookback=lookback, offsets=offsets,
        samples={k: np.concatenate(v) for k, v in samples.items()},
        symbol_of_row=np.concatenate(ids), symbols=[p.symbol for p in prepared],
    )
    return window_set, scalers
