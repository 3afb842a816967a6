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

import functools
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from causalcast.registry.lineage import canonical_json
from causalcast.registry.names import check_path_component
from causalcast.registry.records import (
    JOB_STATUSES,
    RUN_STATUSES,
    STAGES,
    BusyError,
    DamagedError,
    JobKey,
    JobRecord,
    ModelVersion,
    NewVersion,
    NotFoundError,
    RegistryError,
    RunRecord,
    StageEvent,
)
from causalcast.registry.schema import LATEST, MIGRATIONS

SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
_CREATE_TABLE = re.compile(r"CREATE TABLE (\w+)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}")
_JSON_COLUMNS = {
    "runs": ("config_json", "audit_json", "code_version_json"),
    "model_versions": ("config_json", "metrics_json", "feature_config_json",
                       "split_config_json", "code_version_json", "lineage_json"),
    "epoch_metrics": ("metrics_json",),
    "stage_history": ("gates_json",),
}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def check_name(value: str, what: str) -> str:
    """Names become references (``name:version``) and file-friendly labels."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise RegistryError(f"{what}: expected 1-200 characters from letters, digits and "
                            f"'._/+-' (starting with a letter or digit), got {value!r}")
    return value


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise RegistryError(f"stage: unknown stage {stage!r}; choose from {list(STAGES)}")
    return stage


def check_key(key: JobKey | Sequence[Any]) -> JobKey:
    try:
        symbol, model, fold = key
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"job key: expected (symbol, model, fold), got {key!r}") from exc
    if not isinstance(symbol, str) or not symbol:
        raise RegistryError(f"job key symbol: expected a non-empty string, got {symbol!r}")
    check_name(model, "job key model")
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 0:
        raise RegistryError(f"job key fold: expected an integer >= 0, got {fold!r}")
    return JobKey(symbol, model, fold)


def check_database_header(path: Path) -> None:
    """Refuse a file that is not an SQLite 3 database before sqlite3 reads it (sqlite3 would
    otherwise fail later, mid-command, or treat a wrong file as empty)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(_HEADER_SIZE)
    except OSError as exc:
        raise DamagedError(f"registry database {path}: unreadable ({exc.strerror})") from None
    if not header:
        raise DamagedError(f"registry database {path}: empty (0 bytes)")
    if not header.startswith(SQLITE_MAGIC):
        raise DamagedError(f"registry database {path}: not an SQLite database (header starts "
                           f"{header[:16]!r})")
    if len(header) < _HEADER_SIZE:
        raise DamagedError(f"registry database {path}: truncated ({len(header)} bytes, shorter "
                           f"than the SQLite header)")


def expected_tables(version: int) -> set[str]:
    """Tables the migrations up to ``version`` create (plus the migrations table)."""
    names = {"schema_migrations"}
    for number, _, statements in MIGRATIONS:
        if number <= version:
            names.update(m.group(1) for st in statements for m in _CREATE_TABLE.finditer(st))
    return names


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _translate_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """sqlite3 errors become one-line registry errors naming the file: a stalled lock holder
    is `BusyError`, a full disk or I/O failure `RegistryError`, damage found mid-command
    `DamagedError` (no traceback reaches a CLI user)."""

    @functools.wraps(method)
    def guarded(store: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(store, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise BusyError(f"registry database {store.path}: locked by another process "
                                f"for more than {store.busy_timeout_s:g} s") from None
            if "full" in str(exc) or "I/O" in str(exc):
                raise RegistryError(f"registry database {store.path}: {exc}; nothing was "
                                    f"changed") from None
            raise DamagedError(f"registry database {store.path}: {exc}") from None
        except sqlite3.IntegrityError as exc:
            raise RegistryError(f"registry database {store.path}: refused ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise DamagedError(f"registry database {store.path}: damaged ({exc})") from None

    return guarded


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _seconds_between(start: str | None, end: str) -> float | None:
    if start is None:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


class SQLiteStore:
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
                    self._conn = self._connect("rwc")
                    self._conn.execute("PRAGMA journal_mode = WAL")
                    self._migrate(nullcontext)
                elif self.path.stat().st_size == 0:
                    raise DamagedError(
                        f"registry database {self.path}: empty (0 bytes); refusing to recreate "
                        f"it over existing data: restore a backup (`causalcast registry "
                        f"restore`) or rebuild it (`causalcast registry recover`)")
        if not creating:
            check_database_header(self.path)
            self._conn = self._connect("rw")
            try:
                self._prove(lock, create)
            except BaseException:
                self._conn.close()
                raise

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
            if _is_busy(exc):
                raise BusyError(f"registry database {self.path}: locked by another process for "
                                f"more than {self.busy_timeout_s:g} s") from None
            raise DamagedError(f"registry database {self.path}: damaged ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise DamagedError(f"registry database {self.path}: damaged ({exc})") from None
        if result != ["ok"]:
            raise DamagedError(f"registry database {self.path}: damaged, quick_check found "
                               f"{len(result)} problems (first: {result[0]}); run `causalcast "
                               f"registry verify` and restore a backup")
        if self._conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            with lock():  # switching modes needs the database to ourselves
                self._conn.execute("PRAGMA journal_mode = WAL")
        tables = {r[0] for r in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:  # a creation killed between the file and its first migration
            if not create:
                raise NotFoundError(f"registry database {self.path}: holds no registry (its "
                                    f"creation was interrupted); nothing to read")
        elif "schema_migrations" not in tables:
            raise DamagedError(f"registry database {self.path}: not a causalcast registry "
                               f"(no schema_migrations table; tables: {sorted(tables)[:5]})")
        self._migrate(lock)
        tables = {r[0] for r in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted(expected_tables(self.schema_version()) - tables)
        if missing:
            raise DamagedError(f"registry database {self.path}: damaged, schema version "
                               f"{self.schema_version()} but tables {missing} are missing")

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._conn.close()

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
        """Every problem found in the database, as sentences; empty when sound."""
        db = self._conn
        problems: list[str] = []
        db.execute("BEGIN")  # one snapshot for all checks
        try:
            result = [r[0] for r in db.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                problems += [f"sqlite integrity: {r}" for r in result[:20]]
            for table, rowid, parent, _ in db.execute("PRAGMA foreign_key_check"):
                problems.append(f"{table} row {rowid}: references a missing {parent} row")
            checks = [
                ("SELECT j.job_id, j.run_id FROM jobs j LEFT JOIN runs r USING (run_id) "
                 "WHERE r.run_id IS NULL", "job {0}: run {1!r} does not exist"),
                ("SELECT j.job_id, j.version_id FROM jobs j LEFT JOIN model_versions v "
                 "USING (version_id) WHERE j.version_id IS NOT NULL AND v.version_id IS NULL",
                 "job {0}: version {1} does not exist"),
                ("SELECT e.job_id, e.epoch FROM epoch_metrics e LEFT JOIN jobs j USING (job_id) "
                 "WHERE j.job_id IS NULL", "epoch metrics of job {0} epoch {1}: job does not "
                 "exist"),
                ("SELECT v.version_id, v.run_id FROM model_versions v LEFT JOIN runs r "
                 "USING (run_id) WHERE v.run_id IS NOT NULL AND r.run_id IS NULL",
                 "version {0}: run {1!r} does not exist"),
                ("SELECT v.version_id, v.job_id FROM model_versions v LEFT JOIN jobs j "
                 "USING (job_id) WHERE v.job_id IS NOT NULL AND j.job_id IS NULL",
                 "version {0}: job {1} does not exist"),
                ("SELECT v.version_id, v.name FROM model_versions v LEFT JOIN version_stages s "
                 "USING (version_id) WHERE s.version_id IS NULL",
                 "version {0} ({1}): has no stage"),
                ("SELECT s.version_id, s.stage FROM version_stages s LEFT JOIN model_versions v "
                 "USING (version_id) WHERE v.version_id IS NULL",
                 "stage {1!r} of version {0}: version does not exist"),
                ("SELECT s.version_id, s.name FROM version_stages s JOIN model_versions v "
                 "USING (version_id) WHERE s.name != v.name",
                 "stage of version {0}: recorded under name {1!r}, not the version's name"),
                ("SELECT h.event_id, h.version_id FROM stage_history h LEFT JOIN model_versions "
                 "v USING (version_id) WHERE v.version_id IS NULL",
                 "stage history event {0}: version {1} does not exist"),
                ("SELECT name, COUNT(*) FROM version_stages WHERE stage = 'production' "
                 "GROUP BY name HAVING COUNT(*) > 1", "name {0!r}: {1} production versions"),
                ("SELECT v.version_id, v.job_id FROM model_versions v JOIN jobs j ON "
                 "j.job_id = v.job_id WHERE j.version_id IS NOT v.version_id OR j.status != "
                 "'done'", "version {0}: its job {1} is not marked done with it"),
            ]
            for sql, template in checks:
                problems += [template.format(*row) for row in db.execute(sql)]
            placeholders = ",".join("?" * len(stages))
            problems += [f"version {r[0]}: unknown stage {r[1]!r}" for r in db.execute(
                f"SELECT version_id, stage FROM version_stages WHERE stage NOT IN "
                f"({placeholders})", tuple(stages))]
            for table, columns in _JSON_COLUMNS.items():
                for column in columns:
                    for rowid, text in db.execute(f"SELECT rowid, {column} FROM {table}"):
                        if text is None:
                            continue
                        try:
                            json.loads(text)
                        except ValueError:
                            problems.append(f"{table} row {rowid}: {column} is not valid JSON")
        finally:
            db.execute("COMMIT")
        return problems


for _name, _method in list(vars(SQLiteStore).items()):
    if callable(_method) and not _name.startswith("_") and _name != "close":
        setattr(SQLiteStore, _name, _translate_errors(_method))
