"""What a prediction-log row is, whatever the database: the checks every appended row passes
and the record read back. The SQLite and PostgreSQL halves of the log differ only in SQL.
"""

from __future__ import annotations

import math
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


def checked_row(p: NewPrediction, i: int) -> tuple[Any, ...]:
    where = f"predictions[{i}]"
    if not isinstance(p, NewPrediction):
        raise RegistryError(f"{where}: expected a NewPrediction, got {type(p).__name__}")
    if isinstance(p.horizon, bool) or not isinstance(p.horizon, int) or p.horizon < 1:
        raise RegistryError(f"{where}.horizon: expected an integer >= 1, got {p.horizon!r}")
    for name in ("last_close", "mean", "scale"):
        value = getattr(p, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RegistryError(f"{where}.{name}: expected a finite number, got {value!r}")
    if p.last_close <= 0 or p.scale <= 0:
        raise RegistryError(f"{where}: last_close and scale must be > 0, got "
                            f"{p.last_close!r} and {p.scale!r}")
    if not p.symbol or not p.as_of or not p.requested_at:
        raise RegistryError(f"{where}: symbol, as_of and requested_at must be non-empty")
    return (p.version_id, p.symbol, p.as_of, p.horizon, float(p.last_close), float(p.mean),
            float(p.scale), None if p.df is None else float(p.df),
            forecast_json(p.forecast, where), p.requested_at, int(p.cached),
            p.source, p.monitor_status)




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
