"""SQLite implementation of `MetadataStore` (WAL mode, busy timeout, one transaction per change).

Why these settings:

* **WAL** lets readers (``causalcast registry list``, serving) read a consistent snapshot while
  one writer commits; a writer killed mid-transaction leaves only uncommitted WAL frames, which
  the next opener ignores, so the database always shows the state before or after a change.
* **BEGIN IMMEDIATE** takes the write lock at the start of every changing method, so the reads
  inside it (next version number, current production version) cannot go stale before the write;
  concurrent writers wait (``busy_timeout``) instead of failing.
* **synchronous=FULL**: a commit is on disk when it returns (registrations are rare next to
  training; durability matters more than microseconds).
* **foreign_keys=ON**: a job cannot name a missing run, a stage a missing version.

WAL needs all processes on one host (shared memory); across machines use a server database
behind the same interface.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import quote

from causalcast.registry.checks import check_key, utc_now
from causalcast.registry.lineage import canonical_json
from causalcast.registry.names import check_path_component
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
from causalcast.registry.schema import LATEST, MIGRATIONS
from causalcast.registry.sqlite_health import (
    check_database_header,
    expected_tables,
    is_busy,
    translate_errors,
)
from causalcast.registry.sqlite_predictions import SQLitePredictions
from causalcast.registry.sqlite_versions import SQLiteVersions, _loads, _seconds_between

# Connections this process holds open, per database file. POSIX locks belong to the process:
# closing any descriptor of the file (the raw header check opens one) drops the locks of every
# connection still open on it, and another process then checkpoints and deletes the WAL under
# them ("disk I/O error"; sqlite.org/howtocorrupt.html 2.2). So the header is read only while
# none is open here (a connection already open proved the file), under this lock.
_OPEN: Counter[str] = Counter()
_OPEN_GUARD = threading.Lock()

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}")
class SQLiteStore(SQLiteVersions, SQLitePredictions):
    """`MetadataStore` in one SQLite file. One instance per process (connections do not survive
    ``fork``); open a new one in each worker."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 60.0,
                 setup_lock: Callable[[], AbstractContextManager[Any]] | None = None,
                 create: bool = True) -> None:
        """Open (and, with ``create`` and no file yet, create) the database. Before anything
        reads or writes, the file must prove itself: SQLite header, ``PRAGMA quick_check``,
        and a causalcast schema this version understands; otherwise `DamagedError` (or
        `NotFoundError` when absent and ``create`` is false) names the file and the problem.
        An existing file is never recreated, whatever its state."""
        self.path = Path(path)
        self._key = str(self.path.resolve())
        self._closed = False
        self.busy_timeout_s = busy_timeout_s
        lock = setup_lock or nullcontext
        creating = False
        if not self.path.exists() or self.path.stat().st_size == 0:
            # A 0-byte file may be one another process is creating right now (under the lock):
            # decide only while holding it.
            with lock():
                if not self.path.exists():
                    if not create:
                        raise NotFoundError(f"registry database {self.path}: does not exist")
                    creating = True
                    with _OPEN_GUARD:
                        self._conn = self._connect("rwc")
                        _OPEN[self._key] += 1
                    self._conn.execute("PRAGMA journal_mode = WAL")
                    self._migrate(nullcontext)
                elif self.path.stat().st_size == 0:
                    raise DamagedError(
                        f"registry database {self.path}: empty (0 bytes); refusing to recreate "
                        f"it over existing data: restore a backup (`causalcast registry "
                        f"restore`) or rebuild it (`causalcast registry recover`)")
        if not creating:
            with _OPEN_GUARD:
                if not _OPEN[self._key]:
                    check_database_header(self.path)
                self._conn = self._connect("rw")
                _OPEN[self._key] += 1
            try:
                self._prove(lock, create)
            except BaseException:
                self.close()
                raise

    def _tables(self) -> set[str]:
        return {r[0] for r in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _connect(self, mode: str) -> sqlite3.Connection:
        """``mode=rw`` never creates a file (sqlite3's default would, silently)."""
        uri = f"file:{quote(str(self.path.resolve()))}?mode={mode}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout_s,
                                   isolation_level=None)
        except sqlite3.Error as exc:
            raise DamagedError(f"registry database {self.path}: cannot open ({exc})") from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise DamagedError(f"registry database {self.path}: damaged ({exc})") from None
        return conn

    def _prove(self, lock: Callable[[], AbstractContextManager[Any]], create: bool) -> None:
        """quick_check, WAL mode, schema version and tables of an existing file."""
        try:
            result = [r[0] for r in self._conn.execute("PRAGMA quick_check")]
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise BusyError(f"registry database {self.path}: locked by another process for "
                                f"more than {self.busy_timeout_s:g} s") from None
            raise DamagedError(f"registry database {self.path}: damaged ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise DamagedError(f"registry database {self.path}: damaged ({exc})") from None
        if result != ["ok"]:
            first = " ".join(result[0].split())  # sqlite's report spans lines
            raise DamagedError(f"registry database {self.path}: damaged, quick_check found "
                               f"{len(result)} problems (first: {first}); run `causalcast "
                               f"registry verify` and restore a backup")
        if self._conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            with lock():  # switching modes needs the database to ourselves
                self._conn.execute("PRAGMA journal_mode = WAL")
        tables = self._tables()
        if not tables:  # being created right now (under the lock): look again holding it
            with lock():
                tables = self._tables()
        if not tables:  # a creation killed between the file and its first migration
            if not create:
                raise NotFoundError(f"registry database {self.path}: holds no registry (its "
                                    f"creation was interrupted); nothing to read")
        elif "schema_migrations" not in tables:
            raise DamagedError(f"registry database {self.path}: not a causalcast registry "
                               f"(no schema_migrations table; tables: {sorted(tables)[:5]})")
        self._migrate(lock)
        tables = self._tables()
        missing = sorted(expected_tables(self.schema_version()) - tables)
        if missing:
            raise DamagedError(f"registry database {self.path}: damaged, schema version "
                               f"{self.schema_version()} but tables {missing} are missing")

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        with _OPEN_GUARD:
            self._conn.close()
            if not self._closed:
                self._closed = True
                _OPEN[self._key] -= 1
                if not _OPEN[self._key]:
                    del _OPEN[self._key]

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it commits, or none of it."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if not exists:
            return 0
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def backup_to(self, target: sqlite3.Connection) -> None:
        """Copy the whole database into ``target`` with SQLite's online backup API: a
        consistent snapshot taken while other processes keep writing."""
        self._conn.backup(target)

    def created_at(self) -> str:
        """When this database was created (its first migration): objects older than that were
        not written through it, which is how gc recognises a replaced database."""
        row = self._conn.execute("SELECT applied_at FROM schema_migrations ORDER BY version "
                                 "LIMIT 1").fetchone()
        return row[0]

    def _migrate(self, lock: Callable[[], AbstractContextManager[Any]]) -> None:
        current = self.schema_version()
        if current > LATEST:
            raise RegistryError(f"registry {self.path}: schema version {current} is newer than "
                                f"this causalcast understands ({LATEST}); upgrade causalcast")
        if current == LATEST:
            return
        with lock(), self._tx() as db:
            db.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)""")
            current = self.schema_version()  # another process may have migrated meanwhile
            for version, name, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                           (version, name, utc_now()))

    # ------------------------------------------------------------------ runs
    def _run_from_row(self, row: sqlite3.Row) -> RunRecord:
        return RunRecord(run_id=row["run_id"], name=row["name"], status=row["status"],
                         config=_loads(row["config_json"]), audit=_loads(row["audit_json"]),
                         code_version=_loads(row["code_version_json"]),
                         created_at=row["created_at"], finished_at=row["finished_at"])

    def create_run(self, run_id: str, name: str, config: dict[str, Any],
                   code_version: dict[str, Any]) -> RunRecord:
        """Create the run, or return it unchanged if it exists (a rerun resumes it)."""
        check_path_component(run_id, "run_id")  # it names the run's folder
        config_text = canonical_json(config, "run config")
        with self._tx() as db:
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                db.execute("INSERT INTO runs (run_id, name, status, config_json, "
                           "code_version_json, created_at) VALUES (?, ?, 'running', ?, ?, ?)",
                           (run_id, name, config_text,
                            canonical_json(code_version, "code version"), utc_now()))
            else:
                db.execute("UPDATE runs SET status = 'running', finished_at = NULL "
                           "WHERE run_id = ?", (run_id,))
            return self._run_from_row(
                db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone())

    def get_run(self, run_id: str) -> RunRecord:
        row = self._conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"run {run_id!r}: no such run")
        return self._run_from_row(row)

    def list_runs(self) -> list[RunRecord]:
        rows = self._conn.execute("SELECT * FROM runs ORDER BY created_at, run_id").fetchall()
        return [self._run_from_row(r) for r in rows]

    def finish_run(self, run_id: str, status: str) -> None:
        if status not in RUN_STATUSES:
            raise RegistryError(f"run status: unknown {status!r}; choose from "
                                f"{list(RUN_STATUSES)}")
        with self._tx() as db:
            cur = db.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                             (status, utc_now(), run_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"run {run_id!r}: no such run")

    def record_audit(self, run_id: str, audit: dict[str, Any]) -> None:
        text = canonical_json(audit, "audit")
        with self._tx() as db:
            cur = db.execute("UPDATE runs SET audit_json = ? WHERE run_id = ?", (text, run_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"run {run_id!r}: no such run")

    # ------------------------------------------------------------------ jobs
    def _job_from_row(self, row: sqlite3.Row) -> JobRecord:
        return JobRecord(**{k: row[k] for k in row.keys()})  # noqa: SIM118 - sqlite3.Row

    def _require_run(self, db: sqlite3.Connection, run_id: str) -> None:
        if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise NotFoundError(f"run {run_id!r}: no such run (start it first)")

    def _job_row(self, db: sqlite3.Connection, run_id: str, key: JobKey) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM jobs WHERE run_id = ? AND symbol = ? AND model = ? "
                          "AND fold = ?", (run_id, *key)).fetchone()

    def add_jobs(self, run_id: str, keys: Iterable[JobKey]) -> int:
        """Plan jobs as pending; existing ones (done, failed, ...) are left as they are."""
        checked = [check_key(k) for k in keys]
        now = utc_now()
        with self._tx() as db:
            self._require_run(db, run_id)
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO jobs (run_id, symbol, model, fold, status, "
                           "created_at) VALUES (?, ?, ?, ?, 'pending', ?)",
                           [(run_id, *k, now) for k in checked])
            return db.total_changes - before

    def start_job(self, run_id: str, key: JobKey, worker: str | None) -> JobRecord:
        """Mark a job running (attempts + 1). A job already done is returned untouched: the
        caller sees ``status == 'done'`` and skips it (at-least-once executors retry)."""
        key = check_key(key)
        now = utc_now()
        with self._tx() as db:
            self._require_run(db, run_id)
            db.execute(
                "INSERT INTO jobs (run_id, symbol, model, fold, status, attempts, worker, "
                "created_at, started_at) VALUES (?, ?, ?, ?, 'running', 1, ?, ?, ?) "
                "ON CONFLICT (run_id, symbol, model, fold) DO UPDATE SET status = 'running', "
                "attempts = attempts + 1, worker = excluded.worker, started_at = excluded."
                "started_at, finished_at = NULL, seconds = NULL, error = NULL, traceback = NULL "
                "WHERE status != 'done'", (run_id, *key, worker, now, now))
            return self._job_from_row(self._job_row(db, run_id, key))

    def _end_job(self, run_id: str, key: JobKey, status: str, error: str | None,
                 traceback: str | None) -> JobRecord:
        key = check_key(key)
        now = utc_now()
        with self._tx() as db:
            row = self._job_row(db, run_id, key)
            if row is None:
                raise NotFoundError(f"job {run_id}/{key}: no such job (start it first)")
            if row["status"] == "done":
                return self._job_from_row(row)
            db.execute("UPDATE jobs SET status = ?, error = ?, traceback = ?, finished_at = ?, "
                       "seconds = ? WHERE job_id = ?",
                       (status, error, traceback, now, _seconds_between(row["started_at"], now),
                        row["job_id"]))
            return self._job_from_row(self._job_row(db, run_id, key))

    def finish_job(self, run_id: str, key: JobKey) -> JobRecord:
        return self._end_job(run_id, key, "done", None, None)

    def fail_job(self, run_id: str, key: JobKey, error: str, traceback: str) -> JobRecord:
        return self._end_job(run_id, key, "failed", error, traceback)

    def get_job(self, run_id: str, key: JobKey) -> JobRecord:
        row = self._job_row(self._conn, run_id, check_key(key))
        if row is None:
            raise NotFoundError(f"job {run_id}/{tuple(key)}: no such job")
        return self._job_from_row(row)

    def list_jobs(self, run_id: str, status: str | None = None) -> list[JobRecord]:
        if status is not None and status not in JOB_STATUSES:
            raise RegistryError(f"job status: unknown {status!r}; choose from "
                                f"{list(JOB_STATUSES)}")
        sql = "SELECT * FROM jobs WHERE run_id = ?"
        args: tuple[Any, ...] = (run_id,)
        if status is not None:
            sql += " AND status = ?"
            args += (status,)
        rows = self._conn.execute(sql + " ORDER BY symbol, model, fold", args).fetchall()
        return [self._job_from_row(r) for r in rows]

    def job_counts(self, run_id: str) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        for status, n in self._conn.execute(
                "SELECT status, COUNT(*) FROM jobs WHERE run_id = ? GROUP BY status", (run_id,)):
            counts[status] = n
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
            db.execute("INSERT OR REPLACE INTO epoch_metrics VALUES (?, ?, ?, ?)",
                       (row["job_id"], epoch, text, utc_now()))

    def epoch_metrics(self, run_id: str, key: JobKey) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT e.epoch, e.metrics_json FROM epoch_metrics e JOIN jobs j USING (job_id) "
            "WHERE j.run_id = ? AND j.symbol = ? AND j.model = ? AND j.fold = ? "
            "ORDER BY e.epoch", (run_id, *check_key(key))).fetchall()
        return [{"epoch": r["epoch"], **json.loads(r["metrics_json"])} for r in rows]

for _cls in (SQLiteVersions, SQLitePredictions, SQLiteStore):
    for _name, _method in list(vars(_cls).items()):
        if callable(_method) and not _name.startswith("_") and _name != "close":
            setattr(SQLiteStore, _name, translate_errors(_method))
