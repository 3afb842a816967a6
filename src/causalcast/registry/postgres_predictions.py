"""PostgreSQL half of the prediction log (`MetadataStore` methods of schema migration 3).

The same rows and guarantees as `sqlite_predictions`: a batch is appended in one transaction
(whole or not at all), every row checked before any is written, and an outcome is written once
per prediction (``ON CONFLICT DO NOTHING``), so scoring from several replicas or a scheduler
at once stays idempotent. The forecast is ``jsonb``.
"""

from __future__ import annotations

from collections.abc import Sequence

from causalcast.registry.checks import utc_now
from causalcast.registry.prediction_rows import (
    COLUMNS,
    AnswerRows,
    checked_outcomes,
    insert_rows,
    predictions_query,
    record_from_row,
)
from causalcast.registry.records import NewPrediction, PredictionRecord

_FORECAST = COLUMNS.index("forecast_json")
_INSERT = (f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES "
           f"({', '.join('%s::jsonb' if i == _FORECAST else '%s' for i in range(len(COLUMNS)))})")


class PostgresPredictions:
    """Prediction log methods; mixed into `PostgresStore` (uses its ``_tx``)."""

    def append_predictions(self, predictions: Sequence[NewPrediction] | AnswerRows) -> int:
        """Append a batch in one transaction; every row is checked before any is written
        (`AnswerRows` when they were built)."""
        rows = insert_rows(predictions)
        if not rows:
            return 0
        with self._tx() as db, db.cursor() as cur:  # type: ignore[attr-defined]
            cur.executemany(_INSERT, rows)
        return len(rows)

    def predictions(self, version_id: int | None = None, *, scored: bool | None = None,
                    since: str | None = None) -> list[PredictionRecord]:
        """Logged predictions (oldest first), optionally of one version, scored or not, and
        requested at or after ``since`` (ISO)."""
        sql, args = predictions_query(version_id, scored, since, "%s")
        with self._tx() as db:  # type: ignore[attr-defined]
            rows = db.execute(sql, args).fetchall()
        return [record_from_row(r) for r in rows]

    def record_outcomes(self, outcomes: Sequence[tuple[int, float, str]]) -> int:
        """Record (prediction_id, realised log return, outcome bar ISO time) per matured
        prediction; one already recorded is left as it is. Returns the rows added."""
        rows = checked_outcomes(outcomes, utc_now())
        if not rows:
            return 0
        with self._tx() as db:  # type: ignore[attr-defined]
            # One statement, so the count of rows actually inserted comes back exactly.
            return db.execute(
                "INSERT INTO prediction_outcomes SELECT * FROM unnest(%s::bigint[], "
                "%s::float8[], %s::text[], %s::text[]) ON CONFLICT (prediction_id) DO NOTHING",
                [list(column) for column in zip(*rows, strict=True)]).rowcount

    def prune_predictions(self, requested_before: str) -> int:
        """Delete predictions requested before ``requested_before`` (ISO), with their
        outcomes (the foreign key cascades). Returns the predictions deleted."""
        with self._tx() as db:  # type: ignore[attr-defined]
            return db.execute("DELETE FROM predictions WHERE requested_at < %s",
                              (requested_before,)).rowcount
