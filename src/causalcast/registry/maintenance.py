"""Backup, restore and recovery of a registry (``causalcast registry backup|restore|recover``).

* **backup** copies a live registry to a new home without stopping writers: the database via
  SQLite's online backup API (a consistent snapshot, whatever commits meanwhile), then every
  object the snapshot references, re-hashed as it is copied. Referenced objects are never
  deleted (versions are never deleted and gc keeps what they reference), so the snapshot's
  objects are all still there after it is taken. The copy is then verified like a live
  registry: a backup that would not restore is reported, not written silently.
* **restore** verifies a backup, moves the current registry folder aside (never deleting it)
  and copies the backup into its place.
* **recover** rebuilds a database that is missing, empty or damaged from the objects' own
  headers: every object that is a well-formed causalcast weights file becomes a candidate
  version named ``recovered/<model>/<scope>`` carrying its embedded config. Promotions,
  metrics, runs and jobs are not in the objects and are not invented; the damaged database is
  kept beside the new one. Objects that are not weights files stay untouched, and gc refuses
  to run until an operator confirms with ``--force``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from causalcast.registry.file_artifacts import FileArtifactStore
from causalcast.registry.lineage import Lineage
from causalcast.registry.model_registry import DB_NAME, Registry
from causalcast.registry.names import path_component
from causalcast.registry.records import (
    ArtifactError,
    DamagedError,
    NotFoundError,
    RegistryError,
    VerifyReport,
)
from causalcast.registry.sqlite_store import SQLiteStore

#: Data fingerprint of recovered versions: the bars they were trained on are not in the object.
UNKNOWN_FINGERPRINT = "0" * 64


@dataclass
class BackupReport:
    destination: str
    n_versions: int = 0
    n_objects: int = 0
    bytes_copied: int = 0
    verify: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RecoverReport:
    recovered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kept_damaged: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _empty_place(home: Path, what: str) -> Path:
    root = home / "registry"
    if root.exists() and any(root.iterdir()):
        raise RegistryError(f"{what} {home}: {root} already holds files; choose a new folder")
    return root


def backup(reg: Registry, dest: str | Path) -> BackupReport:
    """Copy ``reg`` into the new home ``dest`` (refused if it already holds a registry)."""
    dest = Path(dest)
    root = _empty_place(dest, "backup destination")
    if not isinstance(reg.meta, SQLiteStore) or not isinstance(reg.artifacts, FileArtifactStore):
        raise RegistryError("backup: supported for the SQLite + local folder registry only")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryError(f"backup destination {dest}: cannot create ({exc.strerror})") from None
    target = sqlite3.connect(root / DB_NAME)
    try:
        reg.meta.backup_to(target)
    finally:
        target.close()
    snapshot = SQLiteStore(root / DB_NAME, create=False)
    try:
        references = snapshot.artifact_references()
    finally:
        snapshot.close()
    copies = FileArtifactStore(root)
    report = BackupReport(str(dest), n_versions=len(references))
    for digest in sorted({d for _, _, d, _ in references}):
        data = reg.artifacts.get(digest)  # re-hashed: a damaged object is not backed up
        copies.put(data)
        report.n_objects += 1
        report.bytes_copied += len(data)
    owner = reg.artifacts.read_owner()
    if owner is not None:
        copies.write_owner(owner)
    with Registry.open(dest, create=False) as copy:
        checked = copy.verify()
    report.verify = checked.to_dict()
    if not checked.ok:
        raise DamagedError(f"backup {dest}: the copy does not verify: {checked.problems[0]}")
    return report


def restore(source: str | Path, home: str | Path) -> Path | None:
    """Replace ``home``'s registry with the verified backup in ``source``; returns where the
    previous registry folder was moved (None when there was none)."""
    source, home = Path(source), Path(home)
    with Registry.open(source, create=False) as backup_reg:
        checked: VerifyReport = backup_reg.verify()
    if not checked.ok:
        raise DamagedError(f"backup {source}: does not verify ({len(checked.problems)} "
                           f"problems, first: {checked.problems[0]}); nothing restored")
    root = home / "registry"
    moved = None
    if root.exists():
        moved = root.with_name(f"registry.before-restore-{_stamp()}")
        os.replace(root, moved)
    try:
        shutil.copytree(source / "registry", root,
                        ignore=shutil.ignore_patterns("*.lock", "*-shm"))
    except OSError as exc:
        raise RegistryError(f"restore into {home}: copy failed ({exc}); the previous "
                            f"registry is in {moved}") from None
    return moved


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _version_name(config: dict[str, Any]) -> str:
    model = config.get("model")
    model_name = model.get("name") if isinstance(model, dict) else None
    symbols = (config.get("meta") or {}).get("symbols") if isinstance(config.get("meta"),
                                                                     dict) else None
    scope = symbols[0] if isinstance(symbols, list) and len(symbols) == 1 else "global"
    return (f"recovered/{path_component(str(model_name or 'unknown'), 'model')}/"
            f"{path_component(str(scope), 'symbol')}")


def recover(home: str | Path) -> RecoverReport:
    """Rebuild the version metadata of ``home``'s registry from its objects. Refused when the
    database is sound (nothing to recover)."""
    from causalcast.weights_header import WeightsError, check_weights_header

    home = Path(home)
    root = home / "registry"
    db = root / DB_NAME
    try:
        with Registry.open(home, create=False) as current:
            damage = current.meta.check_integrity()  # the full check, beyond quick_check
    except DamagedError:
        damage = ["damaged"]
    except NotFoundError:
        if not (root / "objects").is_dir():
            raise
        damage = ["missing"]
    if not damage:
        raise RegistryError(f"recover {home}: {db} is sound; recover only rebuilds a missing, "
                            f"empty or damaged database (use backup/restore otherwise)")
    report = RecoverReport()
    if db.exists():
        kept = db.with_name(f"{DB_NAME}.damaged-{_stamp()}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{db}{suffix}")
            if part.exists():
                os.replace(part, Path(f"{kept}{suffix}"))
        report.kept_damaged = str(kept)
    objects = FileArtifactStore(root, create=False)
    owner = objects.read_owner()
    digests = list(objects.digests())
    # Creating the database is allowed here and only here: the objects are about to be
    # referenced again. The open below would refuse 'objects without a database', so the
    # store is created directly and the registry opened over it.
    SQLiteStore(db, create=True).close()
    with Registry.open(home, create=False) as reg:
        for digest in digests:
            try:
                data = reg.artifacts.get(digest)
                config = check_weights_header(data, f"object {digest}")
            except (ArtifactError, WeightsError) as exc:
                report.skipped.append(str(exc))
                continue
            meta = config.get("meta") if isinstance(config.get("meta"), dict) else {}
            lineage = Lineage(UNKNOWN_FINGERPRINT, {"lookback": config.get("lookback"),
                                                    "horizons": config.get("horizons")}, {},
                              extra={"recovered_from": digest, "recovered_at": _stamp(),
                                     "symbols": meta.get("symbols")})
            version = reg.register_version(_version_name(config), data, config,
                                           {"recovered": True}, lineage, by="recover")
            report.recovered.append(version.ref)
    if owner is not None:  # keep the old owner: gc refuses until an operator uses --force
        objects.write_owner(owner)
    return report
