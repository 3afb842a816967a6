"""Issue 13 acceptance: the versioned bars store (import, append, revisions, versions,
all-or-nothing writes, adjustment as a setting) and option-chain tables."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causalcast.data.quality import DataValidationError
from causalcast.data.resolve import resolve_source
from causalcast.store import BarStore, ChainStore, RevisionError, load_frames, parse_store_source
from tests.support.frames import random_ohlcv, yahoo_csv


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "causalcast", *args], capture_output=True,
                          text=True)


def _files(folder: Path, frames: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for symbol, frame in frames.items():
        yahoo_csv(frame, folder / f"{symbol}.csv")
    return folder


@pytest.mark.slow
def test_import_append_revision_refused_revise_old_version_readable(tmp_path: Path) -> None:
    store = tmp_path / "store"
    full = {"AAA": random_ohlcv(120, seed=1), "BBB": random_ohlcv(120, seed=2)}
    first = _files(tmp_path / "v0", {s: f.iloc[:100] for s, f in full.items()})
    out = cli("data", "import", str(first), "--store", str(store), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"version": 0, "added": {"AAA": 100, "BBB": 100},
                                      "revisions": []}
    # Append: overlapping, identical bars are not new; only the 20 later bars are added.
    second = _files(tmp_path / "v1", {s: f.iloc[90:] for s, f in full.items()})
    out = cli("data", "import", str(second), "--store", str(store), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["added"] == {"AAA": 20, "BBB": 20}
    # A changed stored close is a revision: refused, named, nothing written.
    changed = full["AAA"].iloc[50:60].copy()
    old_close = float(changed["close"].iloc[4])
    changed.iloc[4, changed.columns.get_loc("close")] = old_close * 1.001
    changed["high"] = np.maximum(changed["high"], changed["close"])
    third = _files(tmp_path / "v2", {"AAA": changed})
    out = cli("data", "import", str(third), "--store", str(store))
    day = changed.index[4].strftime("%Y-%m-%d")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "revision refused" in out.stderr and f"AAA 1d {day} close" in out.stderr
    assert "--revise" in out.stderr
    assert BarStore(store).version() == 1
    with pytest.raises(RevisionError) as refused:
        BarStore(store).write({"AAA": changed})
    assert [(r.symbol, r.interval, r.date, r.field, r.old) for r in refused.value.revisions
            if r.field == "close"] == [("AAA", "1d", day, "close", old_close)]
    assert BarStore(store).version() == 1
    # --revise writes it as a new version; version 1 still has the old value.
    out = cli("data", "import", str(third), "--store", str(store), "--revise", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["version"] == 2
    assert {(r["symbol"], r["date"], r["field"]) for r in result["revisions"]} >= {
        ("AAA", day, "close")}
    bars = BarStore(store)
    assert bars.read("AAA").loc[day, "close"] == pytest.approx(old_close * 1.001, rel=1e-12)
    assert bars.read("AAA", version=1).loc[day, "close"] == pytest.approx(old_close, rel=1e-12)
    assert len(bars.read("AAA")) == 120 and len(bars.read("BBB", version=2)) == 120
    out = cli("data", "show", "AAA", "--store", str(store), "--as-of-version", "1", "--json",
              "--tail", "200")
    rows = {r["date"]: r for r in json.loads(out.stdout)["rows"]}
    assert rows[day]["close"] == pytest.approx(old_close, rel=1e-12)
    listed = json.loads(cli("data", "list", "--store", str(store), "--json").stdout)
    assert [(r["symbol"], r["bars"], r["version"]) for r in listed] == [("AAA", 120, 2),
                                                                        ("BBB", 120, 2)]
    assert listed[0]["first"] == full["AAA"].index[0].strftime("%Y-%m-%d")
    assert listed[0]["last"] == full["AAA"].index[-1].strftime("%Y-%m-%d")


def test_a_batch_with_one_bad_bar_changes_nothing(tmp_path: Path) -> None:
    bars = BarStore(tmp_path)
    good = {"AAA": random_ohlcv(50, seed=3), "BBB": random_ohlcv(50, seed=4)}
    bars.write({s: f.iloc[:40] for s, f in good.items()})
    before = bars.read_many()
    bad = good["BBB"].iloc[40:].copy()
    bad.iloc[5, bad.columns.get_loc("low")] = bad["high"].iloc[5] * 1.1   # low above high
    with pytest.raises(DataValidationError, match=r"BBB 1d: low at .*above min"):
        bars.write({"AAA": good["AAA"].iloc[40:], "BBB": bad})
    assert bars.version() == 0
    after = bars.read_many()
    assert after.keys() == before.keys()
    for s in before:
        pd.testing.assert_frame_equal(after[s], before[s])
    # The same through the command line: one line naming file/field/place, exit 2.
    folder = _files(tmp_path / "in", {"CCC": random_ohlcv(30, seed=5)})
    text = (folder / "CCC.csv").read_text().splitlines()
    cells = text[7].split(",")
    cells[4] = "-1"                                  # a negative close
    text[7] = ",".join(cells)
    (folder / "CCC.csv").write_text("\n".join(text) + "\n")
    out = cli("data", "import", str(folder), "--store", str(tmp_path))
    assert out.returncode == 2 and "close" in out.stderr and "Traceback" not in out.stderr
    assert bars.version() == 0 and "CCC" not in bars.read_many()


def test_adjustment_is_a_setting_default_adjusted_and_raw_is_kept(tmp_path: Path) -> None:
    frame = random_ohlcv(200, seed=6)
    frame["adj_close"] = frame["close"] * np.where(np.arange(200) < 100, 0.5, 1.0)
    frame["dividends"] = 0.0
    BarStore(tmp_path).write({"ADJ": frame}, source="test")
    stored = BarStore(tmp_path).read("ADJ")
    np.testing.assert_allclose(stored["close"], frame["close"], rtol=1e-15)
    np.testing.assert_allclose(stored["adj_close"], frame["adj_close"], rtol=1e-15)
    adjusted = load_frames(tmp_path)["ADJ"]
    raw = load_frames(tmp_path, adjusted=False)["ADJ"]
    np.testing.assert_allclose(raw["open"], frame["open"], rtol=1e-15)
    np.testing.assert_allclose(adjusted["open"].iloc[:100], frame["open"].iloc[:100] * 0.5)
    np.testing.assert_allclose(adjusted["close"], frame["adj_close"])
    # The data-source string carries the setting, so lineage records it.
    frames, _ = resolve_source(f"store:{tmp_path}?prices=raw", ["adj"])
    pd.testing.assert_frame_equal(frames["ADJ"], raw)
    frames, _ = resolve_source(f"store:{tmp_path}")
    pd.testing.assert_frame_equal(frames["ADJ"], adjusted)
    with pytest.raises(ValueError, match="prices must be one of"):
        parse_store_source("store:x?prices=split")
    with pytest.raises(KeyError, match="ZZZ"):
        resolve_source(f"store:{tmp_path}", ["ZZZ"])


def test_default_store_is_dot_causalcast_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    BarStore().write({"AAA": random_ohlcv(30, seed=7)})
    assert (tmp_path / ".causalcast" / "data" / "bars" / "_delta_log").is_dir()
    assert list(resolve_source("store:")[0]) == ["AAA"]


def test_daily_and_intraday_series_are_separate(tmp_path: Path) -> None:
    bars = BarStore(tmp_path)
    hourly = random_ohlcv(40, seed=8, freq="h")
    bars.write({"AAA": random_ohlcv(30, seed=7)}, "1d")
    bars.write({"AAA": hourly}, "1h")
    assert len(bars.read("AAA", "1d")) == 30
    pd.testing.assert_index_equal(bars.read("AAA", "1h").index, hourly.index.as_unit("ns"),
                                  check_names=False, check_freq=False)
    assert {(r["symbol"], r["interval"]) for r in bars.catalog()} == {("AAA", "1d"),
                                                                       ("AAA", "1h")}
    with pytest.raises(ValueError, match="interval"):
        bars.write({"AAA": hourly}, "hourly")


@pytest.mark.slow
@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 59), max_size=4, unique=True), seed=st.integers(0, 99),
       data=st.data())
def test_any_sequence_of_overlapping_appends_stores_the_series_once(
        tmp_path_factory, cuts, seed, data) -> None:
    """Invariant: importing a series in overlapping pieces, in any order, stores exactly the
    series (no duplicates, no gaps, same values) and later re-imports are no-ops."""
    root = tmp_path_factory.mktemp("prop")
    frame = random_ohlcv(60, seed=seed)
    edges = [0, *sorted(cuts), 60]
    pieces = [frame.iloc[max(a - 3, 0):b] for a, b in itertools.pairwise(edges)]
    order = data.draw(st.permutations(range(len(pieces))))
    bars = BarStore(root)
    for k in order:
        bars.write({"AAA": pieces[k]})
    stored = bars.read("AAA")
    want = frame.astype(float).set_axis(frame.index.as_unit("ns"))
    pd.testing.assert_frame_equal(stored[["open", "high", "low", "close", "volume"]], want,
                                  check_freq=False, check_names=False)
    version = bars.version()
    assert not bars.write({"AAA": frame}).changed and bars.version() == version


def _chain(as_of: str, n: int = 6) -> pd.DataFrame:
    strikes = np.linspace(90, 110, n // 2)
    return pd.DataFrame({
        "expiry": pd.Timestamp("2026-03-20"), "strike": np.tile(strikes, 2),
        "type": ["call"] * (n // 2) + ["put"] * (n // 2),
        "bid": np.linspace(1, 2, n), "ask": np.linspace(1.1, 2.1, n),
        "last": [1.05, np.nan, 1.3, 1.4, 1.5, 1.6][:n],
        "volume": [10.0, np.nan, 3.0, 4.0, 5.0, 6.0][:n],
        "open_interest": [100.0, 50.0, np.nan, 1.0, 2.0, 3.0][:n],
        "spot": 100.0, "as_of": pd.Timestamp(as_of, tz="UTC"),
    })


def test_option_chains_round_trip_versioned_by_as_of(tmp_path: Path) -> None:
    chains = ChainStore(tmp_path)
    first, second = _chain("2026-01-05 15:00"), _chain("2026-01-06 15:00")
    second["bid"] += 0.5
    assert chains.write("spy", first) == 0
    assert chains.write("SPY", second) == 1
    back = chains.read("SPY")
    pd.testing.assert_frame_equal(back, second.astype({"as_of": "datetime64[ns, UTC]"}),
                                  check_dtype=False)
    assert back["as_of"].dtype == "datetime64[ns, UTC]" and back["strike"].dtype == "float64"
    assert back["open_interest"].isna().sum() == 1
    pd.testing.assert_frame_equal(chains.read("SPY", as_of="2026-01-05 23:00"),
                                  chains.read("SPY", version=0))
    with pytest.raises(ValueError, match="already stored"):
        chains.write("SPY", second)
    with pytest.raises(DataValidationError, match="open_interest at header: missing column"):
        chains.write("SPY", _chain("2026-01-07").drop(columns=["open_interest"]))
    with pytest.raises(DataValidationError, match="type at row 0"):
        chains.write("SPY", _chain("2026-01-07").assign(type="C"))
    assert chains.snapshots("SPY") == ["2026-01-05 15:00:00+00:00", "2026-01-06 15:00:00+00:00"]
    with pytest.raises(KeyError, match="no snapshot at or before"):
        chains.read("SPY", as_of="2025-12-31")


def test_an_empty_batch_changes_nothing(tmp_path: Path) -> None:
    bars = BarStore(tmp_path)
    frame = random_ohlcv(10, seed=2)
    assert not bars.write({"AAA": frame.iloc[:0]}).changed and bars.version() is None
    bars.write({"AAA": frame})
    assert not bars.write({"AAA": frame.iloc[:0]}).changed and bars.version() == 0
