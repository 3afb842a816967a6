"""What a prediction-log row is, whatever the database: the checks every appended row passes
and the record read back. The SQLite and PostgreSQL halves of the log differ only in SQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from causalcast.registry.records import NewPrediction, PredictionRecord, RegistryError

COLUMNS = ("version_id", "symbol", "as_of", "horizon", "last_close", "mean", "scale", "df",
            "forecast_json", "requested_at", "cached", "source", "monitor_status")


def forecast_json(forecast: dict[str, Any], where: str) -> str:
    """Sorted-key JSON of the served row (orjson: the log's writer formats thousands of rows
    a second); a non-finite number is refused like `canonical_json` refuses it."""
    import orjson

    if not isinstance(forecast, dict):
        raise RegistryError(f"{where}.forecast: expected a dict, got {type(forecast).__name__}")
    for key, value in forecast.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise RegistryError(f"{where}.forecast.{key}: not a finite number ({value!r})")
    try:
        return orjson.dumps(forecast, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:
        raise RegistryError(f"{where}.forecast: not JSON ({exc})") from None


def checked_horizon(horizon: Any, mean: Any, scale: Any, forecast: dict[str, Any],
                    where: str) -> tuple[int, float, float, str]:
    """One horizon's part of a row — (horizon, mean, scale, forecast JSON) — checked."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise RegistryError(f"{where}.horizon: expected an integer >= 1, got {horizon!r}")
    for name, value in (("mean", mean), ("scale", scale)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RegistryError(f"{where}.{name}: expected a finite number, got {value!r}")
    if scale <= 0:
        raise RegistryError(f"{where}.scale: must be > 0, got {scale!r}")
    return horizon, float(mean), float(scale), forecast_json(forecast, where)


def checked_request(symbol: Any, as_of: Any, last_close: Any, requested_at: Any,
                    where: str) -> float:
    """What a row shares with the other horizons of its request, checked; the last close."""
    if not isinstance(last_close, (int, float)) or not math.isfinite(last_close) \
            or last_close <= 0:
        raise RegistryError(f"{where}.last_close: expected a finite number > 0, got "
                            f"{last_close!r}")
    if not symbol or not as_of or not requested_at:
        raise RegistryError(f"{where}: symbol, as_of and requested_at must be non-empty")
    return float(last_close)


def checked_row(p: NewPrediction, i: int) -> tuple[Any, ...]:
    where = f"predictions[{i}]"
    if not isinstance(p, NewPrediction):
        raise RegistryError(f"{where}: expected a NewPrediction, got {type(p).__name__}")
    horizon, mean, scale, forecast = checked_horizon(p.horizon, p.mean, p.scale, p.forecast,
                                                     where)
    last_close = checked_request(p.symbol, p.as_of, p.last_close, p.requested_at, where)
    return (p.version_id, p.symbol, p.as_of, horizon, last_close, mean, scale,
            None if p.df is None else float(p.df), forecast, p.requested_at, int(p.cached),
            p.source, p.monitor_status)


class ServedForecast:
    """The per-horizon parts of one served answer (``response["forecasts"]``), checked and
    encoded once. Why: a cached answer is the same forecast object again and again — the log's
    writer keeps this per forecast and then builds each logged row as one tuple, instead of
    re-checking and re-encoding the same JSON thousands of times a second."""

    __slots__ = ("parts",)

    def __init__(self, rows: Any, where: str) -> None:
        if not isinstance(rows, list) or not rows:
            raise RegistryError(f"{where}.forecasts: expected a non-empty list of rows")
        self.parts = tuple(
            checked_horizon(row.get("horizon") if isinstance(row, dict) else None,
                            row.get("mean_log_return") if isinstance(row, dict) else None,
                            row.get("scale_log_return") if isinstance(row, dict) else None,
                            row, f"{where}.forecasts[{j}]")
            for j, row in enumerate(rows))


class AnswerRows:
    """A batch of log rows built from served answers; every row passed the same checks as
    `checked_row` (its horizons through `ServedForecast`, the rest in `add`), so the stores
    append it as it is (``MetadataStore.append_predictions``)."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add_prediction(self, p: NewPrediction) -> None:
        """A row given as a `NewPrediction` (replay, tests), checked by `checked_row`."""
        self.rows.append(checked_row(p, len(self.rows)))

    def add(self, served: ServedForecast, version_id: int, symbol: str, as_of: str,
            last_close: float, df: float | None, requested_at: str, cached: bool,
            source: str, monitor_status: str) -> None:
        """One answer: a row per horizon."""
        if not isinstance(served, ServedForecast):
            raise RegistryError(f"answer {symbol!r}: expected a ServedForecast, got "
                                f"{type(served).__name__}")
        close = checked_request(symbol, as_of, last_close, requested_at,
                                f"answer {symbol!r} at {requested_at!r}")
        df = None if df is None else float(df)
        cached = int(bool(cached))
        self.rows.extend([(version_id, symbol, as_of, h, close, mean, scale, df, forecast,
                           requested_at, cached, source, monitor_status)
                          for h, mean, scale, forecast in served.parts])


def insert_rows(predictions: Sequence[NewPrediction] | AnswerRows) -> list[tuple[Any, ...]]:
    """The checked rows of a batch, in `COLUMNS` order (every row checked before any is
    written): `NewPrediction` items are checked here, `AnswerRows` were checked when built."""
    if isinstance(predictions, AnswerRows):
        return predictions.rows
    return [checked_row(p, i) for i, p in enumerate(predictions)]


def record_from_row(r: Any) -> PredictionRecord:
    """A joined predictions/outcomes row (a mapping) as its record; the forecast column is
    JSON text (SQLite) or already a dict (PostgreSQL jsonb)."""
    import json

    forecast = r["forecast_json"]
    return PredictionRecord(
        version_id=r["version_id"], symbol=r["symbol"], as_of=r["as_of"],
        horizon=r["horizon"], last_close=r["last_close"], mean=r["mean"], scale=r["scale"],
        df=r["df"], forecast=json.loads(forecast) if isinstance(forecast, str) else forecast,
        requested_at=r["requested_at"], cached=bool(r["cached"]), source=r["source"],
        monitor_status=r["monitor_status"], prediction_id=r["prediction_id"],
        realised=r["realised"], outcome_as_of=r["outcome_as_of"])


def checked_outcomes(outcomes: Any, recorded_at: str) -> list[tuple[int, float, str, str]]:
    """(prediction_id, realised, outcome_as_of, recorded_at) rows; a non-finite realised
    return is refused, naming its place."""
    rows = []
    for i, (pid, realised, at) in enumerate(outcomes):
        if not isinstance(realised, (int, float)) or not math.isfinite(realised):
            raise RegistryError(f"outcomes[{i}].realised: expected a finite number, got "
                                f"{realised!r}")
        rows.append((int(pid), float(realised), str(at), recorded_at))
    return rows


def predictions_query(version_id: int | None, scored: bool | None, since: str | None,
                      placeholder: str) -> tuple[str, list[Any]]:
    """The one SELECT behind `MetadataStore.predictions` (oldest first, with the outcome where
    recorded), in the driver's ``placeholder`` style (``?`` SQLite, ``%s`` psycopg)."""
    sql = ("SELECT p.*, o.realised, o.outcome_as_of FROM predictions p LEFT JOIN "
           "prediction_outcomes o USING (prediction_id) WHERE 1 = 1")
    args: list[Any] = []
    if version_id is not None:
        sql += f" AND p.version_id = {placeholder}"
        args.append(version_id)
    if scored is not None:
        sql += " AND o.prediction_id IS NOT NULL" if scored else " AND o.prediction_id IS NULL"
    if since is not None:
        sql += f" AND p.requested_at >= {placeholder}"
        args.append(since)
    return sql + " ORDER BY p.prediction_id", args
