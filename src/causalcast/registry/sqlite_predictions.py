"""SQLite half of the prediction log (`MetadataStore` methods of schema migration 3).

Appends come in batches from the monitoring writer thread: one transaction per batch, so a
batch is in the log whole or not at all. Outcomes are written once per prediction (a
re-score of the same prediction is ignored), so scoring is idempotent.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any

from causalcast.registry.checks import utc_now
from causalcast.registry.records import NewPrediction, PredictionRecord, RegistryError

_COLUMNS = ("version_id", "symbol", "as_of", "horizon", "last_close", "mean", "scale", "df",
            "forecast_json", "requested_at", "cached", "source", "monitor_status")


def _forecast_json(forecast: dict[str, Any], where: str) -> str:
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


def _check(p: NewPrediction, i: int) -> tuple[Any, ...]:
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
            _forecast_json(p.forecast, where), p.requested_at, int(p.cached),
            p.source, p.monitor_status)


class SQLitePredictions:
    """Prediction log methods; mixed into `SQLiteStore` (uses its ``_conn`` and ``_tx``)."""

    _conn: sqlite3.Connection

    def append_predictions(self, predictions: Sequence[NewPrediction]) -> int:
        """Append a batch in one transaction; every row is checked before any is written."""
        rows = [_check(p, i) for i, p in enumerate(predictions)]
        if not rows:
            return 0
        with self._tx() as db:  # type: ignore[attr-defined]
            db.executemany(f"INSERT INTO predictions ({', '.join(_COLUMNS)}) VALUES "
                           f"({', '.join('?' * len(_COLUMNS))})", rows)
        return len(rows)

    def predictions(self, version_id: int | None = None, *, scored: bool | None = None,
                    since: str | None = None) -> list[PredictionRecord]:
        """Logged predictions (oldest first), optionally of one version, scored or not, and
        requested at or after ``since`` (ISO)."""
        sql = ("SELECT p.*, o.realised, o.outcome_as_of FROM predictions p LEFT JOIN "
               "prediction_outcomes o USING (prediction_id) WHERE 1 = 1")
        args: list[Any] = []
        if version_id is not None:
            sql += " AND p.version_id = ?"
            args.append(version_id)
        if scored is not None:
            sql += " AND o.prediction_id IS NOT NULL" if scored else \
                " AND o.prediction_id IS NULL"
        if since is not None:
            sql += " AND p.requested_at >= ?"
            args.append(since)
        rows = self._conn.execute(sql + " ORDER BY p.prediction_id", args).fetchall()
        import json

        return [PredictionRecord(
            version_id=r["version_id"], symbol=r["symbol"], as_of=r["as_of"],
            horizon=r["horizon"], last_close=r["last_close"], mean=r["mean"], scale=r["scale"],
            df=r["df"], forecast=json.loads(r["forecast_json"]),
            requested_at=r["requested_at"], cached=bool(r["cached"]), source=r["source"],
            monitor_status=r["monitor_status"], prediction_id=r["prediction_id"],
            realised=r["realised"], outcome_as_of=r["outcome_as_of"]) for r in rows]

    def record_outcomes(self, outcomes: Sequence[tuple[int, float, str]]) -> int:
        """Record (prediction_id, realised log return, outcome bar ISO time) per matured
        prediction; one already recorded is left as it is. Returns the rows added."""
        rows = []
        for i, (pid, realised, at) in enumerate(outcomes):
            if not isinstance(realised, (int, float)) or not math.isfinite(realised):
                raise RegistryError(f"outcomes[{i}].realised: expected a finite number, got "
                                    f"{realised!r}")
            rows.append((int(pid), float(realised), str(at), utc_now()))
        if not rows:
            return 0
        with self._tx() as db:  # type: ignore[attr-defined]
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO prediction_outcomes VALUES (?, ?, ?, ?)",
                           rows)
            return db.total_changes - before

    def prune_predictions(self, requested_before: str) -> int:
        """Delete predictions requested before ``requested_before`` (ISO), with their
        outcomes (retention). Returns the predictions deleted."""
        with self._tx() as db:  # type: ignore[attr-defined]
            db.execute("DELETE FROM prediction_outcomes WHERE prediction_id IN (SELECT "
                       "prediction_id FROM predictions WHERE requested_at < ?)",
                       (requested_before,))
            return db.execute("DELETE FROM predictions WHERE requested_at < ?",
                              (requested_before,)).rowcount
