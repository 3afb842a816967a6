"""The store as a data source: ``store:`` (the default store) or ``store:PATH``, with options
after ``?``: ``interval=1h``, ``prices=raw|adjusted`` (default adjusted), ``version=N``.

Which prices features see is part of the data string, so it is recorded wherever the string is
(job specs, registry lineage) and never chosen silently: ``adjusted`` scales open/high/low/close
by ``adj_close / close`` (data.sources.apply_adjustment); ``raw`` uses the stored prices as the
vendor reported them. A series without an adjusted close stays raw either way, and the
per-symbol `DataReport.adjusted` says which it got.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl

import pandas as pd

from causalcast.data.quality import REQUIRED_COLUMNS, validate_ohlcv
from causalcast.data.sources import apply_adjustment
from causalcast.store.bars import BarStore

log = logging.getLogger(__name__)

STORE_PREFIX = "store:"
PRICE_CHOICES = ("adjusted", "raw")


def parse_store_source(text: str) -> dict:
    """``"store:/x/y?interval=1h&prices=raw&version=3"`` -> load_frames keyword arguments."""
    if not text.startswith(STORE_PREFIX):
        raise ValueError(f"data: {text!r} is not a store source (store:[PATH][?options])")
    body = text[len(STORE_PREFIX):]
    path, _, query = body.partition("?")
    out: dict = {"path": path or None}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key == "interval":
            out["interval"] = value
        elif key == "prices":
            if value not in PRICE_CHOICES:
                raise ValueError(f"{text}: prices must be one of {PRICE_CHOICES}, got {value!r}")
            out["adjusted"] = value == "adjusted"
        elif key == "version":
            try:
                out["version"] = int(value)
            except ValueError:
                raise ValueError(f"{text}: version must be an integer, got {value!r}") from None
        else:
            raise ValueError(f"{text}: unknown option {key!r}; use interval, prices, version")
    return out


def load_frames(path: str | Path | None = None, symbols: Iterable[str] | None = None, *,
                interval: str = "1d", adjusted: bool = True, version: int | None = None,
                min_bars: int | None = None) -> dict[str, pd.DataFrame]:
    """Canonical OHLCV frames (validated) for the stored symbols (all when None)."""
    store = BarStore(path)
    wanted = None if symbols is None else [s.upper() for s in symbols]
    stored = store.read_many(wanted, interval, version=version)
    if wanted is not None and (absent := [s for s in wanted if s not in stored]):
        raise KeyError(f"symbols {absent} ({interval}) not in store {store.location.root}")
    if not stored:
        raise ValueError(f"store {store.location.root}: no {interval} bars stored; "
                         "use causalcast data import or data fetch first")
    frames = {}
    for symbol, bars in stored.items():
        prices, was_adjusted = apply_adjustment(bars) if adjusted else (bars, False)
        clean, report = validate_ohlcv(prices[list(REQUIRED_COLUMNS)],
                                       f"store {symbol} {interval}", min_bars=min_bars)
        log.info("store %s %s: %d bars, %s prices", symbol, interval, report.n_bars,
                 "adjusted" if was_adjusted else "raw")
        frames[symbol] = clean
    return frames


def load_source(text: str, symbols: Iterable[str] | None = None,
                min_bars: int | None = None) -> dict[str, pd.DataFrame]:
    """Frames for a ``store:`` data string (the one call data-source resolution makes)."""
    return load_frames(symbols=symbols, min_bars=min_bars, **parse_store_source(text))
