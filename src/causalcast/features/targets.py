"""Targets: the only code in causalcast that looks forward in time (invariant 1).

A target at bar t is the log return from the close of t to the close of t+h, and its sign.
Everything else must be a function of bars <= t; the leakage audit treats this module as the
single permitted exception.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalcast.config import DEFAULT_HORIZONS


def target_columns(horizons: tuple[int, ...] | list[int]) -> tuple[list[str], list[str]]:
    return [f"ret_fwd_{h}" for h in horizons], [f"up_fwd_{h}" for h in horizons]


def make_targets(ohlcv: pd.DataFrame,
                 horizons: tuple[int, ...] | list[int] = DEFAULT_HORIZONS) -> pd.DataFrame:
    """Forward log return ``ret_fwd_h`` = log(C[t+h]/C[t]) and direction ``up_fwd_h`` (1.0 if
    the return is positive, else 0.0) for every horizon; NaN in the last h bars."""
    if any(int(h) < 1 for h in horizons):
        raise ValueError(f"horizons: every horizon must be >= 1, got {list(horizons)}")
    log_close = np.log(ohlcv["close"].to_numpy(dtype=float))
    n = len(log_close)
    ret_cols, up_cols = target_columns(horizons)
    out = {}
    for h, rc, uc in zip(horizons, ret_cols, up_cols, strict=True):
        fwd = np.full(n, np.nan)
        if h < n:
            fwd[: n - h] = log_close[h:] - log_close[: n - h]
        out[rc] = fwd
        out[uc] = np.where(np.isnan(fwd), np.nan, (fwd > 0).astype(float))
    return pd.DataFrame(out, index=ohlcv.index)
