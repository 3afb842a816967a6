"""One test per bad-input case: each error names the file, the field and the place."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalcast.data.quality import DataValidationError, validate_ohlcv
from causalcast.data.sources import load_ohlcv
from tests.support.frames import random_ohlcv, yahoo_csv


def write(tmp_path, frame, name="BAD"):
    return yahoo_csv(frame, tmp_path / f"{name}.csv")


def expect_error(path, *fragments, **kwargs):
    with pytest.raises(DataValidationError) as info:
        load_ohlcv(path, **kwargs)
    text = str(info.value)
    assert str(path) in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return info.value


def test_missing_column_named(tmp_path):
    frame = random_ohlcv(100).drop(columns="volume")
    path = tmp_path / "BAD.csv"
    frame.rename(columns=str.capitalize).rename_axis("Date").reset_index().to_csv(path,
                                                                                 index=False)
    expect_error(path, "volume at header", "missing column")


def test_missing_date_column_named(tmp_path):
    path = tmp_path / "BAD.csv"
    random_ohlcv(50).rename(columns=str.capitalize).to_csv(path, index=False)
    expect_error(path, "date at header")


def test_unparsable_date_names_row_and_value(tmp_path):
    path = write(tmp_path, random_ohlcv(100))
    lines = path.read_text().splitlines()
    lines[11] = "not-a-date" + lines[11][lines[11].index(","):]
    path.write_text("\n".join(lines) + "\n")
    expect_error(path, "date at row 11 (line 12)", "unparsable date 'not-a-date'")


def test_non_numeric_value_names_row(tmp_path):
    path = write(tmp_path, random_ohlcv(100))
    lines = path.read_text().splitlines()
    parts = lines[5].split(",")
    parts[4] = "abc"
    lines[5] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")
    expect_error(path, "close at row 5 (line 6)", "not a number: 'abc'")


def test_unsorted_timestamps(tmp_path):
    frame = random_ohlcv(100)
    frame = frame.iloc[[*range(0, 40), 41, 40, *range(42, 100)]]
    path = write(tmp_path, frame)
    expect_error(path, "date at", "not sorted")
    frames, reports = load_ohlcv(path, repairs={"sort"}, with_reports=True)
    assert frames["BAD"].index.is_monotonic_increasing and reports["BAD"].repairs == {"sort": 1}


def test_duplicate_timestamps(tmp_path):
    frame = random_ohlcv(100)
    frame = pd.concat([frame.iloc[:50], frame.iloc[49:50], frame.iloc[50:]])
    path = write(tmp_path, frame)
    when = frame.index[49].strftime("%Y-%m-%d")
    expect_error(path, f"date at {when}", "duplicate timestamp")
    frames, reports = load_ohlcv(path, repairs={"drop_duplicates"}, with_reports=True)
    assert len(frames["BAD"]) == 100 and reports["BAD"].repairs == {"drop_duplicates": 1}


@pytest.mark.parametrize(("value", "word"), [(np.nan, "NaN"), (np.inf, "infinite")])
def test_nan_and_infinite_values(tmp_path, value, word):
    frame = random_ohlcv(100)
    frame.iloc[30, frame.columns.get_loc("low")] = value
    path = write(tmp_path, frame)
    expect_error(path, f"low at {frame.index[30]:%Y-%m-%d}", f"{word} value")


def test_non_positive_price(tmp_path):
    frame = random_ohlcv(100)
    frame.iloc[20, :4] = [0.0, 1.0, 0.0, 0.5]
    path = write(tmp_path, frame)
    expect_error(path, f"open at {frame.index[20]:%Y-%m-%d}", "price must be > 0")


def test_high_below_open_close(tmp_path):
    frame = random_ohlcv(100)
    frame.iloc[10, frame.columns.get_loc("high")] = frame["low"].iloc[10]
    path = write(tmp_path, frame)
    expect_error(path, f"high at {frame.index[10]:%Y-%m-%d}", "below max(open, close)")


def test_low_above_open_close(tmp_path):
    frame = random_ohlcv(100)
    frame.iloc[12, frame.columns.get_loc("low")] = frame["high"].iloc[12]
    path = write(tmp_path, frame)
    err = expect_error(path, f"low at {frame.index[12]:%Y-%m-%d}", "above min(open, close)")
    assert err.problems[0].field == "low"
    frames, reports = load_ohlcv(path, repairs={"fix_high_low"}, with_reports=True)
    fixed = frames["BAD"].iloc[12]
    assert fixed["low"] <= min(fixed["open"], fixed["close"])
    assert reports["BAD"].repairs == {"fix_high_low": 1}


def test_negative_volume(tmp_path):
    frame = random_ohlcv(100)
    frame.iloc[7, frame.columns.get_loc("volume")] = -5
    path = write(tmp_path, frame)
    expect_error(path, f"volume at {frame.index[7]:%Y-%m-%d}", "negative volume")


def test_too_few_bars(tmp_path):
    path = write(tmp_path, random_ohlcv(100))
    expect_error(path, "bars at 100 bars", "fewer bars than needed: 500", min_bars=500)


def test_large_gap_is_reported_not_an_error(tmp_path):
    frame = random_ohlcv(200)
    frame.index = frame.index.where(np.arange(200) < 100, frame.index + pd.Timedelta(days=60))
    frames, reports = load_ohlcv(write(tmp_path, frame), with_reports=True)
    assert len(frames["BAD"]) == 200
    assert len(reports["BAD"].warnings) == 1 and "gap of" in reports["BAD"].warnings[0]


def test_weekend_gaps_are_normal(tmp_path):
    _, reports = load_ohlcv(write(tmp_path, random_ohlcv(300)), with_reports=True)
    assert reports["BAD"].warnings == []


def test_nothing_dropped_without_opt_in_and_repairs_are_counted():
    frame = random_ohlcv(100)
    frame.iloc[5, 0] = np.nan
    frame.iloc[6, 4] = -1
    with pytest.raises(DataValidationError):
        validate_ohlcv(frame, "mem")
    clean, report = validate_ohlcv(frame, "mem", repairs={"drop_nonfinite", "clip_volume"})
    assert len(clean) == 99 and report.repairs == {"drop_nonfinite": 1, "clip_volume": 1}
    assert len(frame) == 100  # the caller's frame is untouched


def test_unknown_repair_rejected():
    with pytest.raises(ValueError, match="repairs"):
        validate_ohlcv(random_ohlcv(10), repairs={"magic"})


def test_error_lists_every_problem_with_a_cap():
    frame = random_ohlcv(100)
    frame.iloc[:30, 4] = -1
    with pytest.raises(DataValidationError) as info:
        validate_ohlcv(frame, "mem")
    assert len(info.value.problems) == 30 and "and 20 more" in str(info.value)
