"""Temporal splits with purge and embargo, and walk-forward folds.

Positions are bar positions of one symbol (0 = first bar). A sample at position t uses bars
<= t as inputs and bars (t, t + max_horizon] as its label. Between a training range and the
evaluation range after it lie `purge` + `embargo` unused positions; with purge >= max_horizon
no training label reaches an evaluation bar (invariant 2). The same gap separates validation
from test, because validation drives model selection and must not see test returns either.

`make_folds` is where a run's folds are cut: a calendar and the feature/split settings ->
walk-forward folds or the single temporal split (the final fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

    from causalcast.config import FeatureConfig, SplitConfig


class SplitError(ValueError):
    """An impossible or overlapping split configuration."""


@dataclass(frozen=True)
class Fold:
    """Index ranges (bar positions, half-open) of one fold."""

    index: int
    train: range
    val: range
    test: range
    purge: int
    embargo: int

    @property
    def gap(self) -> int:
        return self.purge + self.embargo

    def check(self, max_horizon: int) -> None:
        """Raise `SplitError` unless ranges are non-empty, ordered, and separated by a purge
        of at least `max_horizon` bars plus the embargo."""
        for name, rng in (("train", self.train), ("val", self.val), ("test", self.test)):
            if len(rng) <= 0:
                raise SplitError(f"fold {self.index}: {name} range is empty ({rng})")
        if self.purge < max_horizon:
            raise SplitError(f"fold {self.index}: purge {self.purge} < largest horizon "
                             f"{max_horizon}: training labels would overlap evaluation bars")
        for left, right, names in ((self.train, self.val, "train/val"),
                                   (self.val, self.test, "val/test")):
            if left.stop + self.gap > right.start:
                raise SplitError(
                    f"fold {self.index}: {names} ranges {left} and {right} are closer than "
                    f"purge + embargo = {self.gap} bars")

    def to_dict(self) -> dict:
        as_list = lambda r: [r.start, r.stop]  # noqa: E731
        return {"index": self.index, "train": as_list(self.train), "val": as_list(self.val),
                "test": as_list(self.test), "purge": self.purge, "embargo": self.embargo}


def _purge(purge: int | None, max_horizon: int) -> int:
    purge = max_horizon if purge is None else purge
    if purge < max_horizon:
        raise SplitError(f"purge: {purge} is below the largest horizon {max_horizon}; training "
                         "labels would overlap the evaluation period")
    return purge


def temporal_split(start: int, stop: int, *, max_horizon: int, val_fraction: float = 0.15,
                   test_fraction: float = 0.15, purge: int | None = None,
                   embargo: int = 5) -> Fold:
    """One train / validation / test split of positions [start, stop) by time."""
    purge = _purge(purge, max_horizon)
    usable = stop - start - 2 * (purge + embargo)
    n_test = int(usable * test_fraction)
    n_val = int(usable * val_fraction)
    test = range(stop - n_test, stop)
    val = range(test.start - purge - embargo - n_val, test.start - purge - embargo)
    train = range(start, val.start - purge - embargo)
    fold = Fold(0, train, val, test, purge, embargo)
    if usable <= 0 or min(n_test, n_val, len(train)) <= 0:
        raise SplitError(f"split: {stop - start} samples cannot hold train, val and test with "
                         f"purge {purge} and embargo {embargo} "
                         f"(val_fraction={val_fraction}, test_fraction={test_fraction})")
    fold.check(max_horizon)
    return fold


def walk_forward(start: int, stop: int, *, max_horizon: int, n_folds: int = 5,
                 test_size: int | None = None, val_size: int | None = None,
                 min_train: int | None = None, mode: Literal["expanding", "rolling"] = "expanding",
                 purge: int | None = None, embargo: int = 5, test_fraction: float = 0.3,
                 val_fraction: float = 0.1) -> list[Fold]:
    """Walk-forward folds over positions [start, stop): the test blocks tile the last part of
    the range in time order; each fold trains on what lies before its validation block
    (expanding: from `start`; rolling: the last `min_train` positions)."""
    if n_folds < 1:
        raise SplitError(f"n_folds: must be >= 1, got {n_folds}")
    if mode not in ("expanding", "rolling"):
        raise SplitError(f"mode: must be 'expanding' or 'rolling', got {mode!r}")
    purge = _purge(purge, max_horizon)
    gap = purge + embargo
    total = stop - start
    test_size = test_size or int(total * test_fraction) // n_folds
    val_size = val_size or max(int(total * val_fraction), 1)
    if test_size <= 0 or val_size <= 0:
        raise SplitError(f"walk_forward: {total} samples are too few for {n_folds} folds "
                         f"(test_size={test_size}, val_size={val_size})")
    first_test = stop - n_folds * test_size
    first_train_stop = first_test - gap - val_size - gap
    min_train = min_train or max(first_train_stop - start, 1)
    if first_train_stop - start < min_train or first_train_stop <= start:
        raise SplitError(
            f"walk_forward: {total} samples cannot hold {n_folds} test blocks of {test_size}, "
            f"a validation block of {val_size}, gaps of {gap} and {min_train} training samples")
    folds = []
    for k in range(n_folds):
        test = range(first_test + k * test_size, first_test + (k + 1) * test_size)
        val = range(test.start - gap - val_size, test.start - gap)
        train_stop = val.start - gap
        train_start = start if mode == "expanding" else train_stop - min_train
        fold = Fold(k, range(train_start, train_stop), val, test, purge, embargo)
        fold.check(max_horizon)
        folds.append(fold)
    return folds


def make_folds(calendar: pd.DatetimeIndex, cfg: FeatureConfig, split: SplitConfig,
               walk: bool = True) -> list[Fold]:
    """Folds over calendar positions: walk-forward (`split.n_folds`) or one temporal split."""
    if walk:
        return walk_forward(0, len(calendar), max_horizon=cfg.max_horizon,
                            n_folds=split.n_folds, mode=split.mode, purge=split.purge,
                            embargo=split.embargo, test_fraction=split.test_fraction * 2,
                            val_fraction=split.val_fraction)
    return [temporal_split(0, len(calendar), max_horizon=cfg.max_horizon,
                           val_fraction=split.val_fraction, test_fraction=split.test_fraction,
                           purge=split.purge, embargo=split.embargo)]
