"""Where a chain comes from: a CSV/Parquet file or the market data store (`store.ChainStore`).

Chains are stored beside the bars, one Delta table per underlying, one snapshot per ``as_of``.
The store keeps the *quotes* as imported (the fixed schema `store.schema.CHAIN_COLUMNS`);
validation flags are **recomputed on read** by `validate_chain`, not stored: they are a pure
function of the quotes (expiry against the snapshot's own ``as_of``, bid/ask, duplicates) and of
thresholds such as the stale-spread limit, so recomputing gives the same flags for the same
snapshot, lets a changed threshold apply to old snapshots, and never freezes a flag that a later
version of the checks would word differently. Import still validates before writing, so a chain
with malformed columns never reaches the store, and reports how many quotes are flagged.

A stored chain is named like the bars' data strings: ``store:[PATH]?underlying=X[&as_of=T]
[&version=N]`` (PATH empty = the default store; ``as_of`` picks the latest snapshot at or
before T).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pandas as pd

from causalcast.options.analytics.chain import (
    ChainError,
    normalise_chain,
    read_chain,
    validate_chain,
)
from causalcast.store.frames import STORE_PREFIX


def parse_chain_source(text: str) -> dict[str, Any]:
    """``"store:/x?underlying=SPY&as_of=2026-01-02"`` -> {path, underlying, as_of, version}."""
    if not text.startswith(STORE_PREFIX):
        raise ChainError(f"chain: {text!r} is not a store source (store:[PATH]?underlying=X)")
    path, _, query = text[len(STORE_PREFIX):].partition("?")
    out: dict[str, Any] = {"path": path or None, "underlying": None, "as_of": None,
                           "version": None}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ChainError(f"chain: {text!r}: malformed options ({exc})") from None
    for key, value in pairs:
        if key == "underlying":
            out["underlying"] = value
        elif key == "as_of":
            try:
                out["as_of"] = pd.Timestamp(value)
            except ValueError:
                raise ChainError(f"chain: {text!r}: as_of must be a date or time, got "
                                 f"{value!r}") from None
        elif key == "version":
            try:
                out["version"] = int(value)
            except ValueError:
                raise ChainError(f"chain: {text!r}: version must be an integer, got "
                                 f"{value!r}") from None
        else:
            raise ChainError(f"chain: {text!r}: unknown option {key!r}; use underlying, as_of, "
                             "version")
    if not out["underlying"]:
        raise ChainError(f"chain: {text!r}: name the underlying (?underlying=X)")
    return out


def load_chain(source: str | Path) -> pd.DataFrame:
    """A normalised chain from a file path or a ``store:`` source."""
    text = str(source)
    if not text.startswith(STORE_PREFIX):
        return read_chain(text)
    spec = parse_chain_source(text)
    return read_stored(spec["path"], spec["underlying"], spec["as_of"], spec["version"])


def read_stored(store: str | Path | None, underlying: str, as_of: Any = None,
                version: int | None = None) -> pd.DataFrame:
    """The normalised snapshot of `underlying` at or before `as_of` (the latest when None);
    `ChainError` when the store holds none."""
    from causalcast.store import ChainStore

    try:
        stored = ChainStore(store).read(underlying, as_of, version=version)
    except KeyError as exc:
        raise ChainError(str(exc.args[0])) from None
    return normalise_chain(stored)   # the store keeps expiry as naive UTC


def store_chain(chain: pd.DataFrame, underlying: str,
                store: str | Path | None = None) -> dict[str, Any]:
    """Validate, then store one snapshot; returns what was stored and how many were flagged."""
    from causalcast.store import ChainStore

    checked = validate_chain(chain)
    version = ChainStore(store).write(underlying, chain)
    return {"underlying": underlying.upper(), "version": version, "quotes": len(chain),
            "flagged": len(checked.excluded()), "as_of": checked.frame["as_of"].iloc[0].isoformat(),
            "expiries": int(checked.frame["expiry"].nunique())}


def stored_underlyings(store: str | Path | None = None) -> dict[str, list[str]]:
    """{underlying: its snapshot times} for a local store (empty when it holds no chains)."""
    return {u: list(sizes) for u, sizes in stored_chain_sizes(store).items()}


def stored_chain_sizes(store: str | Path | None = None) -> dict[str, dict[str, int]]:
    """{underlying: {snapshot time: quotes}} for a local store (empty when it holds no
    chains); ValueError for an object-storage store, which has no folder to list."""
    from causalcast.store import ChainStore, StoreLocation
    from causalcast.store.location import CHAINS_FOLDER

    location = StoreLocation.of(store)
    folder = location.local_path(CHAINS_FOLDER)
    if not folder.is_dir():
        return {}
    chains = ChainStore(location)
    return {p.name: chains.snapshot_sizes(p.name) for p in sorted(folder.iterdir())
            if (p / "_delta_log").is_dir()}
