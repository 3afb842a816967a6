"""Issue 13: the Yahoo adapter reads frames shaped exactly as yfinance returns them (built here,
no network), and `data fetch` without network fails in one line with the store unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalcast.store import BarStore, load_frames
from causalcast.store.sources import BarSource, YahooSource, get_source
from causalcast.store.sources.yahoo import canonical_yahoo, drop_unfinished, split_download
from tests.support.frames import random_ohlcv, yahoo_csv

PRICE_ORDER = ["Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends",
               "Stock Splits"]
NY = "America/New_York"


def _history(index: pd.DatetimeIndex, seed: int, split_at: int, dividend_at: int
             ) -> pd.DataFrame:
    """`Ticker.history(auto_adjust=False, actions=True)`: flat columns, exchange-tz index,
    Close split-adjusted by Yahoo, Adj Close also dividend-adjusted, actions on their bars."""
    base = random_ohlcv(len(index), seed=seed).rename(columns=str.capitalize)
    base.index = index
    dividends = np.zeros(len(index))
    dividends[dividend_at] = 0.5
    splits = np.zeros(len(index))
    splits[split_at] = 4.0
    # Yahoo's back-adjustment: bars before the ex-date scaled by 1 - dividend / prior close.
    factor = np.ones(len(index))
    factor[:dividend_at] = 1 - 0.5 / base["Close"].iloc[dividend_at - 1]
    base["Adj Close"] = base["Close"] * factor
    base["Dividends"], base["Stock Splits"] = dividends, splits
    return base[PRICE_ORDER]


def _daily(seed: int = 0) -> pd.DataFrame:
    days = pd.bdate_range("2024-03-01", periods=40)
    return _history(pd.DatetimeIndex(days.tz_localize(NY), name="Date"), seed, 20, 30)


def _hourly(seed: int = 0) -> pd.DataFrame:
    """Seven bars a day (09:30 ... 15:30 New York) across the 2024-03-10 DST change."""
    days = pd.bdate_range("2024-03-06", "2024-03-13")
    stamps = [pd.Timestamp(f"{d.date()} {h}:30", tz=NY) for d in days for h in range(9, 16)]
    return _history(pd.DatetimeIndex(stamps, name="Datetime"), seed, 10, 30)


def _download(frames: dict[str, pd.DataFrame], daily: bool) -> pd.DataFrame:
    """`yfinance.download([...], auto_adjust=False, actions=True)`: columns
    MultiIndex (Price, Ticker) sorted by Price; daily index tz-naive (ignore_tz)."""
    parts = {}
    for ticker, frame in frames.items():
        frame = frame.copy()
        if daily:
            frame.index = frame.index.tz_localize(None)
        parts[ticker] = frame
    data = pd.concat(parts.values(), axis=1, sort=True, keys=parts.keys(),
                     names=["Ticker", "Price"])
    data.columns = data.columns.swaplevel(0, 1)
    return data.sort_index(level=0, axis=1)


def _check_stored(store: Path, symbol: str, interval: str, raw: pd.DataFrame,
                  want_index: pd.DatetimeIndex) -> None:
    stored = BarStore(store).read(symbol, interval)
    pd.testing.assert_index_equal(stored.index, want_index, check_names=False, check_freq=False)
    np.testing.assert_allclose(stored["close"], raw["Close"], rtol=1e-15)
    np.testing.assert_allclose(stored["adj_close"], raw["Adj Close"], rtol=1e-15)
    np.testing.assert_array_equal(stored["dividends"], raw["Dividends"])
    np.testing.assert_array_equal(stored["splits"], raw["Stock Splits"])
    adjusted = load_frames(store, [symbol], interval=interval)[symbol]
    np.testing.assert_allclose(adjusted["close"], raw["Adj Close"], rtol=1e-12)
    ratio = (raw["Adj Close"] / raw["Close"]).to_numpy()
    np.testing.assert_allclose(adjusted["low"], raw["Low"].to_numpy() * ratio, rtol=1e-12)


def test_history_frames_daily_and_hourly_with_splits_and_dividends(tmp_path: Path) -> None:
    daily, hourly = _daily(1), _hourly(2)
    BarStore(tmp_path).write({"MSFT": canonical_yahoo(daily, "MSFT", "1d")}, "1d",
                             source="yahoo")
    BarStore(tmp_path).write({"MSFT": canonical_yahoo(hourly, "MSFT", "1h")}, "1h",
                             source="yahoo")
    # Daily bars keep their New York trading date (not shifted to 04:00/05:00 UTC).
    _check_stored(tmp_path, "MSFT", "1d", daily,
                  pd.DatetimeIndex(daily.index.tz_localize(None)).as_unit("ns"))
    # Hourly bars are UTC: 09:30 New York is 14:30 UTC before the DST change, 13:30 after.
    stored_index = BarStore(tmp_path).read("MSFT", "1h").index
    assert stored_index[0] == pd.Timestamp("2024-03-06 14:30")
    assert pd.Timestamp("2024-03-11 13:30") in stored_index
    _check_stored(tmp_path, "MSFT", "1h", hourly,
                  pd.DatetimeIndex(hourly.index.tz_convert("UTC").tz_localize(None)).as_unit("ns"))
    assert BarStore(tmp_path).read("MSFT").loc["2024-03-29", "splits"] == 4.0


@pytest.mark.parametrize("daily", [True, False], ids=["1d", "1h"])
def test_download_frames_multiindex_price_ticker(tmp_path: Path, daily: bool) -> None:
    make, interval = (_daily, "1d") if daily else (_hourly, "1h")
    raw = {"AAPL": make(3), "MSFT": make(4)}
    data = _download(raw, daily)
    assert list(data.columns.names) == ["Price", "Ticker"]
    batches = split_download(data, interval)
    assert sorted(batches) == ["AAPL", "MSFT"]
    result = BarStore(tmp_path).write(batches, interval, source="yahoo")
    assert result.added == {"AAPL": len(raw["AAPL"]), "MSFT": len(raw["MSFT"])}
    for ticker, frame in raw.items():
        want = frame.index.tz_localize(None) if daily else \
            frame.index.tz_convert("UTC").tz_localize(None)
        _check_stored(tmp_path, ticker, interval, frame, pd.DatetimeIndex(want).as_unit("ns"))


def test_yahoo_csv_export_imports_with_adjusted_close(tmp_path: Path) -> None:
    frame = random_ohlcv(80, seed=5)
    (tmp_path / "in").mkdir()
    yahoo_csv(frame, tmp_path / "in" / "ABC.csv", adj=True)
    out = subprocess.run([sys.executable, "-m", "causalcast", "data", "import",
                          str(tmp_path / "in"), "--store", str(tmp_path / "s")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    stored = BarStore(tmp_path / "s").read("ABC")
    np.testing.assert_allclose(stored["close"], frame["close"], rtol=1e-12)
    np.testing.assert_allclose(stored["adj_close"], frame["close"] * 0.5, rtol=1e-12)


def test_adapter_satisfies_the_source_protocol() -> None:
    assert isinstance(YahooSource(), BarSource)
    assert get_source("Yahoo").name == "yahoo"
    with pytest.raises(ValueError, match="unknown 'bloomberg'"):
        get_source("bloomberg")


def test_fetch_without_network_fails_in_one_line_and_leaves_the_store(tmp_path: Path) -> None:
    pytest.importorskip("yfinance")
    store = tmp_path / "s"
    BarStore(store).write({"MSFT": random_ohlcv(30, seed=1)})
    dead = "http://127.0.0.1:9"   # nothing listens: no request can leave this machine
    env = {**os.environ, "HTTPS_PROXY": dead, "HTTP_PROXY": dead, "ALL_PROXY": dead,
           "https_proxy": dead, "http_proxy": dead, "all_proxy": dead, "NO_PROXY": ""}
    out = subprocess.run([sys.executable, "-m", "causalcast", "data", "fetch", "MSFT", "AAPL",
                          "--source", "yahoo", "--start", "2024-01-01", "--store", str(store)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: yahoo: cannot fetch MSFT (1d):")
    assert "Traceback" not in out.stderr
    assert BarStore(store).version() == 0 and list(BarStore(store).read_many()) == ["MSFT"]


def test_the_bar_still_forming_is_not_stored() -> None:
    daily, hourly = _daily(5), _hourly(6)
    day = daily.index[10]                             # 2024-03-15 00:00 New York
    during = day + pd.Timedelta(hours=11)             # 11:00 that day, session running
    assert drop_unfinished(daily, "1d", during).index[-1] == daily.index[9]
    assert drop_unfinished(daily, "1d", day + pd.Timedelta(days=1)).index[-1] == day
    at = pd.Timestamp("2024-03-07 11:00", tz=NY)      # the 10:30 bar ends at 11:30
    kept = drop_unfinished(hourly, "1h", at.tz_convert("UTC"))
    assert kept.index[-1] == pd.Timestamp("2024-03-07 09:30", tz=NY)
    assert drop_unfinished(hourly, "1h", at + pd.Timedelta(minutes=30)).index[-1] == \
        pd.Timestamp("2024-03-07 10:30", tz=NY)
