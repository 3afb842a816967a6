"""The prediction log's fast path for served answers: rows built by the writer from answers
(`ServedForecast` memoised per forecast object, `AnswerRows`) equal the rows of the reference
path (`NewPrediction` checked by `checked_row`), bad answers are refused alone with the field
named, and a batch of answer rows is appended whole or not at all."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.monitoring.predlog import PredictionLog, RowBuilder, utc_iso
from causalcast.registry import Lineage, NewPrediction, Registry, RegistryError
from causalcast.registry.prediction_rows import AnswerRows, ServedForecast, checked_row


def _forecasts(seed: int, horizons: tuple[int, ...] = (1, 5, 10)) -> list[dict]:
    """Rows shaped like the service's (`ModelHub._response`)."""
    return [{"horizon": h, "mean_log_return": 0.001 * (seed % 7 - 3) * h,
             "median_price": 100.0 + seed, "mean_price": None,
             "scale_log_return": 0.01 * (1 + seed % 3) * math.sqrt(h), "p_up": 0.5,
             "lower_80": -0.02 * h, "upper_80": 0.02 * h, "lower_95": -0.04 * h,
             "upper_95": 0.04 * h} for h in horizons]


def _answer(forecasts: list[dict], symbol: str = "SYN000", cached: bool = True,
            status: str = "ok", close: float = 101.5) -> dict:
    return {"symbol": symbol, "as_of": "2020-01-02T00:00:00", "last_close": close,
            "forecasts": forecasts, "cached": cached, "monitor_status": status}


def _reference(item: tuple) -> list[tuple]:
    """The same answer through the reference path: NewPrediction rows, `checked_row`."""
    response, version_id, df, source, at = item
    at = utc_iso(at)
    return [checked_row(NewPrediction(
        version_id, response["symbol"], response["as_of"], row["horizon"],
        response["last_close"], row["mean_log_return"], row["scale_log_return"], df, row, at,
        response["cached"], source, response["monitor_status"]), 0)
        for row in response["forecasts"]]


answers = st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.sampled_from(["ok", "watch"]),
                             st.sampled_from([None, 4.0]), st.integers(0, 10**6)),
                   min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(answers)
def test_answer_rows_equal_the_reference_rows_with_repeated_forecast_objects(spec) -> None:
    pool = [_forecasts(i) for i in range(5)]        # the same objects again: cache hits
    builder = RowBuilder()
    builder.MEMO = 2                                # forces the memo to be cleared
    items = [(_answer(pool[k], cached=cached, status=status), 7, df, "service",
              1.7e9 + us / 1e6)
             for k, cached, status, df, us in spec]
    rows, refused = builder.batch(items)
    assert refused == 0 and len(builder._memo) <= 2
    assert rows.rows == [r for item in items for r in _reference(item)]


@pytest.mark.parametrize(("change", "field"), [
    (lambda f: f[1].update(mean_log_return=float("nan")), r"forecasts\[1\]\.mean"),
    (lambda f: f[0].update(scale_log_return=0.0), r"forecasts\[0\]\.scale"),
    (lambda f: f[2].update(horizon=0), r"forecasts\[2\]\.horizon"),
    (lambda f: f[0].update(p_up=float("inf")), r"forecasts\[0\]\.forecast\.p_up"),
])
def test_a_bad_served_forecast_is_refused_naming_the_field(change, field) -> None:
    forecasts = _forecasts(1)
    change(forecasts)
    with pytest.raises(RegistryError, match=field):
        ServedForecast(forecasts, "answer 'SYN000'")


def test_a_bad_answer_is_refused_alone_and_the_rest_of_its_batch_logged(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path)
    vid = registry.register_version("m-global", b"m", {}, {},
                                    Lineage("f" * 64, {}, {}, model="m")).version_id
    good, bad = _forecasts(1), _forecasts(2)
    bad[0]["upper_95"] = float("nan")
    log = PredictionLog(tmp_path, flush_ms=60_000, max_rows=10_000)   # close() writes
    for i in range(50):
        log.record_answer(_answer(good, cached=i > 0), vid, None)
        time.sleep(0.0002)   # stamps are microseconds: two answers 1 µs apart could tie
    log.record_answer(_answer(bad), vid, None)
    log.record_answer(_answer(good, close=-1.0), vid, None)           # last_close <= 0
    log.close()
    assert log.refused == 2 and log.written == 50 * 3
    logged = registry.meta.predictions()
    assert len(logged) == 50 * 3
    assert sum(p.cached for p in logged) == 49 * 3
    assert len({p.requested_at for p in logged}) == 50           # each answer its own time
    assert [p.forecast for p in logged[:3]] == good
    registry.close()


def test_a_batch_of_answer_rows_is_appended_whole_or_not_at_all(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path)
    vid = registry.register_version("m-global", b"m", {}, {},
                                    Lineage("f" * 64, {}, {}, model="m")).version_id
    rows = AnswerRows()
    served = ServedForecast(_forecasts(3), "answer")
    rows.add(served, vid, "A", "2020-01-02", 10.0, None, "2026-01-01T00:00:00+00:00", False,
             "service", "ok")
    rows.add(served, vid + 1, "A", "2020-01-02", 10.0, None, "2026-01-01T00:00:00+00:00",
             False, "service", "ok")                              # no such version
    with pytest.raises(RegistryError):
        registry.meta.append_predictions(rows)
    assert registry.meta.predictions() == []
    with pytest.raises(RegistryError, match="ServedForecast"):
        rows.add(_forecasts(3), vid, "A", "2020-01-02", 10.0, None, "t", False, "s", "")
    registry.close()
