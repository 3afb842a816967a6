"""Writer processes for the store concurrency test (importable, for forkserver children).

Writer i commits batches k = 0, 1, ... in order; batch k holds two bars that must appear
together or not at all: bar k of the private series ``W{i}`` and one bar of the shared series
``ALL`` on a date no other writer uses. Values encode (i, k), so a reader can tell exactly which
batches are stored. After each commit the writer appends k to its ledger (what it was told).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pandas as pd

from causalcast.store import BarStore

START = pd.Timestamp("2000-01-03")
N_WRITERS = 4


def context() -> mp.context.BaseContext:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pandas", "pyarrow", "deltalake", "causalcast.store",
                                "tests.support.store_workers"])
    return ctx


def bar(value: float, when: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame({"open": value, "high": value, "low": value, "close": value,
                         "volume": 1.0}, index=pd.DatetimeIndex([when], name="date"))


def private_day(k: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=k)


def shared_day(i: int, k: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=k * N_WRITERS + i)


def value(i: int, k: int) -> float:
    return 100.0 + i + k / 1000.0


def batch(i: int, k: int) -> dict[str, pd.DataFrame]:
    return {f"W{i}": bar(value(i, k), private_day(k)), "ALL": bar(value(i, k), shared_day(i, k))}


def writer(root: str, i: int, first: int, last: int, ready) -> None:
    store = BarStore(root)
    ledger = Path(root).parent / f"ledger-{i}.txt"
    ready.release()
    for k in range(first, last):
        store.write(batch(i, k), source=f"writer-{i}")
        with open(ledger, "a") as fh:
            fh.write(f"{k}\n")
            fh.flush()
            os.fsync(fh.fileno())
