"""What a batch would change: which bars are new and which overlap stored bars with other values.

A bar that is already stored with the same values is neither (re-importing a file is a no-op).
A stored bar whose values differ is a *revision*: vendors restate history (late corrections,
and every dividend rescales the whole adjusted-close history), and a forecast trained on one
version must be reproducible, so revisions are refused unless asked for and each is named.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from causalcast.store.schema import VALUE_COLUMNS

MAX_SHOWN = 5


@dataclass(frozen=True)
class Revision:
    """One stored value a batch would change."""

    symbol: str
    interval: str
    date: str
    field: str
    old: float | None
    new: float | None

    def __str__(self) -> str:
        return (f"{self.symbol} {self.interval} {self.date} {self.field}: "
                f"stored {self.old!r}, new {self.new!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class RevisionError(ValueError):
    """A batch overlaps stored bars with different values; nothing was written."""

    def __init__(self, revisions: list[Revision]):
        self.revisions = revisions
        shown = "; ".join(str(r) for r in revisions[:MAX_SHOWN])
        more = len(revisions) - MAX_SHOWN
        suffix = f"; ... and {more} more" if more > 0 else ""
        super().__init__(f"revision refused ({len(revisions)} stored values differ): {shown}"
                         f"{suffix}; pass --revise to store them as a new version")


def _same(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    both_nan = np.isnan(old) & np.isnan(new)
    return both_nan | np.isclose(old, new, rtol=1e-12, atol=0.0)


def _fmt(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()


def diff_batch(symbol: str, interval: str, stored: pd.DataFrame,
               batch: pd.DataFrame) -> tuple[pd.DataFrame, list[Revision]]:
    """The batch's new bars (timestamps not stored) and the revisions among the others.

    Both frames are indexed by timestamp with the stored value columns."""
    if stored.empty:
        return batch, []
    overlap = batch.index.isin(stored.index)
    new_rows = batch[~overlap]
    if not overlap.any():
        return new_rows, []
    mine = batch[overlap]
    theirs = stored.loc[mine.index]
    revisions = []
    for col in VALUE_COLUMNS:
        old = theirs[col].to_numpy(dtype=float)
        new = mine[col].to_numpy(dtype=float)
        for i in np.flatnonzero(~_same(old, new)):
            revisions.append(Revision(
                symbol, interval, _fmt(mine.index[i]), col,
                None if np.isnan(old[i]) else float(old[i]),
                None if np.isnan(new[i]) else float(new[i])))
    revisions.sort(key=lambda r: (r.date, VALUE_COLUMNS.index(r.field)))
    return new_rows, revisions
