"""Loading CSV/Parquet folders and the real samples into the canonical frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalcast.data.quality import REQUIRED_COLUMNS
from causalcast.data.sources import load_ohlcv, load_sample, write_ohlcv
from tests.support.frames import random_ohlcv, yahoo_csv


def test_csv_folder_loads_one_frame_per_symbol(csv_folder):
    frames = load_ohlcv(csv_folder)
    assert sorted(frames) == ["AAA", "BBB"]
    for frame in frames.values():
        assert list(frame.columns) == list(REQUIRED_COLUMNS)
        assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.is_monotonic_increasing
        assert frame.dtypes.eq(float).all()


def test_column_names_are_case_insensitive(tmp_path):
    frame = random_ohlcv(300)
    out = frame.rename(columns=str.upper).rename_axis("DATE").reset_index()
    out.to_csv(tmp_path / "x.csv", index=False)
    loaded = load_ohlcv(tmp_path / "x.csv")["X"]
    np.testing.assert_allclose(loaded["close"], frame["close"], rtol=1e-12)


def test_parquet_and_csv_give_the_same_bars(tmp_path):
    frame = random_ohlcv(400, seed=3)
    write_ohlcv({"P": frame}, tmp_path / "pq", fmt="parquet")
    write_ohlcv({"P": frame}, tmp_path / "csv", fmt="csv")
    a = load_ohlcv(tmp_path / "pq")["P"]
    b = load_ohlcv(tmp_path / "csv")["P"]
    pd.testing.assert_index_equal(a.index, b.index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9)


def test_adj_close_rescales_prices_and_is_reported(tmp_path):
    frame = random_ohlcv(300)
    yahoo_csv(frame, tmp_path / "ADJ.csv", adj=True)
    frames, reports = load_ohlcv(tmp_path, with_reports=True)
    np.testing.assert_allclose(frames["ADJ"]["close"], frame["close"] * 0.5)
    assert reports["ADJ"].adjusted
    raw = load_ohlcv(tmp_path, adjust=False)["ADJ"]
    np.testing.assert_allclose(raw["close"], frame["close"])


def test_hourly_bars_load_and_overnight_gaps_are_not_flagged(tmp_path):
    index = pd.date_range("2024-01-02 09:00", periods=7 * 40, freq="h")
    index = index[(index.hour >= 9) & (index.hour < 16) & (index.day_of_week < 5)]
    frame = random_ohlcv(len(index)).set_axis(index.rename("date"))
    yahoo_csv(frame, tmp_path / "H.csv")
    frames, reports = load_ohlcv(tmp_path, with_reports=True)
    assert len(frames["H"]) == len(index)
    assert reports["H"].bar_spacing == "0 days 01:00:00"
    assert reports["H"].warnings == []


def test_symbols_filter_and_missing_symbol(csv_folder):
    assert list(load_ohlcv(csv_folder, symbols=["aaa"])) == ["AAA"]
    with pytest.raises(FileNotFoundError, match="ZZZ"):
        load_ohlcv(csv_folder, symbols=["ZZZ"])


def test_msft_sample_is_real_daily_data():
    msft = load_sample("msft")
    assert len(msft) > 7900
    assert msft.index[0] == pd.Timestamp("1986-03-13")
    frames = load_ohlcv("sample:msft")
    assert list(frames) == ["MSFT"]


def test_goog_sample_when_installed():
    pytest.importorskip("backtesting")
    goog = load_ohlcv("sample:goog")["GOOG"]
    assert len(goog) > 2000 and goog.index[0].year == 2004


def test_unknown_sample_and_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="sample"):
        load_sample("nope")
    with pytest.raises(FileNotFoundError):
        load_ohlcv(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"no \.csv"):
        load_ohlcv(tmp_path)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="unsupported"):
        load_ohlcv(tmp_path / "x.txt")
