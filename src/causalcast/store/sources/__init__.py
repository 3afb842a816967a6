"""Vendor adapters: each turns a vendor's response into canonical bar frames the store writes.

Adding a vendor is one file with a class satisfying `BarSource` and one line in `SOURCES`.
"""

from __future__ import annotations

from causalcast.store.sources.base import BarSource, SourceError
from causalcast.store.sources.yahoo import YahooSource

SOURCES: dict[str, type] = {"yahoo": YahooSource}


def get_source(name: str) -> BarSource:
    try:
        return SOURCES[name.lower()]()
    except KeyError:
        raise ValueError(f"--source: unknown {name!r}; choose from {sorted(SOURCES)}") from None


__all__ = ["SOURCES", "BarSource", "SourceError", "YahooSource", "get_source"]
