"""`causalcast data update`: fetch what is new for every vendor-fed series; a restated last bar
is a named revision, refused unless --revise (which refetches the whole history). The vendor
here is a real `BarSource` that serves frames held in memory (another vendor is one class)."""

from __future__ import annotations

import json
from typing import ClassVar

import pandas as pd
import pytest
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.store import BarStore
from causalcast.store.sources import SOURCES, BarSource
from tests.support.frames import random_ohlcv


class MemoryVendor:
    """Serves `MemoryVendor.bars` for start <= date < end, like a vendor's history endpoint."""

    name = "memory"
    bars: ClassVar[dict[str, pd.DataFrame]] = {}
    calls: ClassVar[list[tuple[str, str | None]]] = []

    def fetch(self, symbols, *, start, end, interval):
        out = {}
        for symbol in symbols:
            frame = self.bars[symbol]
            if start is not None:
                frame = frame[frame.index >= pd.Timestamp(start)]
            if end is not None:
                frame = frame[frame.index < pd.Timestamp(end)]
            MemoryVendor.calls.append((symbol, start))
            out[symbol] = frame
        return out


@pytest.fixture
def vendor(monkeypatch):
    monkeypatch.setitem(SOURCES, "memory", MemoryVendor)
    monkeypatch.setattr(MemoryVendor, "bars", {})
    monkeypatch.setattr(MemoryVendor, "calls", [])
    return MemoryVendor


def test_update_appends_refuses_a_restatement_and_revise_refetches(vendor, tmp_path) -> None:
    assert isinstance(vendor(), BarSource)
    full = random_ohlcv(80, seed=9)
    vendor.bars = {"MEM": full.iloc[:60]}
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["data", *args, "--store", str(tmp_path)])

    out = run("fetch", "MEM", "--source", "memory", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["added"] == {"MEM": 60}
    BarStore(tmp_path).write({"OWN": random_ohlcv(30, seed=1)})   # imported: not updated

    vendor.bars = {"MEM": full}                       # 20 new bars at the vendor
    out = run("update", "--json")
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["updated"][0]["added"] == {"MEM": 20}
    assert result["skipped_imported"] == ["OWN"]
    assert vendor.calls[-1] == ("MEM", full.index[59].strftime("%Y-%m-%d"))  # from last bar

    restated = full.copy()                            # the vendor restates the last bar
    restated.iloc[-1, restated.columns.get_loc("volume")] *= 2
    vendor.bars = {"MEM": restated}
    version = BarStore(tmp_path).version()
    out = run("update")
    assert out.exit_code == 2
    assert "revision refused" in out.output and "volume" in out.output
    assert BarStore(tmp_path).version() == version
    out = run("update", "--revise", "--json")
    assert out.exit_code == 0, out.output
    assert vendor.calls[-1] == ("MEM", full.index[0].strftime("%Y-%m-%d"))   # whole history
    assert BarStore(tmp_path).read("MEM")["volume"].iloc[-1] == restated["volume"].iloc[-1]
    assert BarStore(tmp_path).read("MEM", version=version)["volume"].iloc[-1] == \
        full["volume"].iloc[-1]
