"""Test data the suite shares: random OHLCV frames, real weights files, Yahoo-shaped CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def random_ohlcv(n: int, seed: int = 0, freq: str = "B", start: str = "2015-01-01",
                 flat_every: int = 0) -> pd.DataFrame:
    """A valid random-walk OHLCV frame; `flat_every` inserts flat bars (H=L=O=C) like the
    early MSFT sample, which exercise the zero-division guards of the indicators."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.02, n)
    close = 50 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[50.0], close[:-1]]) * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
    volume = rng.integers(1_000, 1_000_000, n).astype(float)
    if flat_every:
        flat = np.arange(n) % flat_every == 0
        open_[flat] = high[flat] = low[flat] = close[flat]
    index = pd.date_range(start, periods=n, freq=freq, name="date")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=index)


def weights_file(seed: int = 0) -> bytes:
    """A small real weights file (safetensors + config): the registry proves an artifact
    loadable before promoting it, so tests that promote must register real bytes."""
    import torch

    from causalcast.weights import serialize

    gen = torch.Generator().manual_seed(seed)
    return serialize({"w": torch.randn(4, 4, generator=gen)}, {"seed": seed})[0]


def yahoo_csv(frame: pd.DataFrame, path: Path, adj: bool = False) -> Path:
    out = frame.rename(columns=str.capitalize).rename_axis("Date").reset_index()
    if adj:
        out.insert(5, "Adj Close", out["Close"] * 0.5)
    out.to_csv(path, index=False)
    return path


