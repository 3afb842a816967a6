"""Feature redundancy filter: drop features that duplicate one already kept.

Thirty-odd indicators overlap heavily (``sma_ratio_50`` and ``macd`` correlate at about 0.97 on
daily bars), which costs capacity and makes ridge coefficients unstable without adding
information. `CorrelationFilter` keeps features greedily in registry order and drops one whose
absolute Pearson correlation with a kept feature exceeds the threshold, or whose training
variance is zero.

It follows the scikit-learn contract and invariant 2: the constructor stores the threshold
only, `fit` sees the training rows of the current fold and nothing else, `transform` selects
the same columns from any rows. `training.data.build_training_data` fits it per fold when a
job asks for it (``JobSpec.decorrelate``); off by default, so the ablation is one switch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class CorrelationFilter:
    """Greedy absolute-correlation filter fitted on training rows."""

    def __init__(self, threshold: float = 0.95):
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"decorrelate: the correlation threshold must be in (0, 1), "
                             f"got {threshold!r}")
        self.threshold = float(threshold)
        self.keep_: np.ndarray | None = None
        self.names_: list[str] | None = None
        self.dropped_: dict[str, str] | None = None

    def fit(self, rows: np.ndarray, names: Sequence[str]) -> CorrelationFilter:
        """Choose the columns to keep from `rows` (the fold's training rows only)."""
        x = np.asarray(rows, dtype=np.float64)
        names = list(names)
        if x.ndim != 2 or x.shape[1] != len(names):
            raise ValueError(f"CorrelationFilter.fit: rows of shape {x.shape} do not match "
                             f"{len(names)} feature names")
        if len(x) < 3:
            raise ValueError(f"CorrelationFilter.fit: need >= 3 training rows, got {len(x)}")
        if not np.isfinite(x).all():
            raise ValueError("CorrelationFilter.fit: training rows contain NaN/inf")
        std = x.std(axis=0)
        alive = std > 1e-12
        z = np.zeros_like(x)
        z[:, alive] = (x[:, alive] - x[:, alive].mean(axis=0)) / std[alive]
        corr = np.abs(z.T @ z) / len(x)
        keep: list[int] = []
        dropped: dict[str, str] = {}
        for j in range(len(names)):
            if not alive[j]:
                dropped[names[j]] = "(constant on training rows)"
                continue
            twin = next((k for k in keep if corr[j, k] > self.threshold), None)
            if twin is None:
                keep.append(j)
            else:
                dropped[names[j]] = names[twin]
        if not keep:  # every column constant: keep the first so shapes stay valid
            keep = [0]
            dropped.pop(names[0], None)
        self.keep_ = np.asarray(keep, dtype=int)
        self.names_ = [names[j] for j in keep]
        self.dropped_ = dropped
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.keep_ is None:
            raise RuntimeError("CorrelationFilter.transform called before fit")
        return np.ascontiguousarray(np.asarray(x)[..., self.keep_])

    def to_dict(self) -> dict:
        """What was kept and why the rest was dropped (name -> the kept feature it
        duplicates), for the bundle's metadata."""
        if self.keep_ is None:
            raise RuntimeError("CorrelationFilter.to_dict called before fit")
        return {"threshold": self.threshold, "kept": list(self.names_ or []),
                "dropped": dict(self.dropped_ or {})}
