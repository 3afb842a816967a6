"""Versions and stages of the SQLite metadata store (the half of `SQLiteStore` that registers,
promotes, rolls back and answers gc's and verify's reference questions).

A mixin: `sqlite_store.SQLiteStore` supplies the connection, transactions and the run/job rows
these methods join with.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from causalcast.registry.checks import check_key, check_name, check_stage, utc_now
from causalcast.registry.lineage import canonical_json
from causalcast.registry.records import (
    STAGES,
    EvaluationRecord,
    ModelVersion,
    NewVersion,
    NotFoundError,
    RegistryError,
    StageEvent,
)
from causalcast.registry.sqlite_health import integrity_problems


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _seconds_between(start: str | None, end: str) -> float | None:
    if start is None:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


class SQLiteVersions:
    """Versions, stages, history and references; needs ``_conn``, ``_tx``, ``_require_run``
    and ``_job_row`` from the store it is mixed into."""

    _conn: sqlite3.Connection

    # ------------------------------------------------------------------ versions
    _VERSION_SQL = ("SELECT v.*, s.stage FROM model_versions v "
                    "JOIN version_stages s USING (version_id)")

    def _version_from_row(self, row: sqlite3.Row) -> ModelVersion:
        return ModelVersion(
            version_id=row["version_id"], name=row["name"], version=row["version"],
            artifact_sha256=row["artifact_sha256"], artifact_size=row["artifact_size"],
            config=_loads(row["config_json"]), metrics=_loads(row["metrics_json"]),
            data_fingerprint=row["data_fingerprint"],
            feature_config=_loads(row["feature_config_json"]),
            split_config=_loads(row["split_config_json"]),
            code_version=_loads(row["code_version_json"]), lineage=_loads(row["lineage_json"]),
            run_id=row["run_id"], job_id=row["job_id"], created_at=row["created_at"],
            stage=row["stage"])

    def _version_by_id(self, db: sqlite3.Connection, version_id: int) -> ModelVersion:
        row = db.execute(self._VERSION_SQL + " WHERE version_id = ?", (version_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"version {version_id}: no such version")
        return self._version_from_row(row)

    def insert_version(self, new: NewVersion, by: str) -> ModelVersion:
        """Insert the version as a candidate and, if it belongs to a job, mark the job done, in
        one transaction: a job is done exactly when its version exists. If the job is already
        done with a version (a retried worker), that version is returned and nothing is added."""
        check_name(new.name, "version name")
        texts = {
            "config_json": canonical_json(new.config, "config"),
            "metrics_json": canonical_json(new.metrics, "metrics"),
            "feature_config_json": canonical_json(new.feature_config, "feature_config"),
            "split_config_json": canonical_json(new.split_config, "split_config"),
            "code_version_json": canonical_json(new.code_version, "code_version"),
            "lineage_json": canonical_json(new.lineage, "lineage"),
        }
        key = None if new.job is None else check_key(new.job)
        if key is not None and new.run_id is None:
            raise RegistryError("job: a job key needs its run_id")
        now = utc_now()
        with self._tx() as db:
            job = None
            if new.run_id is not None:
                self._require_run(db, new.run_id)
            if key is not None:
                job = self._job_row(db, new.run_id, key)
                if job is None:
                    raise NotFoundError(f"job {new.run_id}/{tuple(key)}: no such job "
                                        f"(start it first)")
                if job["status"] == "done" and job["version_id"] is not None:
                    return self._version_by_id(db, job["version_id"])
            version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions "
                                 "WHERE name = ?", (new.name,)).fetchone()[0]
            cur = db.execute(
                "INSERT INTO model_versions (name, version, artifact_sha256, artifact_size, "
                "config_json, metrics_json, data_fingerprint, feature_config_json, "
                "split_config_json, code_version_json, lineage_json, run_id, job_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (new.name, version, new.artifact_sha256, new.artifact_size,
                 texts["config_json"], texts["metrics_json"], new.data_fingerprint,
                 texts["feature_config_json"], texts["split_config_json"],
                 texts["code_version_json"], texts["lineage_json"], new.run_id,
                 None if job is None else job["job_id"], now))
            version_id = cur.lastrowid
            db.execute("INSERT INTO version_stages VALUES (?, ?, 'candidate', ?)",
                       (version_id, new.name, now))
            self._history(db, version_id, new.name, None, "candidate", "register", by, now,
                          "registered")
            if job is not None:
                db.execute("UPDATE jobs SET status = 'done', version_id = ?, finished_at = ?, "
                           "seconds = ?, error = NULL, traceback = NULL WHERE job_id = ?",
                           (version_id, now, _seconds_between(job["started_at"], now),
                            job["job_id"]))
            return self._version_by_id(db, version_id)

    def get_version(self, ref: str | int) -> ModelVersion:
        """``ref``: numeric id, ``"name:version"`` or ``"name@stage"`` (latest in that stage)."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            return self._version_by_id(self._conn, ref)
        if not isinstance(ref, str) or not ref:
            raise RegistryError(f"version reference: expected an id, 'name:version' or "
                                f"'name@stage', got {ref!r}")
        if ref.isdigit():
            return self._version_by_id(self._conn, int(ref))
        if "@" in ref:
            name, stage = ref.rsplit("@", 1)
            check_stage(stage)
            row = self._conn.execute(self._VERSION_SQL + " WHERE v.name = ? AND s.stage = ? "
                                     "ORDER BY v.version DESC LIMIT 1", (name, stage)).fetchone()
            if row is None:
                raise NotFoundError(f"version {ref!r}: {name!r} has no {stage} version"
                                    f"{self._known_versions(name)}")
            return self._version_from_row(row)
        name, sep, number = ref.rpartition(":")
        if not sep or not number.isdigit():
            raise RegistryError(f"version reference {ref!r}: expected an id, 'name:version' or "
                                f"'name@stage'")
        row = self._conn.execute(self._VERSION_SQL + " WHERE v.name = ? AND v.version = ?",
                                 (name, int(number))).fetchone()
        if row is None:
            raise NotFoundError(f"version {ref!r}: no such version"
                                f"{self._known_versions(name)}")
        return self._version_from_row(row)

    def _known_versions(self, name: str) -> str:
        lo, hi = self._conn.execute("SELECT MIN(version), MAX(version) FROM model_versions "
                                    "WHERE name = ?", (name,)).fetchone()
        return f" (name {name!r} is unknown)" if lo is None else \
            f" ({name!r} has versions {lo}..{hi})"

    def list_versions(self, name: str | None = None, stage: str | None = None,
                      run_id: str | None = None) -> list[ModelVersion]:
        sql, args = self._VERSION_SQL + " WHERE 1 = 1", []
        if name is not None:
            sql += " AND v.name = ?"
            args.append(name)
        if stage is not None:
            sql += " AND s.stage = ?"
            args.append(check_stage(stage))
        if run_id is not None:
            sql += " AND v.run_id = ?"
            args.append(run_id)
        rows = self._conn.execute(sql + " ORDER BY v.name, v.version", args).fetchall()
        return [self._version_from_row(r) for r in rows]

    def production(self, name: str) -> ModelVersion | None:
        row = self._conn.execute(self._VERSION_SQL + " WHERE v.name = ? AND s.stage = "
                                 "'production'", (name,)).fetchone()
        return None if row is None else self._version_from_row(row)

    # ------------------------------------------------------------------ stages
    def _history(self, db: sqlite3.Connection, version_id: int, name: str, from_stage: str | None,
                 to_stage: str, action: str, by: str, at: str, reason: str,
                 gates: list[dict[str, Any]] | None = None,
                 replaced: int | None = None) -> None:
        db.execute("INSERT INTO stage_history (version_id, name, from_stage, to_stage, action, "
                   "by, at, reason, gates_json, replaced_version_id) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (version_id, name, from_stage, to_stage, action, by, at, reason,
                    canonical_json(gates or [], "gates"), replaced))

    def _move(self, db: sqlite3.Connection, version_id: int, stage: str, at: str) -> None:
        db.execute("UPDATE version_stages SET stage = ?, updated_at = ? WHERE version_id = ?",
                   (stage, at, version_id))

    def set_stage(self, version_id: int, stage: str, by: str, reason: str,
                  gates: list[dict[str, Any]]) -> ModelVersion:
        """Move a version to ``stage``. Promoting to production archives the current production
        version of the same name and remembers it, which is what `rollback` returns to."""
        check_stage(stage)
        now = utc_now()
        with self._tx() as db:
            target = self._version_by_id(db, version_id)
            if target.stage == stage:
                raise RegistryError(f"version {target.ref}: already {stage}")
            if stage != "production":
                self._move(db, version_id, stage, now)
                self._history(db, version_id, target.name, target.stage, stage, "stage", by,
                              now, reason, gates)
                return self._version_by_id(db, version_id)
            current = db.execute("SELECT version_id FROM version_stages WHERE name = ? AND "
                                 "stage = 'production'", (target.name,)).fetchone()
            replaced = None if current is None else current[0]
            if replaced is not None:
                self._move(db, replaced, "archived", now)
                self._history(db, replaced, target.name, "production", "archived", "replaced",
                              by, now, f"replaced by {target.ref}: {reason}".rstrip(": "))
            self._move(db, version_id, "production", now)
            self._history(db, version_id, target.name, target.stage, "production", "promote",
                          by, now, reason, gates, replaced)
            return self._version_by_id(db, version_id)

    def _replaced_by_promotion(self, db: sqlite3.Connection, version_id: int) -> int | None:
        row = db.execute("SELECT replaced_version_id FROM stage_history WHERE version_id = ? "
                         "AND to_stage = 'production' ORDER BY event_id DESC LIMIT 1",
                         (version_id,)).fetchone()
        return None if row is None else row[0]

    def rollback(self, name: str, by: str, reason: str) -> ModelVersion:
        """Archive the production version of ``name`` and restore the one it replaced. Each
        production promotion remembers its predecessor, so repeated rollbacks walk back."""
        now = utc_now()
        with self._tx() as db:
            row = db.execute("SELECT version_id FROM version_stages WHERE name = ? AND stage = "
                             "'production'", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"rollback {name!r}: no production version"
                                    f"{self._known_versions(name)}")
            current = self._version_by_id(db, row[0])
            previous_id = self._replaced_by_promotion(db, current.version_id)
            if previous_id is None:
                raise RegistryError(f"rollback {name!r}: {current.ref} replaced no earlier "
                                    f"production version; nothing to roll back to")
            previous = self._version_by_id(db, previous_id)
            text = reason or "rollback"
            self._move(db, current.version_id, "archived", now)
            self._history(db, current.version_id, name, "production", "archived", "rollback",
                          by, now, text)
            self._move(db, previous.version_id, "production", now)
            self._history(db, previous.version_id, name, previous.stage, "production",
                          "rollback", by, now, f"{text} (from {current.ref})", None,
                          self._replaced_by_promotion(db, previous.version_id))
            return self._version_by_id(db, previous.version_id)

    def stage_history(self, name: str | None = None) -> list[StageEvent]:
        sql = ("SELECT h.*, v.version FROM stage_history h JOIN model_versions v "
               "USING (version_id)")
        args: tuple[Any, ...] = ()
        if name is not None:
            sql += " WHERE h.name = ?"
            args = (name,)
        rows = self._conn.execute(sql + " ORDER BY h.event_id", args).fetchall()
        return [StageEvent(event_id=r["event_id"], version_id=r["version_id"], name=r["name"],
                           version=r["version"], from_stage=r["from_stage"],
                           to_stage=r["to_stage"], action=r["action"], by=r["by"], at=r["at"],
                           reason=r["reason"], gates=json.loads(r["gates_json"]),
                           replaced_version_id=r["replaced_version_id"]) for r in rows]

    # ------------------------------------------------------------------ evaluations
    def _evaluation_from_row(self, row: sqlite3.Row) -> EvaluationRecord:
        return EvaluationRecord(evaluation_id=row["evaluation_id"],
                                version_id=row["version_id"],
                                evaluation=_loads(row["evaluation_json"]),
                                created_at=row["created_at"], by=row["by"])

    def attach_evaluation(self, version_id: int, evaluation: dict[str, Any],
                          by: str) -> EvaluationRecord:
        """Append an evaluation to an existing version (the version row is not touched)."""
        text = canonical_json(evaluation, "evaluation")
        now = utc_now()
        with self._tx() as db:
            self._version_by_id(db, version_id)   # NotFoundError before anything is written
            cur = db.execute("INSERT INTO version_evaluations (version_id, evaluation_json, "
                             "created_at, by) VALUES (?, ?, ?, ?)",
                             (version_id, text, now, by))
            row = db.execute("SELECT * FROM version_evaluations WHERE evaluation_id = ?",
                             (cur.lastrowid,)).fetchone()
            return self._evaluation_from_row(row)

    def latest_evaluation(self, version_id: int) -> EvaluationRecord | None:
        row = self._conn.execute("SELECT * FROM version_evaluations WHERE version_id = ? "
                                 "ORDER BY evaluation_id DESC LIMIT 1",
                                 (version_id,)).fetchone()
        return None if row is None else self._evaluation_from_row(row)

    # ------------------------------------------------------------------ maintenance
    def artifact_references(self) -> list[tuple[int, str, str, int]]:
        """(version_id, "name:version", sha256, size) of every version row, stage or not."""
        return [(r[0], f"{r[1]}:{r[2]}", r[3], r[4]) for r in self._conn.execute(
            "SELECT version_id, name, version, artifact_sha256, artifact_size "
            "FROM model_versions ORDER BY version_id")]

    def referenced_digests(self) -> set[str]:
        return {r[0] for r in self._conn.execute(
            "SELECT DISTINCT artifact_sha256 FROM model_versions")}

    def check_integrity(self, stages: Sequence[str] = STAGES) -> list[str]:
        """Every problem found in the database (full ``integrity_check``, foreign keys,
        cross-table consistency, JSON columns), as sentences; empty when sound."""
        db = self._conn
        db.execute("BEGIN")  # one snapshot for all checks
        try:
            return integrity_problems(db, stages)
        finally:
            db.execute("COMMIT")
