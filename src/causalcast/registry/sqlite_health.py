"""Proving an SQLite registry file sound, and naming what is wrong when it is not.

Opening a registry (`sqlite_store.SQLiteStore`) checks the header here before sqlite3 reads the
file; `verify` runs `integrity_problems`; every public store method passes through
`translate_errors`, so damage found mid-command, a full disk or a stalled lock holder reaches a
user as one line naming the file, never as an sqlite3 traceback.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from causalcast.registry.records import STAGES, BusyError, DamagedError, RegistryError
from causalcast.registry.schema import MIGRATIONS

SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
_CREATE_TABLE = re.compile(r"CREATE TABLE (\w+)")
_DROP_TABLE = re.compile(r"DROP TABLE (\w+)")
_JSON_COLUMNS = {
    "runs": ("config_json", "audit_json", "code_version_json"),
    "model_versions": ("config_json", "metrics_json", "feature_config_json",
                       "split_config_json", "code_version_json", "lineage_json"),
    "epoch_metrics": ("metrics_json",),
    "stage_history": ("gates_json",),
    "version_evaluations": ("evaluation_json",),
}



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
            names.difference_update(m.group(1) for st in statements
                                    for m in _DROP_TABLE.finditer(st))
    return names


def is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def translate_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """sqlite3 errors become one-line registry errors naming the file: a stalled lock holder
    is `BusyError`, a full disk or I/O failure `RegistryError`, damage found mid-command
    `DamagedError` (no traceback reaches a CLI user)."""

    @functools.wraps(method)
    def guarded(store: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(store, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
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



def integrity_problems(db: sqlite3.Connection, stages: Sequence[str] = STAGES) -> list[str]:
    """The full check `verify` runs, inside the caller's read transaction."""
    problems: list[str] = []
    result = [r[0] for r in db.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        problems += [f"sqlite integrity: {' '.join(r.split())}" for r in result[:20]]
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
    return problems
