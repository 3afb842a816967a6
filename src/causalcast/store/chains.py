"""Option chain tables: one Delta table per underlying, one snapshot per ``as_of``.

Chains are written by the options code in the normalised schema (store.schema.CHAIN_COLUMNS);
this module only stores and reads them atomically: a frame missing a column is refused, a
snapshot is one commit (one table version), and a snapshot already stored for the same
``as_of`` is refused rather than silently doubled. Content checks (bid <= ask, strikes > 0...)
belong to the code that builds the chain.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from causalcast.store.location import CHAINS_FOLDER, StoreLocation
from causalcast.store.schema import chain_rows, check_symbol, rows_to_chain


class ChainStore:
    """Write and read option chain snapshots of one store."""

    def __init__(self, where: str | Path | StoreLocation | None = None,
                 storage_options: dict[str, str] | None = None):
        self.location = StoreLocation.of(where, storage_options)

    def _uri(self, underlying: str) -> str:
        return self.location.table_uri(CHAINS_FOLDER, check_symbol(underlying))

    def _table(self, underlying: str, version: int | None = None):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self._uri(underlying), version=version,
                              storage_options=self.location.storage_options)
        except TableNotFoundError:
            return None

    def write(self, underlying: str, chain: pd.DataFrame) -> int:
        """Store one snapshot (every row must share one ``as_of``); returns the new version."""
        from deltalake import write_deltalake

        rows = chain_rows(chain, check_symbol(underlying))
        stamps = pd.unique(rows.column("as_of").to_pandas())
        if len(stamps) != 1:
            raise ValueError(f"chain {underlying}: one snapshot per write; as_of has "
                             f"{len(stamps)} values")
        with self.location.writer_lock(f"chain-{check_symbol(underlying)}"):
            table = self._table(underlying)
            if table is not None and str(pd.Timestamp(stamps[0])) in self.snapshots(underlying):
                raise ValueError(f"chain {underlying}: a snapshot as of "
                                 f"{pd.Timestamp(stamps[0]).isoformat()} is already stored")
            write_deltalake(self._uri(underlying), rows, mode="append",
                            storage_options=self.location.storage_options)
            return self._table(underlying).version()

    def snapshots(self, underlying: str) -> list[str]:
        """The stored ``as_of`` times, oldest first."""
        return list(self.snapshot_sizes(underlying))

    def snapshot_sizes(self, underlying: str) -> dict[str, int]:
        """{``as_of``: number of quotes} per stored snapshot, oldest first (empty when none);
        one read of the ``as_of`` column."""
        table = self._table(underlying)
        if table is None:
            return {}
        stamps = table.to_pyarrow_dataset().to_table(columns=["as_of"]).column("as_of")
        counts = pd.Series(stamps.to_pylist(), dtype=object).value_counts()
        return {str(pd.Timestamp(t)): int(counts[t]) for t in sorted(counts.index)}

    def read(self, underlying: str, as_of: str | pd.Timestamp | None = None, *,
             version: int | None = None) -> pd.DataFrame:
        """The latest snapshot taken at or before `as_of` (the newest when None)."""
        table = self._table(underlying, version)
        if table is None:
            raise KeyError(f"chain {check_symbol(underlying)}: not in store "
                           f"{self.location.root}")
        stamps = table.to_pyarrow_dataset().to_table(columns=["as_of"]).column("as_of")
        times = sorted(set(pd.to_datetime(stamps.to_pandas(), utc=True)))
        if as_of is not None:
            limit = pd.Timestamp(as_of)
            limit = limit.tz_localize("UTC") if limit.tz is None else limit.tz_convert("UTC")
            times = [t for t in times if t <= limit]
            if not times:
                raise KeyError(f"chain {check_symbol(underlying)}: no snapshot at or before "
                               f"{limit.isoformat()}")
        chosen = pa.scalar(times[-1], pa.timestamp("us", tz="UTC"))
        rows = table.to_pyarrow_dataset().to_table(filter=ds.field("as_of") == chosen)
        return rows_to_chain(rows)
