"""The interface every market data vendor adapter implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd


class SourceError(RuntimeError):
    """A vendor could not deliver (no network, unknown symbol, rate limit); the message names
    the source, the symbol and the cause in one line."""


@runtime_checkable
class BarSource(Protocol):
    """Fetch bars for symbols; return canonical frames (tz-naive UTC index; ``open, high, low,
    close, volume`` plus ``adj_close``, ``dividends``, ``splits`` where the vendor has them).

    Implementations raise `SourceError` for anything the vendor could not deliver and never
    return a partial result silently."""

    name: str

    def fetch(self, symbols: list[str], *, start: str | None, end: str | None,
              interval: str) -> dict[str, pd.DataFrame]: ...
