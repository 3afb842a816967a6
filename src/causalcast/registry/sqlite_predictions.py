"""SQLite half of the prediction log (`MetadataStore` methods; schema migration 4: forecasts
and the answers that served them, `registry.prediction_rows`).

Appends come in batches from the monitoring writer thread: one transaction per batch, so a
batch is in the log whole or not at all. Outcomes are written once per (forecast, horizon) (a
re-score is ignored), so scoring is idempotent.
"""

from __future__ import annotations

import itertools
import sqlite3
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

_INSERT_FORECAST = (f"INSERT INTO served_forecasts ({', '.join(FORECAST_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(FORECAST_COLUMNS))})")
_ROW = f"({', '.join('?' * len(ANSWER_COLUMNS))})"
_INSERT_ANSWER = f"INSERT INTO served_answers ({', '.join(ANSWER_COLUMNS)}) VALUES {_ROW}"
# Answers per multi-row INSERT. Why: Python's sqlite3 gives up the GIL around each step and
# takes it back after, so `executemany` costs two GIL hand-overs per row, each a chance for the
# service's event loop to wait on the writer thread. One statement of CHUNK rows binds its
# parameters in C and inserts them all in one step without the GIL. 512 x 5 parameters stays
# under SQLite's 32,766-parameter limit; the statement is prepared once and cached.
CHUNK = 512
_INSERT_ANSWERS = f"{_INSERT_ANSWER}{f', {_ROW}' * (CHUNK - 1)}"


class SQLitePredictions:
    """Prediction log methods; mixed into `SQLiteStore` (uses its ``_conn`` and ``_tx``)."""

    _conn: sqlite3.Connection

    def append_predictions(self, predictions: Sequence[NewPrediction] | AnswerRows) -> int:
        """Append a batch in one transaction; every row is checked before any is written
        (`AnswerRows` when they were built). Returns the answers added."""
        batch = answer_batch(predictions)
        if not len(batch):
            return 0
        with self._tx() as db:  # type: ignore[attr-defined]
            ids = [db.execute(_INSERT_FORECAST, row).lastrowid for row in batch.forecast_rows()]
            rows = batch.answer_rows(ids)
            whole = len(rows) - len(rows) % CHUNK
            for start in range(0, whole, CHUNK):
                db.execute(_INSERT_ANSWERS,
                           tuple(itertools.chain.from_iterable(rows[start:start + CHUNK])))
            db.executemany(_INSERT_ANSWER, rows[whole:])
        batch.committed(ids)
        return len(rows)

    def predictions(self, version_id: int | None = None, *, scored: bool | None = None,
                    since: str | None = None) -> list[PredictionRecord]:
        """Logged predictions (oldest first, one per answer and horizon), optionally of one
        version, scored or not, and requested at or after ``since`` (ISO)."""
        sql, args = predictions_query(version_id, scored, since, "?")
        return records_from_rows(self._conn.execute(sql, args), scored)

    def record_outcomes(self, outcomes: Sequence[tuple[int, int, float, str]]) -> int:
        """Record (forecast_id, horizon, realised log return, outcome bar ISO time) per
        matured forecast; one already recorded is left as it is. Returns the rows added."""
        rows = checked_outcomes(outcomes, utc_now())
        if not rows:
            return 0
        with self._tx() as db:  # type: ignore[attr-defined]
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO forecast_outcomes VALUES (?, ?, ?, ?, ?)",
                           rows)
            return db.total_changes - before

    def prune_predictions(self, requested_before: str) -> int:
        """Delete answers requested before ``requested_before`` (ISO), then the forecasts no
        answer is left for (their outcomes cascade: every connection enforces foreign keys).
        Returns the answers deleted."""
        with self._tx() as db:  # type: ignore[attr-defined]
            n = db.execute("DELETE FROM served_answers WHERE requested_at < ?",
                           (requested_before,)).rowcount
            db.execute("DELETE FROM served_forecasts WHERE NOT EXISTS (SELECT 1 FROM "
                       "served_answers a WHERE a.forecast_id = served_forecasts.forecast_id)")
            return n
