"""Versions, stages, evaluations and references of the PostgreSQL metadata store (the half of
`PostgresStore` that registers, promotes, rolls back and answers gc's and verify's questions).

A mixin: `postgres_store.PostgresStore` supplies the pool, transactions and the run/job rows
these methods join with. Serialisation: every change to the versions or stages of one name
first takes `_lock_name` (a transaction-scoped advisory lock), then reads what it decides on,
so two promotions, a promotion and a rollback, or two registrations of one name run one after
the other and none is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from causalcast.registry.checks import check_key, check_name, check_stage, utc_now
from causalcast.registry.lineage import canonical_json
from causalcast.registry.postgres_notify import notify_stage_change
from causalcast.registry.records import (
    STAGES,
    EvaluationRecord,
    ModelVersion,
    NewVersion,
    NotFoundError,
    RegistryError,
    StageEvent,
)


def seconds_between(start: str | None, end: str) -> float | None:
    if start is None:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


_INTEGRITY_CHECKS: list[tuple[str, str]] = [
    # Foreign keys and JSON validity are enforced by the server; these are the cross-table rules
    # it cannot express.
    ("SELECT v.version_id, v.name FROM model_versions v LEFT JOIN version_stages s "
     "USING (version_id) WHERE s.version_id IS NULL", "version {0} ({1}): has no stage"),
    ("SELECT s.version_id, s.name FROM version_stages s JOIN model_versions v "
     "USING (version_id) WHERE s.name != v.name",
     "stage of version {0}: recorded under name {1!r}, not the version's name"),
    ("SELECT name, COUNT(*) FROM version_stages WHERE stage = 'production' GROUP BY name "
     "HAVING COUNT(*) > 1", "name {0!r}: {1} production versions"),
    ("SELECT v.version_id, v.job_id FROM model_versions v JOIN jobs j ON j.job_id = v.job_id "
     "WHERE j.version_id IS DISTINCT FROM v.version_id OR j.status != 'done'",
     "version {0}: its job {1} is not marked done with it"),
    ("SELECT j.job_id, j.version_id FROM jobs j WHERE j.status = 'done' AND j.version_id IS "
     "NOT NULL AND NOT EXISTS (SELECT 1 FROM model_versions v WHERE v.version_id = "
     "j.version_id AND v.job_id = j.job_id)", "job {0}: done with version {1}, which is not "
     "its version"),
]


class PostgresVersions:
    """Versions, stages, history, evaluations and references; needs ``_tx``, ``_require_run``
    and ``_job_row`` from the store it is mixed into."""

    _VERSION_SQL = ("SELECT v.*, s.stage FROM model_versions v "
                    "JOIN version_stages s USING (version_id)")

    # ------------------------------------------------------------------ versions
    @staticmethod
    def _version_from_row(row: dict[str, Any]) -> ModelVersion:
        return ModelVersion(
            version_id=row["version_id"], name=row["name"], version=row["version"],
            artifact_sha256=row["artifact_sha256"], artifact_size=row["artifact_size"],
            config=row["config_json"], metrics=row["metrics_json"],
            data_fingerprint=row["data_fingerprint"], feature_config=row["feature_config_json"],
            split_config=row["split_config_json"], code_version=row["code_version_json"],
            lineage=row["lineage_json"], run_id=row["run_id"], job_id=row["job_id"],
            created_at=row["created_at"], stage=row["stage"])

    def _version_by_id(self, db: psycopg.Connection, version_id: int) -> ModelVersion:
        row = db.execute(self._VERSION_SQL + " WHERE version_id = %s", (version_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"version {version_id}: no such version")
        return self._version_from_row(row)

    @staticmethod
    def _lock_name(db: psycopg.Connection, name: str) -> None:
        """Serialise changes to one name's versions and stages until the transaction ends."""
        db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                   ("causalcast/name/" + name,))

    def insert_version(self, new: NewVersion, by: str) -> ModelVersion:
        """Insert the version as a candidate and, if it belongs to a job, mark the job done, in
        one transaction (a job is done exactly when its version exists). A job already done
        with a version (a retried worker) returns that version and adds nothing."""
        check_name(new.name, "version name")
        texts = [canonical_json(new.config, "config"), canonical_json(new.metrics, "metrics"),
                 canonical_json(new.feature_config, "feature_config"),
                 canonical_json(new.split_config, "split_config"),
                 canonical_json(new.code_version, "code_version"),
                 canonical_json(new.lineage, "lineage")]
        key = None if new.job is None else check_key(new.job)
        if key is not None and new.run_id is None:
            raise RegistryError("job: a job key needs its run_id")
        now = utc_now()
        with self._tx() as db:  # type: ignore[attr-defined]
            job = None
            if new.run_id is not None:
                self._require_run(db, new.run_id)  # type: ignore[attr-defined]
            if key is not None:
                # The job's row lock makes a retried worker wait for the first one's commit.
                job = self._job_row(db, new.run_id, key, for_update=True)  # type: ignore
                if job is None:
                    raise NotFoundError(f"job {new.run_id}/{tuple(key)}: no such job "
                                        f"(start it first)")
                if job["status"] == "done" and job["version_id"] is not None:
                    return self._version_by_id(db, job["version_id"])
            self._lock_name(db, new.name)
            row = db.execute(
                "INSERT INTO model_versions (name, version, artifact_sha256, artifact_size, "
                "config_json, metrics_json, data_fingerprint, feature_config_json, "
                "split_config_json, code_version_json, lineage_json, run_id, job_id, "
                "created_at) SELECT %s, COALESCE(MAX(version), 0) + 1, %s, %s, %s::jsonb, "
                "%s::jsonb, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s, %s "
                "FROM model_versions WHERE name = %s RETURNING version_id",
                (new.name, new.artifact_sha256, new.artifact_size, texts[0], texts[1],
                 new.data_fingerprint, texts[2], texts[3], texts[4], texts[5], new.run_id,
                 None if job is None else job["job_id"], now, new.name)).fetchone()
            version_id = row["version_id"]
            db.execute("INSERT INTO version_stages VALUES (%s, %s, 'candidate', %s)",
                       (version_id, new.name, now))
            self._history(db, version_id, new.name, None, "candidate", "register", by, now,
                          "registered")
            if job is not None:
                db.execute("UPDATE jobs SET status = 'done', version_id = %s, finished_at = %s, "
                           "seconds = %s, error = NULL, traceback = NULL WHERE job_id = %s",
                           (version_id, now, seconds_between(job["started_at"], now),
                            job["job_id"]))
            return self._version_by_id(db, version_id)

    def get_version(self, ref: str | int) -> ModelVersion:
        """``ref``: numeric id, ``"name:version"`` or ``"name@stage"`` (latest in that stage)."""
        with self._tx() as db:  # type: ignore[attr-defined]
            if isinstance(ref, int) and not isinstance(ref, bool):
                return self._version_by_id(db, ref)
            if not isinstance(ref, str) or not ref:
                raise RegistryError(f"version reference: expected an id, 'name:version' or "
                                    f"'name@stage', got {ref!r}")
            if ref.isdigit():
                return self._version_by_id(db, int(ref))
            if "@" in ref:
                name, stage = ref.rsplit("@", 1)
                check_stage(stage)
                row = db.execute(self._VERSION_SQL + " WHERE v.name = %s AND s.stage = %s "
                                 "ORDER BY v.version DESC LIMIT 1", (name, stage)).fetchone()
                if row is None:
                    raise NotFoundError(f"version {ref!r}: {name!r} has no {stage} version"
                                        f"{self._known_versions(db, name)}")
                return self._version_from_row(row)
            name, sep, number = ref.rpartition(":")
            if not sep or not number.isdigit():
                raise RegistryError(f"version reference {ref!r}: expected an id, "
                                    f"'name:version' or 'name@stage'")
            row = db.execute(self._VERSION_SQL + " WHERE v.name = %s AND v.version = %s",
                             (name, int(number))).fetchone()
            if row is None:
                raise NotFoundError(f"version {ref!r}: no such version"
                                    f"{self._known_versions(db, name)}")
            return self._version_from_row(row)

    @staticmethod
    def _known_versions(db: psycopg.Connection, name: str) -> str:
        row = db.execute("SELECT MIN(version) AS lo, MAX(version) AS hi FROM model_versions "
                         "WHERE name = %s", (name,)).fetchone()
        return f" (name {name!r} is unknown)" if row["lo"] is None else \
            f" ({name!r} has versions {row['lo']}..{row['hi']})"

    def list_versions(self, name: str | None = None, stage: str | None = None,
                      run_id: str | None = None) -> list[ModelVersion]:
        sql, args = self._VERSION_SQL + " WHERE TRUE", []
        if name is not None:
            sql += " AND v.name = %s"
            args.append(name)
        if stage is not None:
            sql += " AND s.stage = %s"
            args.append(check_stage(stage))
        if run_id is not None:
            sql += " AND v.run_id = %s"
            args.append(run_id)
        with self._tx() as db:  # type: ignore[attr-defined]
            rows = db.execute(sql + " ORDER BY v.name, v.version", args).fetchall()
        return [self._version_from_row(r) for r in rows]

    def production(self, name: str) -> ModelVersion | None:
        with self._tx() as db:  # type: ignore[attr-defined]
            row = db.execute(self._VERSION_SQL + " WHERE v.name = %s AND s.stage = "
                             "'production'", (name,)).fetchone()
        return None if row is None else self._version_from_row(row)

    # ------------------------------------------------------------------ stages
    @staticmethod
    def _history(db: psycopg.Connection, version_id: int, name: str, from_stage: str | None,
                 to_stage: str, action: str, by: str, at: str, reason: str,
                 gates: list[dict[str, Any]] | None = None,
                 replaced: int | None = None) -> None:
        db.execute('INSERT INTO stage_history (version_id, name, from_stage, to_stage, action, '
                   '"by", "at", reason, gates_json, replaced_version_id) '
                   'VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)',
                   (version_id, name, from_stage, to_stage, action, by, at, reason,
                    canonical_json(gates or [], "gates"), replaced))

    @staticmethod
    def _move(db: psycopg.Connection, version_id: int, stage: str, at: str) -> None:
        db.execute("UPDATE version_stages SET stage = %s, updated_at = %s WHERE version_id = %s",
                   (stage, at, version_id))

    def set_stage(self, version_id: int, stage: str, by: str, reason: str,
                  gates: list[dict[str, Any]]) -> ModelVersion:
        """Move a version to ``stage``; promoting to production archives the current production
        version of the name and remembers it (what `rollback` returns to)."""
        check_stage(stage)
        now = utc_now()
        with self._tx() as db:  # type: ignore[attr-defined]
            self._lock_name(db, self._version_by_id(db, version_id).name)
            target = self._version_by_id(db, version_id)  # re-read holding the lock
            if target.stage == stage:
                raise RegistryError(f"version {target.ref}: already {stage}")
            notify_stage_change(db, target.name)  # delivered when this commits
            if stage != "production":
                self._move(db, version_id, stage, now)
                self._history(db, version_id, target.name, target.stage, stage, "stage", by,
                              now, reason, gates)
                return self._version_by_id(db, version_id)
            current = db.execute("SELECT version_id FROM version_stages WHERE name = %s AND "
                                 "stage = 'production'", (target.name,)).fetchone()
            replaced = None if current is None else current["version_id"]
            if replaced is not None:
                self._move(db, replaced, "archived", now)
                self._history(db, replaced, target.name, "production", "archived", "replaced",
                              by, now, f"replaced by {target.ref}: {reason}".rstrip(": "))
            self._move(db, version_id, "production", now)
            self._history(db, version_id, target.name, target.stage, "production", "promote",
                          by, now, reason, gates, replaced)
            return self._version_by_id(db, version_id)

    @staticmethod
    def _replaced_by_promotion(db: psycopg.Connection, version_id: int) -> int | None:
        row = db.execute("SELECT replaced_version_id FROM stage_history WHERE version_id = %s "
                         "AND to_stage = 'production' ORDER BY event_id DESC LIMIT 1",
                         (version_id,)).fetchone()
        return None if row is None else row["replaced_version_id"]

    def rollback(self, name: str, by: str, reason: str) -> ModelVersion:
        """Archive the production version of ``name`` and restore the one it replaced."""
        now = utc_now()
        with self._tx() as db:  # type: ignore[attr-defined]
            self._lock_name(db, name)
            row = db.execute("SELECT version_id FROM version_stages WHERE name = %s AND stage = "
                             "'production'", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"rollback {name!r}: no production version"
                                    f"{self._known_versions(db, name)}")
            current = self._version_by_id(db, row["version_id"])
            previous_id = self._replaced_by_promotion(db, current.version_id)
            if previous_id is None:
                raise RegistryError(f"rollback {name!r}: {current.ref} replaced no earlier "
                                    f"production version; nothing to roll back to")
            previous = self._version_by_id(db, previous_id)
            text = reason or "rollback"
            notify_stage_change(db, name)  # delivered when this commits
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
            sql += " WHERE h.name = %s"
            args = (name,)
        with self._tx() as db:  # type: ignore[attr-defined]
            rows = db.execute(sql + " ORDER BY h.event_id", args).fetchall()
        return [StageEvent(event_id=r["event_id"], version_id=r["version_id"], name=r["name"],
                           version=r["version"], from_stage=r["from_stage"],
                           to_stage=r["to_stage"], action=r["action"], by=r["by"], at=r["at"],
                           reason=r["reason"], gates=r["gates_json"],
                           replaced_version_id=r["replaced_version_id"]) for r in rows]

    # ------------------------------------------------------------------ evaluations
    @staticmethod
    def _evaluation_from_row(row: dict[str, Any]) -> EvaluationRecord:
        return EvaluationRecord(evaluation_id=row["evaluation_id"],
                                version_id=row["version_id"],
                                evaluation=row["evaluation_json"],
                                created_at=row["created_at"], by=row["by"])

    def attach_evaluation(self, version_id: int, evaluation: dict[str, Any],
                          by: str) -> EvaluationRecord:
        """Append an evaluation to an existing version (the version row is not touched)."""
        text = canonical_json(evaluation, "evaluation")
        with self._tx() as db:  # type: ignore[attr-defined]
            self._version_by_id(db, version_id)  # NotFoundError before anything is written
            row = db.execute('INSERT INTO version_evaluations (version_id, evaluation_json, '
                             'created_at, "by") VALUES (%s, %s::jsonb, %s, %s) RETURNING *',
                             (version_id, text, utc_now(), by)).fetchone()
            return self._evaluation_from_row(row)

    def latest_evaluation(self, version_id: int) -> EvaluationRecord | None:
        with self._tx() as db:  # type: ignore[attr-defined]
            row = db.execute("SELECT * FROM version_evaluations WHERE version_id = %s "
                             "ORDER BY evaluation_id DESC LIMIT 1", (version_id,)).fetchone()
        return None if row is None else self._evaluation_from_row(row)

    # ------------------------------------------------------------------ maintenance
    def artifact_references(self) -> list[tuple[int, str, str, int]]:
        """(version_id, "name:version", sha256, size) of every version row, stage or not."""
        with self._tx() as db:  # type: ignore[attr-defined]
            rows = db.execute("SELECT version_id, name, version, artifact_sha256, "
                              "artifact_size FROM model_versions ORDER BY version_id").fetchall()
        return [(r["version_id"], f"{r['name']}:{r['version']}", r["artifact_sha256"],
                 r["artifact_size"]) for r in rows]

    def referenced_digests(self) -> set[str]:
        with self._tx() as db:  # type: ignore[attr-defined]
            return {r["artifact_sha256"] for r in db.execute(
                "SELECT DISTINCT artifact_sha256 FROM model_versions")}

    def check_integrity(self, stages: Sequence[str] = STAGES) -> list[str]:
        """Cross-table problems (the server enforces keys, types and JSON), as sentences, read
        in one snapshot (REPEATABLE READ); empty when sound."""
        problems: list[str] = []
        with self._tx() as db:  # type: ignore[attr-defined]
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for sql, template in _INTEGRITY_CHECKS:
                problems += [template.format(*row.values()) for row in db.execute(sql)]
            problems += [f"version {r['version_id']}: unknown stage {r['stage']!r}"
                         for r in db.execute("SELECT version_id, stage FROM version_stages "
                                             "WHERE stage <> ALL(%s)", (list(stages),))]
        return problems
