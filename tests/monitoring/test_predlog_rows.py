"""The prediction log's fast path for served answers: rows built by the writer from answers
(`ServedForecast` memoised per forecast object, `AnswerRows`) equal the rows of the reference
path (`NewPrediction` per horizon, joined by `AnswerRows.add_prediction`), one row per
answer; bad answers are refused alone with the field named, and a batch of answer rows is
appended whole or not at all."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.monitoring.predlog import PredictionLog, RowBuilder, utc_iso
from causalcast.registry import Lineage, NewPrediction, Registry, RegistryError
from causalcast.registry.prediction_rows import AnswerRows, ServedForecast


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


def _expanded(rows: AnswerRows) -> list[tuple]:
    """Each answer of a batch with its forecast row in place of the forecast's reference."""
    forecasts = rows.forecast_rows()
    return [(forecasts[a[0]], *a[1:]) for a in rows.answer_rows(range(len(forecasts)))]


def _reference(item: tuple) -> list[tuple]:
    """The same answer through the reference path: one `NewPrediction` per horizon, checked
    and joined into one forecast and one answer by `AnswerRows.add_prediction`."""
    response, version_id, df, source, at = item
    at = utc_iso(at)
    rows = AnswerRows()
    for row in response["forecasts"]:
        rows.add_prediction(NewPrediction(
            version_id, response["symbol"], response["as_of"], row["horizon"],
            response["last_close"], row["mean_log_return"], row["scale_log_return"], df, row,
            at, response["cached"], source, response["monitor_status"]))
    return _expanded(rows)


answers = st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.sampled_from(["ok", "watch"]),
                             st.sampled_from([None, 4.0]), st.integers(0, 10**6)),
                   min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(answers, st.sampled_from([2, 1024]))
def test_answer_rows_equal_the_reference_rows_with_repeated_forecast_objects(spec,
                                                                            memo) -> None:
    pool = [_forecasts(i) for i in range(5)]        # the same objects again: cache hits
    builder = RowBuilder()
    builder.MEMO = memo                             # 2 forces the memo to be cleared
    items = [(_answer(pool[k], cached=cached, status=status), 7, df, "service",
              1.7e9 + us / 1e6)
             for k, cached, status, df, us in spec]
    rows, refused = builder.batch([builder.prepare(*item) for item in items])
    assert refused == 0 and len(builder._memo) <= memo
    assert _expanded(rows) == [r for item in items for r in _reference(item)]
    if memo > len(pool):     # each distinct (forecast object, df) written once per batch
        assert len(rows.forecast_rows()) == len({(k, df) for k, _, _, df, _ in spec})


def test_a_forecast_is_written_once_and_a_stale_one_is_written_again(tmp_path: Path) -> None:
    """Cache hits of a forecast already in the log cost an answer row only; when a batch
    fails because its forecast's row is gone, the writer's retry writes the forecast again
    and loses no answer."""
    import sqlite3

    registry = Registry.open(tmp_path)
    vid = registry.register_version("m-global", b"m", {}, {},
                                    Lineage("f" * 64, {}, {}, model="m")).version_id
    builder, forecasts = RowBuilder(), _forecasts(1)
    items = [builder.prepare(_answer(forecasts), vid, None, "service", 1.7e9 + i)
             for i in range(3)]
    first, _ = builder.batch(items)
    assert len(first.forecast_rows()) == 1 and registry.meta.append_predictions(first) == 3
    again, _ = builder.batch(items)
    assert again.forecast_rows() == [] and registry.meta.append_predictions(again) == 3
    logged = registry.meta.predictions()
    assert len(logged) == 6 * 3 and len({p.forecast_id for p in logged}) == 1
    assert [p.forecast for p in logged[:3]] == forecasts

    log = PredictionLog(tmp_path, flush_ms=20)
    log.record_answer(_answer(forecasts), vid, None)
    assert log.flush(10) and log.failures == 0
    db = sqlite3.connect(registry.meta.path)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("DELETE FROM served_forecasts")       # cascades to its answers
    db.commit()
    db.close()
    for _ in range(3):                               # the log remembers the deleted forecast
        log.record_answer(_answer(forecasts), vid, None)
    assert log.flush(10)
    log.close()
    assert log.failures == 1 and log.dropped == 0 and log.written == 1 + 3
    assert len(registry.meta.predictions()) == 3 * 3
    registry.close()


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
    assert log.refused == 2 and log.written == 50              # one row per answer
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


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(-2e9, 4e9, allow_nan=False),
                 st.integers(-2 * 10**15, 4 * 10**15).map(lambda us: us / 1e6),
                 st.integers(0, 10**6).map(lambda k: 1.7e9 + k / 1e6 + 5e-7)))
def test_utc_iso_equals_datetime_isoformat(at: float) -> None:
    """The writer's time stamps (whole second formatted once) are datetime's, to the
    microsecond, rounding included."""
    from datetime import UTC, datetime

    assert utc_iso(at) == datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
    assert utc_iso(at + 1.0) == datetime.fromtimestamp(at + 1.0, UTC).isoformat(
        timespec="microseconds")
