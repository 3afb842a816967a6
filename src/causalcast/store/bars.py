"""The bars table: every (symbol, interval) series of a store in one Delta table.

Why one table partitioned by interval rather than a table per (symbol, interval): reading 50
daily series back and appending one bar to each are one file listing and one commit instead of
fifty. Measured in benchmarks/data_store.py (50 x 2520 daily bars, one run on a loaded 2-core
machine): one table read everything back in 101 ms and appended one bar to each symbol in
327 ms; per-symbol tables took 534 ms (slower than pandas reading the CSV files, 360 ms) and
967 ms. The price: reading one symbol scans its interval's files (about as long as reading
them all: ~20 ms for 50 x 2520 bars, twice pandas reading that symbol's CSV file). That is
fine for hundreds of symbols; for thousands, partition by a symbol bucket as well (a change
inside this module only).

Versions are the table's: every write is one Delta commit (one new version), and any earlier
version stays readable (`version=`), until someone vacuums the table on purpose.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from causalcast.data.quality import DataValidationError, Problem, validate_ohlcv
from causalcast.store.integrity import (
    StoreDamagedError,
    check_log,
    find_damaged_file,
    first_line,
    read_failure,
)
from causalcast.store.location import BARS_TABLE, StoreLocation
from causalcast.store.revisions import Revision, RevisionError, diff_batch
from causalcast.store.schema import (
    BAR_PARTITIONS,
    VALUE_COLUMNS,
    batches_to_rows,
    check_interval,
    check_symbol,
    split_rows,
)


@dataclass
class WriteResult:
    """What one write stored: the new table version (unchanged when nothing was new), bars
    added per symbol, and the revisions written (only with ``revise=True``)."""

    version: int | None
    added: dict[str, int] = field(default_factory=dict)
    revisions: list[Revision] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(sum(self.added.values()) or self.revisions)

    def to_dict(self) -> dict:
        return {"version": self.version, "added": dict(self.added),
                "revisions": [r.to_dict() for r in self.revisions]}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_extras(symbol: str, frame: pd.DataFrame, source: str) -> None:
    """The columns beyond OHLCV must be sane too: a positive adjusted close where given,
    non-negative dividends and split ratios."""
    problems = []
    for col, ok, what in (("adj_close", lambda v: np.isnan(v) | (v > 0), "must be > 0"),
                          ("dividends", lambda v: np.isnan(v) | (v >= 0), "must be >= 0"),
                          ("splits", lambda v: np.isnan(v) | (v >= 0), "must be >= 0")):
        if col not in frame.columns:
            continue
        values = frame[col].to_numpy(dtype=float)
        bad = ~ok(values) | np.isinf(values)
        problems += [Problem(col, str(frame.index[i]), f"{what}, got {values[i]:g}")
                     for i in np.flatnonzero(bad)]
    if problems:
        raise DataValidationError(source, problems)


def prepare_batch(symbol: str, interval: str, frame: pd.DataFrame) -> pd.DataFrame:
    """One symbol's batch validated by data.quality (no repairs: the store keeps what the
    source said, or nothing) with a tz-naive UTC index and every stored value column."""
    source = f"{symbol} {interval}"
    if isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is not None:
        frame = frame.set_axis(frame.index.tz_convert("UTC").tz_localize(None))
    clean, _ = validate_ohlcv(frame, source)
    _check_extras(symbol, clean, source)
    n = len(clean)
    columns = {}
    for col in VALUE_COLUMNS:
        if col in clean.columns:
            values = clean[col].to_numpy(dtype=float)
            columns[col] = np.nan_to_num(values, nan=0.0) if col in ("dividends", "splits") \
                else values
        else:
            columns[col] = np.full(n, np.nan if col == "adj_close" else 0.0)
    index = pd.DatetimeIndex(clean.index).as_unit("ns").rename("date")
    return pd.DataFrame(columns, index=index)


class BarStore:
    """Read and write the bars of one store (see module docstring)."""

    def __init__(self, where: str | Path | StoreLocation | None = None,
                 storage_options: dict[str, str] | None = None):
        self.location = StoreLocation.of(where, storage_options)
        self.uri = self.location.table_uri(BARS_TABLE)

    # ----- reading -----------------------------------------------------------------------------
    def _table(self, version: int | None = None):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        if self.location.is_local:
            check_log(self._local_dir())   # damage is refused before deltalake reads around it
        try:
            return DeltaTable(self.uri, version=version,
                              storage_options=self.location.storage_options)
        except TableNotFoundError:
            if version is not None:
                raise ValueError(f"{self.location.root}: empty store has no version "
                                 f"{version}") from None
            return None
        except Exception as exc:  # deltalake raises a generic error for an unknown version
            if version is not None:
                raise ValueError(f"--as-of-version: {self.location.root} has no version "
                                 f"{version} ({exc})") from None
            raise StoreDamagedError(f"{self.uri}: cannot open the table "
                                    f"({first_line(exc)})") from None

    def _local_dir(self) -> Path | None:
        return self.location.local_path(BARS_TABLE) if self.location.is_local else None

    def _read_rows(self, table, expr, columns: list[str] | None) -> pa.Table:
        """Rows of one table version; a missing, replaced or damaged data file raises
        `StoreDamagedError` naming it (never a partial read)."""
        files = table.file_uris() if self.location.is_local else None
        if files is not None and (found := find_damaged_file(files, deep=False)):
            raise StoreDamagedError(found)
        try:
            dataset = table.to_pyarrow_dataset(parquet_read_options=_READ_OPTIONS)
            return dataset.to_table(filter=expr, columns=columns)
        except Exception as exc:  # pyarrow / object store errors: name the file
            raise read_failure(files, exc, self.uri) from None

    def version(self) -> int | None:
        table = self._table()
        return None if table is None else table.version()

    def _scan(self, table, interval: str | None, symbols: Iterable[str] | None = None,
              columns: list[str] | None = None) -> pa.Table:
        """Rows of the table version `table`, ``symbol`` read as a dictionary column."""
        expr = None
        if interval is not None:
            expr = ds.field("interval") == interval
        if symbols is not None:
            part = ds.field("symbol").isin(list(symbols))
            expr = part if expr is None else expr & part
        return self._read_rows(table, expr, columns)

    def read(self, symbol: str, interval: str = "1d", *,
             version: int | None = None) -> pd.DataFrame:
        """Stored bars of one series (raw and adjusted close, dividends, splits)."""
        frames = self.read_many([symbol], interval, version=version)
        key = check_symbol(symbol)
        if key not in frames:
            raise KeyError(f"{key} {interval}: not in store {self.location.root}"
                           + (f" at version {version}" if version is not None else ""))
        return frames[key]

    def read_many(self, symbols: Iterable[str] | None = None, interval: str = "1d", *,
                  version: int | None = None) -> dict[str, pd.DataFrame]:
        """Stored bars of many series in one scan, keyed by symbol (all when None)."""
        table = self._table(version)
        if table is None:
            return {}
        wanted = None if symbols is None else [check_symbol(s) for s in symbols]
        rows = self._scan(table, check_interval(interval), wanted,
                          ["symbol", "ts", *VALUE_COLUMNS])
        return split_rows(rows)

    def catalog(self, version: int | None = None) -> list[dict]:
        """One row per stored series: symbol, interval, first/last bar, bars, adjusted bars,
        and the table version it was read at."""
        table = self._table(version)
        if table is None:
            return []
        rows = self._scan(table, None, None,
                          ["symbol", "interval", "ts", "adj_close", "source"])
        frame = rows.to_pandas()
        if frame.empty:
            return []
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.tz_convert(None)
        frame = frame.sort_values("ts", kind="stable")
        stats = frame.groupby(["symbol", "interval"]).agg(
            first=("ts", "min"), last=("ts", "max"), bars=("ts", "size"),
            adjusted_bars=("adj_close", "count"), source=("source", "last"))
        at = table.version()
        return [{"symbol": s, "interval": i, "first": _stamp(r["first"]),
                 "last": _stamp(r["last"]), "bars": int(r["bars"]),
                 "adjusted_bars": int(r["adjusted_bars"]), "source": r["source"],
                 "version": at}
                for (s, i), r in stats.iterrows()]

    def history(self) -> list[dict]:
        """The table's commits, newest first (version, time, operation)."""
        table = self._table()
        return [] if table is None else table.history()

    # ----- writing -----------------------------------------------------------------------------
    def write(self, frames: Mapping[str, pd.DataFrame], interval: str = "1d", *,
              revise: bool = False, source: str = "import") -> WriteResult:
        """Validate every batch, then store the new bars of all symbols in one commit.

        All or nothing: a batch with one bad bar, or (without `revise`) one changed stored
        value, raises before anything is written. With `revise` the changed values are written
        too, as a new version; earlier versions stay readable."""
        check_interval(interval)
        batches = {}
        for symbol, frame in frames.items():
            key = check_symbol(symbol)
            if key in batches:
                raise ValueError(f"{key}: given twice in one write")
            batches[key] = prepare_batch(key, interval, frame)
        with self.location.writer_lock(BARS_TABLE):
            return self._write_locked(batches, interval, revise, source)

    def _write_locked(self, batches: dict[str, pd.DataFrame], interval: str, revise: bool,
                      source: str) -> WriteResult:
        table = self._table()
        stored = self._stored_overlap(table, batches, interval)
        new_rows: dict[str, pd.DataFrame] = {}
        revisions: list[Revision] = []
        for symbol, batch in batches.items():
            fresh, changed = diff_batch(symbol, interval, stored.get(symbol, _EMPTY), batch)
            new_rows[symbol] = fresh
            revisions += changed
        if revisions and not revise:
            raise RevisionError(revisions)
        added = {s: len(f) for s, f in new_rows.items() if len(f)}
        if not added and not revisions:
            return WriteResult(None if table is None else table.version())
        if revisions:
            self._rewrite(table, batches, interval, source)
        else:
            self._commit(batches_to_rows(new_rows, interval, source), mode="append")
        return WriteResult(self._table().version(), added, revisions)

    def _stored_overlap(self, table, batches: dict[str, pd.DataFrame],
                        interval: str) -> dict[str, pd.DataFrame]:
        filled = [b for b in batches.values() if len(b)]
        if table is None or not filled:
            return {}
        lo = min(b.index.min() for b in filled)
        hi = max(b.index.max() for b in filled)
        expr = ((ds.field("interval") == interval) & ds.field("symbol").isin(list(batches))
                & (ds.field("ts") >= pa.scalar(lo.tz_localize("UTC"),
                                               pa.timestamp("us", tz="UTC")))
                & (ds.field("ts") <= pa.scalar(hi.tz_localize("UTC"),
                                               pa.timestamp("us", tz="UTC"))))
        rows = self._read_rows(table, expr, ["symbol", "ts", *VALUE_COLUMNS])
        return split_rows(rows)

    def _rewrite(self, table, batches: dict[str, pd.DataFrame], interval: str,
                 source: str) -> None:
        """One commit replacing the batch symbols' series by stored-then-batch values."""
        current = self.read_many(list(batches), interval) if table is not None else {}
        parts = {}
        for symbol, batch in batches.items():
            old = current.get(symbol, _EMPTY)
            merged = pd.concat([old[~old.index.isin(batch.index)], batch]).sort_index()
            parts[symbol] = merged
        names = ", ".join(_quote(s) for s in batches)
        predicate = f'"interval" = {_quote(interval)} AND symbol IN ({names})'
        self._commit(batches_to_rows(parts, interval, source), mode="overwrite",
                     predicate=predicate)

    def _commit(self, rows: pa.Table, *, mode: str, predicate: str | None = None) -> None:
        from deltalake import write_deltalake

        try:
            write_deltalake(self.uri, rows, mode=mode, predicate=predicate,
                            partition_by=BAR_PARTITIONS,
                            storage_options=self.location.storage_options)
        except Exception as exc:   # a full disk, a permission, an object-store failure
            # A Delta commit is the atomic rename of one log file: a failed write leaves at
            # most unreferenced data files, which no version reads.
            raise OSError(getattr(exc, "errno", None) or errno.EIO,
                          f"write failed, nothing committed ({first_line(exc)})",
                          self.uri) from None

    def compact(self) -> int | None:
        """Merge small files (one per append) into few; a new version with the same rows.
        Old versions stay readable (nothing is vacuumed)."""
        with self.location.writer_lock(BARS_TABLE):
            table = self._table()
            if table is None:
                return None
            table.optimize.compact()
            return self._table().version()


_READ_OPTIONS = ds.ParquetReadOptions(dictionary_columns={"symbol", "source"})
_EMPTY = pd.DataFrame(columns=list(VALUE_COLUMNS), index=pd.DatetimeIndex([], name="date"),
                      dtype=float)


def _stamp(ts: pd.Timestamp) -> str:
    ts = pd.Timestamp(ts)
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()
