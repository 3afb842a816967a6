"""SQLite half of the prediction log (`MetadataStore` methods of schema migration 3).

Appends come in batches from the monitoring writer thread: one transaction per batch, so a
batch is in the log whole or not at all. Outcomes are written once per prediction (a
re-score of the same prediction is ignored), so scoring is idempotent.
"""

from __future__ import annotations

import sqlite3
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


class SQLitePredictions:
    """Prediction log methods; mixed into `SQLiteStore` (uses its ``_conn`` and ``_tx``)."""

    _conn: sqlite3.Connection

    def append_predictions(self, predictions: Sequence[NewPrediction] | AnswerRows) -> int:
        """Append a batch in one transaction; every row is checked before any is written
        (`AnswerRows` when they were built)."""
        rows = insert_rows(predictions)
        if not rows:
            return 0
        with self._tx() as db:  # type: ignore[attr-defined]
            db.executemany(f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES "
                           f"({', '.join('?' * len(COLUMNS))})", rows)
        return len(rows)

    def predictions(self, version_id: int | None = None, *, scored: bool | None = None,
                    since: str | None = None) -> list[PredictionRecord]:
        """Logged predictions (oldest first), optionally of one version, scored or not, and
        requested at or after ``since`` (ISO)."""
        sql, args = predictions_query(version_id, scored, since, "?")
        rows = self._conn.execute(sql, args).fetchall()
        return [record_from_row(r) for r in rows]

    def record_outcomes(self, outcomes: Sequence[tuple[int, float, str]]) -> int:
        """Record (prediction_id, realised log return, outcome bar ISO time) per matured
        prediction; one already recorded is left as it is. Returns the rows added."""
        rows = checked_outcomes(outcomes, utc_now())
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
