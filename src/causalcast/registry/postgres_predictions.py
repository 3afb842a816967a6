"""PostgreSQL half of the prediction log (`MetadataStore` methods; schema migration 4:
forecasts and the answers that served them, `registry.prediction_rows`).

The same rows and guarantees as `sqlite_predictions`: a batch is appended in one transaction
(whole or not at all), every row checked before any is written, and an outcome is written once
per (forecast, horizon) (``ON CONFLICT DO NOTHING``), so scoring from several replicas or a
scheduler at once stays idempotent. The horizons are ``jsonb``.
"""

from __future__ import annotations

from collections.abc import Sequence

from causalcast.registry.checks import utc_now
from causalcast.registry.prediction_rows import (
    ANSWER_COLUMNS,
    FORECAST_COLUMNS,
    AnswerRows,
    answer_batch,
    checked_outcomes,
    predictions_query,
    records_from_rows,
)
from causalcast.registry.records import NewPrediction, PredictionRecord

_JSON = FORECAST_COLUMNS.index("horizons_json")
_INSERT_FORECAST = (
    f"INSERT INTO served_forecasts ({', '.join(FORECAST_COLUMNS)}) VALUES "
    f"({', '.join('%s::jsonb' if i == _JSON else '%s' for i in range(len(FORECAST_COLUMNS)))})"
    f" RETURNING forecast_id")
_INSERT_ANSWER = (f"INSERT INTO served_answers ({', '.join(ANSWER_COLUMNS)}) VALUES "
                  f"({', '.join(['%s'] * len(ANSWER_COLUMNS))})")


class PostgresPredictions:
    """Prediction log methods; mixed into `PostgresStore` (uses its ``_tx``)."""

    def append_predictions(self, predictions: Sequence[NewPrediction] | AnswerRows) -> int:
        """Append a batch in one transaction; every row is checked before any is written
        (`AnswerRows` when they were built). Returns the answers added."""
        batch = answer_batch(predictions)
        if not len(batch):
            return 0
        with self._tx() as db, db.cursor() as cur:  # type: ignore[attr-defined]
            ids: list[int] = []
            forecasts = batch.forecast_rows()
            if forecasts:
                cur.executemany(_INSERT_FORECAST, forecasts, returning=True)
                ids = [cur.fetchone()["forecast_id"] for _ in cur.results()]
            rows = batch.answer_rows(ids)
            cur.executemany(_INSERT_ANSWER, rows)
        batch.committed(ids)
        return len(rows)

    def predictions(self, version_id: int | None = None, *, scored: bool | None = None,
                    since: str | None = None) -> list[PredictionRecord]:
        """Logged predictions (oldest first, one per answer and horizon), optionally of one
        version, scored or not, and requested at or after ``since`` (ISO)."""
        sql, args = predictions_query(version_id, scored, since, "%s")
        with self._tx() as db:  # type: ignore[attr-defined]
            rows = db.execute(sql, args).fetchall()
        return records_from_rows(rows, scored)

    def record_outcomes(self, outcomes: Sequence[tuple[int, int, float, str]]) -> int:
        """Record (forecast_id, horizon, realised log return, outcome bar ISO time) per
        matured forecast; one already recorded is left as it is. Returns the rows added."""
        rows = checked_outcomes(outcomes, utc_now())
        if not rows:
            return 0
        with self._tx() as db:  # type: ignore[attr-defined]
            # One statement, so the count of rows actually inserted comes back exactly.
            return db.execute(
                "INSERT INTO forecast_outcomes SELECT * FROM unnest(%s::bigint[], %s::int[], "
                "%s::float8[], %s::text[], %s::text[]) ON CONFLICT (forecast_id, horizon) "
                "DO NOTHING",
                [list(column) for column in zip(*rows, strict=True)]).rowcount

    def prune_predictions(self, requested_before: str) -> int:
        """Delete answers requested before ``requested_before`` (ISO), then the forecasts no
        answer is left for (their outcomes cascade). Returns the answers deleted."""
        with self._tx() as db:  # type: ignore[attr-defined]
            n = db.execute("DELETE FROM served_answers WHERE requested_at < %s",
                           (requested_before,)).rowcount
            db.execute("DELETE FROM served_forecasts f WHERE NOT EXISTS (SELECT 1 FROM "
                       "served_answers a WHERE a.forecast_id = f.forecast_id)")
            return n
