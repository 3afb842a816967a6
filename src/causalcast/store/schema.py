"""Columns and types of the stored tables, and the conversions between stored rows and frames.

Bars: one row per (symbol, interval, ts). Both the raw close and the vendor's adjusted close are
kept (``adj_close`` is null where the source had none), with the dividends and split ratios the
source reported on that bar, so an adjustment can always be recomputed and is never applied
silently (see frames.load_frames). ``ts`` is UTC; daily bars are stamped at midnight of their
exchange-local trading date.

Option chains: the normalised chain schema shared with the options code; one table per
underlying, one snapshot per ``as_of``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from causalcast.data.quality import DataValidationError, Problem

VALUE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume", "dividends", "splits")
BARS_SCHEMA = pa.schema([
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("interval", pa.string(), nullable=False),
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    *(pa.field(c, pa.float64(), nullable=(c == "adj_close")) for c in VALUE_COLUMNS),
    pa.field("source", pa.string(), nullable=False),
])
BAR_PARTITIONS = ["interval"]
_INTERVAL = re.compile(r"^[1-9][0-9]*(m|h|d|wk|mo)$")

CHAIN_COLUMNS = ("expiry", "strike", "type", "bid", "ask", "last", "volume", "open_interest",
                 "spot", "as_of")
CHAIN_FLOATS = ("strike", "bid", "ask", "last", "volume", "open_interest", "spot")
CHAIN_SCHEMA = pa.schema([
    pa.field("expiry", pa.timestamp("us"), nullable=False),
    pa.field("strike", pa.float64(), nullable=False),
    pa.field("type", pa.string(), nullable=False),
    *(pa.field(c, pa.float64()) for c in ("bid", "ask", "last", "volume", "open_interest")),
    pa.field("spot", pa.float64(), nullable=False),
    pa.field("as_of", pa.timestamp("us", tz="UTC"), nullable=False),
])


def check_interval(interval: str) -> str:
    if not _INTERVAL.match(interval):
        raise ValueError(f"interval: expected e.g. 1d, 1h, 30m or 1wk, got {interval!r}")
    return interval


def check_symbol(symbol: str) -> str:
    text = str(symbol).strip().upper()
    if not text or any(ch in text for ch in "/\\'\" \t\n"):
        raise ValueError(f"symbol: {symbol!r} is empty or has a quote, slash or space")
    return text


def batches_to_rows(frames: dict[str, pd.DataFrame], interval: str, source: str) -> pa.Table:
    """Prepared frames (store.bars.prepare_batch) as one table of stored rows, built column by
    column once (a table per symbol and a concat costs more than the commit for one-bar
    appends)."""
    frames = {s: f for s, f in frames.items() if len(f)}
    n = sum(len(f) for f in frames.values())
    symbols = np.repeat(np.array(list(frames), dtype=object), [len(f) for f in frames.values()])
    stamps = np.concatenate([pd.DatetimeIndex(f.index).as_unit("us").asi8
                             for f in frames.values()]) if frames else np.array([], "int64")
    cols: dict[str, object] = {
        "symbol": pa.array(symbols, pa.string()),
        "interval": pa.array(np.full(n, interval, dtype=object), pa.string()),
        "ts": pa.array(stamps, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    }
    for c in VALUE_COLUMNS:
        values = np.concatenate([f[c].to_numpy(dtype=float) for f in frames.values()]) \
            if frames else np.array([], float)
        cols[c] = pa.array(values, pa.float64(), from_pandas=(c == "adj_close"))
    cols["source"] = pa.array(np.full(n, source, dtype=object), pa.string())
    return pa.table(cols, schema=BARS_SCHEMA)


def split_rows(table: pa.Table) -> dict[str, pd.DataFrame]:
    """Stored rows of many symbols -> one frame per symbol indexed by tz-naive UTC ``date``,
    sorted. Columns are converted once for the whole table and sliced per symbol (50 small
    pandas conversions cost more than reading the Parquet files)."""
    if table.num_rows == 0:
        return {}
    codes, names = _symbol_codes(table)
    stamps = table.column("ts").cast(pa.timestamp("us")).cast(pa.int64()).to_numpy() * 1000
    order = _symbol_time_order(codes, stamps)
    if order is not None:
        codes, stamps = codes[order], stamps[order]
    bounds = np.searchsorted(codes, np.arange(len(names) + 1))
    # One arrow -> pandas conversion (one float block) for all symbols, then views per symbol.
    values = table.select(list(VALUE_COLUMNS)).to_pandas()
    if order is not None:
        values = values.take(order)
    values.index = pd.DatetimeIndex(stamps.view("datetime64[ns]"), name="date")
    # A dictionary unified over files also names symbols that the filter left without rows
    # (a scan for MSFT still sees the codes of a file of other symbols): those are skipped.
    return {str(names[k]): values.iloc[int(bounds[k]):int(bounds[k + 1])]
            for k in np.argsort(names) if bounds[k + 1] > bounds[k]}


def _symbol_codes(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    """Integer symbol codes per row and the symbol of each code. Reading ``symbol`` as a
    Parquet dictionary (BarStore does) hands the codes over without materialising a string
    per row."""
    if pa.types.is_dictionary(table.schema.field("symbol").type):
        column = table.select(["symbol"]).unify_dictionaries().column("symbol")
        if column.num_chunks:
            codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False)
                                    for c in column.chunks])
            return codes, column.chunks[0].dictionary.to_pylist()
    encoded = pc.dictionary_encode(table.column("symbol").cast(pa.string())).combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()


def _symbol_time_order(codes: np.ndarray, stamps: np.ndarray) -> np.ndarray | None:
    """Row order by (symbol, time), or None when the rows already are. Rows come as a few
    sorted runs (one per file), so one stable sort of a packed (symbol, second) key merges the
    runs in linear time; an exact lexsort backs it up for sub-second ties."""
    seconds = stamps // 1_000_000_000
    key = (codes.astype(np.int64) << 40) | (seconds - seconds.min())
    if np.all(key[1:] > key[:-1]):
        return None
    order = np.argsort(key, kind="stable")
    ordered_codes, ordered_stamps = codes[order], stamps[order]
    same = ordered_codes[1:] == ordered_codes[:-1]
    if np.any(same & (ordered_stamps[1:] < ordered_stamps[:-1])):
        order = np.lexsort((stamps, codes))
    return order


def chain_rows(frame: pd.DataFrame, underlying: str) -> pa.Table:
    """A chain frame in the normalised schema as stored rows; a frame missing a column, or
    with an unknown option type, is refused by name (content checks belong to the options
    code)."""
    source = f"chain {underlying}"
    missing = [c for c in CHAIN_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(source, [
            Problem(c, "header", f"missing column (have {list(frame.columns)})")
            for c in missing])
    kinds = frame["type"].astype(str)
    bad = ~kinds.isin(["call", "put"])
    if bad.any():
        raise DataValidationError(source, [
            Problem("type", f"row {i}", f"expected 'call' or 'put', got {kinds.iloc[i]!r}")
            for i in np.flatnonzero(bad.to_numpy())[:10]])
    expiry = pd.to_datetime(frame["expiry"])
    if getattr(expiry.dt, "tz", None) is not None:
        expiry = expiry.dt.tz_convert("UTC").dt.tz_localize(None)
    as_of = pd.to_datetime(frame["as_of"], utc=True)
    cols = {"expiry": pa.array(expiry.dt.as_unit("us"), pa.timestamp("us")),
            "type": pa.array(kinds, pa.string()),
            "as_of": pa.array(as_of.dt.as_unit("us"), pa.timestamp("us", tz="UTC"))}
    for c in CHAIN_FLOATS:
        cols[c] = pa.array(pd.to_numeric(frame[c]).to_numpy(dtype=float), pa.float64(),
                           from_pandas=True)
    return pa.table({c: cols[c] for c in CHAIN_COLUMNS}, schema=CHAIN_SCHEMA)


def rows_to_chain(table: pa.Table) -> pd.DataFrame:
    frame = table.select(list(CHAIN_COLUMNS)).to_pandas()
    frame["expiry"] = pd.to_datetime(frame["expiry"]).dt.as_unit("ns")
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True).dt.as_unit("ns")
    frame["type"] = frame["type"].astype(object)
    for c in CHAIN_FLOATS:
        frame[c] = frame[c].astype("float64")
    return frame.reset_index(drop=True)
