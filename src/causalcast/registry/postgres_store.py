"""PostgreSQL implementation of `MetadataStore`, for registries shared across hosts (a Ray
cluster recording results, several serving replicas, many people promoting).

The guarantees are the SQLite store's, obtained with PostgreSQL's own tools:

* **One transaction per change.** Every changing method runs in one transaction on one pooled
  connection (psycopg 3 + psycopg_pool): a reader sees the state before or after it, never a mix;
  a writer killed mid-transaction (SIGKILL, lost host) has its transaction rolled back by the
  server when the connection drops.
* **Serialised where order matters.** SQLite serialises every writer with ``BEGIN IMMEDIATE``;
  here only what must be serial is: the next version number and stage changes of one name take
  a transaction-scoped advisory lock on that name (`_lock_name`), a job's row is locked
  (``FOR UPDATE``) while its version is registered, and the schema is created or migrated under
  one database-wide advisory lock. The unique index on production stages and ``UNIQUE (name,
  version)`` are the server's second line of defence. Unrelated names register in parallel.
* **Opening proves the database.** A database without our migration table but with other tables
  is refused (not a causalcast registry), one written by a newer causalcast too; an empty one is
  created only when ``create`` is true.

Waiting for a lock longer than ``busy_timeout_s`` becomes `BusyError` (``lock_timeout``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from causalcast.registry.checks import check_key, utc_now
from causalcast.registry.lineage import canonical_json
from causalcast.registry.names import check_path_component
from causalcast.registry.postgres_predictions import PostgresPredictions
from causalcast.registry.postgres_schema import (
    LATEST,
    MIGRATION_LOCK,
    MIGRATION_TABLE,
    MIGRATIONS,
    TABLES_BY_VERSION,
)
from causalcast.registry.postgres_versions import PostgresVersions, seconds_between
from causalcast.registry.records import (
    JOB_STATUSES,
    RUN_STATUSES,
    BusyError,
    DamagedError,
    JobKey,
    JobRecord,
    NotFoundError,
    RegistryError,
    RunRecord,
)
from causalcast.registry.urls import redact


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PostgresStore(PostgresVersions, PostgresPredictions):
    """`MetadataStore` in one PostgreSQL database. One instance per process (a pool does not
    survive ``fork``); a worker opens its own, as with SQLite."""

    def __init__(self, url: str, *, create: bool = True, busy_timeout_s: float = 60.0,
                 before_create: Callable[[], None] | None = None, pool_size: int = 4) -> None:
        """Connect and prove (create, migrate) the schema. ``before_create`` runs inside the
        creating transaction when the database is empty, so a refusal there creates nothing
        (`Registry.open` refuses an empty database next to stored objects)."""
        self.url = url
        self.where = redact(url)
        self.busy_timeout_s = busy_timeout_s
        options = {"row_factory": dict_row,
                   "options": f"-c lock_timeout={int(busy_timeout_s * 1000)}"}
        try:
            probe = psycopg.connect(url, connect_timeout=10, **options)
        except psycopg.Error as exc:
            raise RegistryError(f"registry {self.where}: cannot connect "
                                f"({_first_line(exc)})") from None
        try:
            self._created_at = self._prove(probe, create, before_create)
        except psycopg.Error as exc:
            raise RegistryError(f"registry {self.where}: {_first_line(exc)}") from None
        finally:
            probe.close()
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs=options,
                                    timeout=busy_timeout_s, open=True,
                                    name="causalcast-registry")

    # ------------------------------------------------------------------ schema
    def _prove(self, conn: psycopg.Connection, create: bool,
               before_create: Callable[[], None] | None) -> str:
        """Create or migrate under the migration lock; refuse foreign or newer databases."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            tables = {r["tablename"] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
            if MIGRATION_TABLE not in tables:
                if tables:
                    raise DamagedError(
                        f"database {self.where}: not a causalcast registry (no "
                        f"{MIGRATION_TABLE} table; tables: {sorted(tables)[:5]})")
                if not create:
                    raise NotFoundError(f"registry {self.where}: the database holds no "
                                        f"causalcast registry (nothing registered yet?)")
                if before_create is not None:
                    before_create()
                conn.execute(f"CREATE TABLE {MIGRATION_TABLE} (version INTEGER PRIMARY KEY, "
                             f"name TEXT NOT NULL, applied_at TEXT NOT NULL)")
            current = self._version_in(conn)
            if current > LATEST:
                raise RegistryError(f"registry {self.where}: schema version {current} is newer "
                                    f"than this causalcast understands ({LATEST}); upgrade "
                                    f"causalcast")
            for version, name, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {MIGRATION_TABLE} VALUES (%s, %s, %s)",
                             (version, name, utc_now()))
            tables = {r["tablename"] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
            version = self._version_in(conn)
            missing = sorted(TABLES_BY_VERSION[version] - tables)
            if missing:
                raise DamagedError(f"registry {self.where}: damaged, schema version {version} "
                                   f"but tables {missing} are missing")
            return conn.execute(f"SELECT applied_at FROM {MIGRATION_TABLE} ORDER BY version "
                                f"LIMIT 1").fetchone()["applied_at"]

    @staticmethod
    def _version_in(conn: psycopg.Connection) -> int:
        row = conn.execute(f"SELECT COALESCE(MAX(version), 0) AS v FROM {MIGRATION_TABLE}"
                           ).fetchone()
        return int(row["v"])

    def schema_version(self) -> int:
        with self._tx() as db:
            return self._version_in(db)

    def created_at(self) -> str:
        """When this database became a registry (its first migration); see `Registry.gc`."""
        return self._created_at

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        """One transaction on one pooled connection: all of it commits, or none of it."""
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def session_lock(self, key: int) -> Iterator[None]:
        """Hold a session-level advisory lock on its own connection (the cross-store lock of
        `Registry`: register vs gc). A holder that dies loses it with its connection."""
        with self._pool.connection() as conn:
            conn.autocommit = True
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
                try:
                    yield
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            finally:
                conn.autocommit = False

    # ------------------------------------------------------------------ runs
    @staticmethod
    def _run_from_row(row: dict[str, Any]) -> RunRecord:
        return RunRecord(run_id=row["run_id"], name=row["name"], status=row["status"],
                         config=row["config_json"], audit=row["audit_json"],
                         code_version=row["code_version_json"], created_at=row["created_at"],
                         finished_at=row["finished_at"])

    def create_run(self, run_id: str, name: str, config: dict[str, Any],
                   code_version: dict[str, Any]) -> RunRecord:
        """Create the run, or return it (running again) if it exists (a rerun resumes it)."""
        check_path_component(run_id, "run_id")
        config_text = canonical_json(config, "run config")
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO runs (run_id, name, status, config_json, code_version_json, "
                "created_at) VALUES (%s, %s, 'running', %s::jsonb, %s::jsonb, %s) "
                "ON CONFLICT (run_id) DO UPDATE SET status = 'running', finished_at = NULL "
                "RETURNING *", (run_id, name, config_text,
                                canonical_json(code_version, "code version"), utc_now())
            ).fetchone()
            return self._run_from_row(row)

    def get_run(self, run_id: str) -> RunRecord:
        with self._tx() as db:
            row = db.execute("SELECT * FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"run {run_id!r}: no such run")
        return self._run_from_row(row)

    def list_runs(self) -> list[RunRecord]:
        with self._tx() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created_at, run_id").fetchall()
        return [self._run_from_row(r) for r in rows]

    def finish_run(self, run_id: str, status: str) -> None:
        if status not in RUN_STATUSES:
            raise RegistryError(f"run status: unknown {status!r}; choose from "
                                f"{list(RUN_STATUSES)}")
        with self._tx() as db:
            cur = db.execute("UPDATE runs SET status = %s, finished_at = %s WHERE run_id = %s",
                             (status, utc_now(), run_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"run {run_id!r}: no such run")

    def record_audit(self, run_id: str, audit: dict[str, Any]) -> None:
        text = canonical_json(audit, "audit")
        with self._tx() as db:
            cur = db.execute("UPDATE runs SET audit_json = %s::jsonb WHERE run_id = %s",
                             (text, run_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"run {run_id!r}: no such run")

    # ------------------------------------------------------------------ jobs
    @staticmethod
    def _job_from_row(row: dict[str, Any]) -> JobRecord:
        return JobRecord(**row)

    def _require_run(self, db: psycopg.Connection, run_id: str) -> None:
        if db.execute("SELECT 1 FROM runs WHERE run_id = %s", (run_id,)).fetchone() is None:
            raise NotFoundError(f"run {run_id!r}: no such run (start it first)")

    def _job_row(self, db: psycopg.Connection, run_id: str, key: JobKey, *,
                 for_update: bool = False) -> dict[str, Any] | None:
        return db.execute("SELECT * FROM jobs WHERE run_id = %s AND symbol = %s AND model = %s "
                          "AND fold = %s" + (" FOR UPDATE" if for_update else ""),
                          (run_id, *key)).fetchone()

    def add_jobs(self, run_id: str, keys: Iterable[JobKey]) -> int:
        """Plan jobs as pending; existing ones (done, failed, ...) are left as they are."""
        checked = [check_key(k) for k in keys]
        with self._tx() as db:
            self._require_run(db, run_id)
            cur = db.execute(
                "INSERT INTO jobs (run_id, symbol, model, fold, status, created_at) "
                "SELECT %s, s, m, f, 'pending', %s FROM unnest(%s::text[], %s::text[], "
                "%s::int[]) AS k(s, m, f) ON CONFLICT (run_id, symbol, model, fold) DO NOTHING",
                (run_id, utc_now(), [k.symbol for k in checked], [k.model for k in checked],
                 [k.fold for k in checked]))
            return cur.rowcount

    def start_job(self, run_id: str, key: JobKey, worker: str | None) -> JobRecord:
        """Mark a job running (attempts + 1); a job already done is returned untouched."""
        key = check_key(key)
        now = utc_now()
        with self._tx() as db:
            self._require_run(db, run_id)
            db.execute(
                "INSERT INTO jobs (run_id, symbol, model, fold, status, attempts, worker, "
                "created_at, started_at) VALUES (%s, %s, %s, %s, 'running', 1, %s, %s, %s) "
                "ON CONFLICT (run_id, symbol, model, fold) DO UPDATE SET status = 'running', "
                "attempts = jobs.attempts + 1, worker = excluded.worker, started_at = "
                "excluded.started_at, finished_at = NULL, seconds = NULL, error = NULL, "
                "traceback = NULL WHERE jobs.status != 'done'",
                (run_id, *key, worker, now, now))
            return self._job_from_row(self._job_row(db, run_id, key))

    def _end_job(self, run_id: str, key: JobKey, status: str, error: str | None,
                 traceback: str | None) -> JobRecord:
        key = check_key(key)
        now = utc_now()
        with self._tx() as db:
            row = self._job_row(db, run_id, key, for_update=True)
            if row is None:
                raise NotFoundError(f"job {run_id}/{key}: no such job (start it first)")
            if row["status"] == "done":
                return self._job_from_row(row)
            row = db.execute("UPDATE jobs SET status = %s, error = %s, traceback = %s, "
                             "finished_at = %s, seconds = %s WHERE job_id = %s RETURNING *",
                             (status, error, traceback, now,
                              seconds_between(row["started_at"], now), row["job_id"])
                             ).fetchone()
            return self._job_from_row(row)

    def finish_job(self, run_id: str, key: JobKey) -> JobRecord:
        return self._end_job(run_id, key, "done", None, None)

    def fail_job(self, run_id: str, key: JobKey, error: str, traceback: str) -> JobRecord:
        return self._end_job(run_id, key, "failed", error, traceback)

    def get_job(self, run_id: str, key: JobKey) -> JobRecord:
        with self._tx() as db:
            row = self._job_row(db, run_id, check_key(key))
        if row is None:
            raise NotFoundError(f"job {run_id}/{tuple(key)}: no such job")
        return self._job_from_row(row)

    def list_jobs(self, run_id: str, status: str | None = None) -> list[JobRecord]:
        if status is not None and status not in JOB_STATUSES:
            raise RegistryError(f"job status: unknown {status!r}; choose from "
                                f"{list(JOB_STATUSES)}")
        sql = "SELECT * FROM jobs WHERE run_id = %s"
        args: tuple[Any, ...] = (run_id,)
        if status is not None:
            sql += " AND status = %s"
            args += (status,)
        with self._tx() as db:
            rows = db.execute(sql + " ORDER BY symbol, model, fold", args).fetchall()
        return [self._job_from_row(r) for r in rows]

    def job_counts(self, run_id: str) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        with self._tx() as db:
            for row in db.execute("SELECT status, COUNT(*) AS n FROM jobs WHERE run_id = %s "
                                  "GROUP BY status", (run_id,)):
                counts[row["status"]] = int(row["n"])
        return counts

    def log_epoch(self, run_id: str, key: JobKey, epoch: int, metrics: dict[str, Any]) -> None:
        """Record (or, after a resume, overwrite) one epoch's metrics. NaN/Inf become null."""
        key = check_key(key)
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise RegistryError(f"epoch: expected an integer >= 0, got {epoch!r}")
        text = canonical_json(metrics, "epoch metrics", allow_nonfinite=True)
        with self._tx() as db:
            row = self._job_row(db, run_id, key)
            if row is None:
                raise NotFoundError(f"job {run_id}/{tuple(key)}: no such job (start it first)")
            db.execute("INSERT INTO epoch_metrics VALUES (%s, %s, %s::jsonb, %s) ON CONFLICT "
                       "(job_id, epoch) DO UPDATE SET metrics_json = excluded.metrics_json, "
                       "recorded_at = excluded.recorded_at",
                       (row["job_id"], epoch, text, utc_now()))

    def epoch_metrics(self, run_id: str, key: JobKey) -> list[dict[str, Any]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT e.epoch, e.metrics_json FROM epoch_metrics e JOIN jobs j USING (job_id) "
                "WHERE j.run_id = %s AND j.symbol = %s AND j.model = %s AND j.fold = %s "
                "ORDER BY e.epoch", (run_id, *check_key(key))).fetchall()
        return [{"epoch": r["epoch"], **r["metrics_json"]} for r in rows]


def _translated(method: Callable[..., Any]) -> Callable[..., Any]:
    """Server and pool errors as the registry's errors, naming the database (no password)."""

    @functools.wraps(method)
    def guarded(store: PostgresStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(store, *args, **kwargs)
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled,
                PoolTimeout) as exc:
            raise BusyError(f"registry {store.where}: waited more than "
                            f"{store.busy_timeout_s:g} s for a lock or a connection "
                            f"({_first_line(exc)})") from None
        except psycopg.errors.IntegrityError as exc:
            raise RegistryError(f"registry {store.where}: refused ({_first_line(exc)})"
                                ) from None
        except psycopg.OperationalError as exc:
            raise RegistryError(f"registry {store.where}: database unreachable "
                                f"({_first_line(exc)})") from None

    return guarded


for _cls in (PostgresVersions, PostgresStore):
    for _name, _method in list(vars(_cls).items()):
        if callable(_method) and not _name.startswith("_") and _name not in (
                "close", "session_lock") and not isinstance(_method, staticmethod):
            setattr(PostgresStore, _name, _translated(_method))
