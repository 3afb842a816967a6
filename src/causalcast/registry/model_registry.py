"""`Registry`: the one object callers use. It composes a metadata store, an artifact store and one
cross-store lock, and owns the operations that touch both stores.

**register** = put the artifact (outside the lock: hashing and fsync run in parallel across
workers), then, under the lock, make sure the object still exists (re-writing it if gc removed
it meanwhile) and insert the version row in one transaction. **gc** = under the same lock, read
the referenced digests and delete unreferenced objects older than a grace period. Because gc
and the locked half of register exclude each other, a version row can never be committed whose
object gc has deleted, whatever the grace period (even 0). The grace period is a second line of
defence for writers the lock does not reach (a future multi-host object store, external tools)
and saves re-writing objects a writer is about to reference; `put` of existing bytes refreshes the
object's mtime for the same reason. Temporary files of interrupted writes are removed only
after `MIN_TEMP_AGE_S`, since one may belong to a write in progress outside the lock.

A `Registry` pickles as its home path, so a process-pool or Ray worker re-opens it on arrival.
"""

from __future__ import annotations

import getpass
import os
import socket
import traceback as tb
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from causalcast.registry.checks import check_key, check_name, check_stage
from causalcast.registry.file_artifacts import FileArtifactStore
from causalcast.registry.gates import GateContext, run_gates
from causalcast.registry.interfaces import ArtifactStore, MetadataStore
from causalcast.registry.lineage import Lineage, canonical_json, code_version
from causalcast.registry.networked import open_networked
from causalcast.registry.records import (
    ArtifactError,
    BusyError,
    DamagedError,
    EvaluationRecord,
    GateRefused,
    GateResult,
    GcReport,
    JobKey,
    JobRecord,
    ModelVersion,
    NewVersion,
    NotFoundError,
    Promotion,
    RegistryError,
    RunRecord,
    StageEvent,
    VerifyReport,
)
from causalcast.registry.sqlite_store import SQLiteStore
from causalcast.registry.urls import is_database_url, redact

DEFAULT_GRACE_S = 3600.0
MIN_TEMP_AGE_S = 600.0
DB_NAME = "registry.db"
LOCK_NAME = "registry.lock"
LOCK_POLL_S = 0.005


def default_user() -> str:
    """Who is acting: ``CAUSALCAST_USER``, else the login name."""
    try:
        return os.environ.get("CAUSALCAST_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid{os.getuid()}"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


class Registry:
    """Runs, jobs, per-epoch metrics, model versions, stages and artifacts.

    Open one per process with `Registry.open(home)`; every method is safe to call from many
    processes at once."""

    def __init__(self, meta: MetadataStore, artifacts: ArtifactStore,
                 lock: Callable[[], AbstractContextManager[Any]], *,
                 reopen: tuple[Any, ...] | None = None) -> None:
        self.meta = meta
        self.artifacts = artifacts
        self._lock = lock
        self._reopen = reopen

    @classmethod
    def open(cls, home: str | Path = ".causalcast", *, create: bool = True,
             busy_timeout_s: float = 60.0, artifacts: str | None = None) -> Registry:
        """SQLite + local artifacts under ``home/registry``; or, when ``home`` is a
        ``postgresql://`` URL, PostgreSQL + the fsspec store ``artifacts`` (see `networked`).

        ``create=False`` (read-only commands) refuses a home without a registry and creates
        nothing. ``create=True`` makes a new registry only in an empty place: a database that
        exists is never recreated (an empty or damaged one is refused, see `SQLiteStore`), and
        objects without a database are refused too (recreating the database would make every
        object look unreferenced to gc; `causalcast registry recover` rebuilds it)."""
        if is_database_url(str(home)):
            meta, store, lock, where = open_networked(str(home), artifacts, create=create,
                                                      busy_timeout_s=busy_timeout_s)
            return cls._owned(meta, store, lock, create, (str(home), busy_timeout_s, where))
        root = Path(home) / "registry"
        db = root / DB_NAME
        if not create and not db.exists():
            raise NotFoundError(f"no registry under {root} ({DB_NAME} does not exist; "
                                f"nothing registered yet?)")
        if create:
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RegistryError(f"--home {home}: cannot create {root} "
                                    f"({exc.strerror or exc})") from None
        file_lock = FileLock(str(root / LOCK_NAME), timeout=busy_timeout_s)
        lock = _timed_lock(file_lock, busy_timeout_s)
        artifacts = FileArtifactStore(root, create=create)
        if create and not db.exists():
            with lock():
                if not db.exists() and next(artifacts.digests(), None) is not None:
                    raise DamagedError(
                        f"registry database {db}: missing, but {artifacts.objects} holds "
                        f"objects; refusing to start an empty registry over them: restore a "
                        f"backup (`causalcast registry restore`) or rebuild the versions "
                        f"(`causalcast registry recover`)")
        meta = SQLiteStore(db, busy_timeout_s=busy_timeout_s, setup_lock=lock, create=create)
        return cls._owned(meta, artifacts, lock, create, (str(home), busy_timeout_s, None))

    @classmethod
    def _owned(cls, meta: MetadataStore, artifacts: ArtifactStore,
               lock: Callable[[], AbstractContextManager[Any]], create: bool,
               reopen: tuple[Any, ...]) -> Registry:
        if not create:  # read-only opens and Ray tasks recording a job: no round trip
            return cls(meta, artifacts, lock, reopen=reopen)
        owner = artifacts.read_owner()
        if owner != meta.created_at() and (
                owner is None or next(artifacts.digests(), None) is None):
            # The objects remember which database they belong to, so gc can tell a recreated or
            # swapped database from garbage (a restored backup keeps its creation time).
            artifacts.write_owner(meta.created_at())
        return cls(meta, artifacts, lock, reopen=reopen)

    @property
    def artifacts_url(self) -> str | None:
        """The artifact store's URL of a database registry (what another host opens it with);
        None for a registry folder."""
        return self._reopen[2] if self._reopen else None

    def __reduce__(self) -> tuple[Any, ...]:
        if self._reopen is None:
            raise TypeError("only a Registry made by Registry.open can be pickled")
        return (_reopen, self._reopen)

    def close(self) -> None:
        self.meta.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs and jobs
    def start_run(self, run_id: str | None = None, *, name: str = "",
                  config: dict[str, Any] | None = None) -> str:
        """Create a run (or resume an existing one with the same id); returns the run id."""
        run_id = run_id or new_run_id()
        self.meta.create_run(run_id, name, config or {}, code_version())
        return run_id

    def get_run(self, run_id: str) -> RunRecord:
        return self.meta.get_run(run_id)

    def runs(self) -> list[RunRecord]:
        return self.meta.list_runs()

    def finish_run(self, run_id: str, status: str | None = None) -> None:
        """Close a run; by default ``done`` when every job is done, else ``failed``."""
        if status is None:
            counts = self.meta.job_counts(run_id)
            status = "done" if sum(counts.values()) == counts["done"] else "failed"
        self.meta.finish_run(run_id, status)

    def record_audit(self, run_id: str, report: Any) -> None:
        """Store the run's leakage audit (an `AuditReport` or its dict); the ``leakage_audit``
        gate reads it. Only the verdict, counts and the failed checks are kept."""
        data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
        if not isinstance(data.get("passed"), bool):
            raise RegistryError("audit: field 'passed' must be a bool")
        failures = [c for c in data.get("checks", []) if not c.get("passed", True)]
        summary = {k: v for k, v in data.items() if k != "checks"}
        summary["failures"] = failures[:50]
        self.meta.record_audit(run_id, summary)

    def plan_jobs(self, run_id: str, keys: Iterable[JobKey | Sequence[Any]]) -> int:
        """Record the run's jobs as pending (existing ones untouched); returns how many new."""
        return self.meta.add_jobs(run_id, [check_key(k) for k in keys])

    def completed_jobs(self, run_id: str) -> set[JobKey]:
        return {j.key for j in self.meta.list_jobs(run_id, "done")}

    def missing_jobs(self, run_id: str, keys: Iterable[JobKey | Sequence[Any]]
                     ) -> list[JobKey]:
        """The given jobs that are not done yet, in the given order: what a rerun must do."""
        done = self.completed_jobs(run_id)
        return [k for k in (check_key(k) for k in keys) if k not in done]

    def jobs(self, run_id: str, status: str | None = None) -> list[JobRecord]:
        return self.meta.list_jobs(run_id, status)

    def progress(self, run_id: str) -> dict[str, int]:
        counts = self.meta.job_counts(run_id)
        return {**counts, "total": sum(counts.values())}

    def job_started(self, run_id: str, key: JobKey | Sequence[Any], *,
                    worker: str | None = None) -> JobRecord:
        """Mark a job running. If it is already done (a retried task) the returned record says
        ``status == 'done'``: skip the work."""
        worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        return self.meta.start_job(run_id, check_key(key), worker)

    def job_finished(self, run_id: str, key: JobKey | Sequence[Any]) -> JobRecord:
        """Mark a job done that registers no version (`register_version` with ``job=`` already
        marks its job done in the same transaction)."""
        return self.meta.finish_job(run_id, check_key(key))

    def job_failed(self, run_id: str, key: JobKey | Sequence[Any], error: BaseException | str,
                   traceback_text: str | None = None) -> JobRecord:
        """Record a failure with its traceback (from the exception unless given)."""
        if isinstance(error, BaseException):
            message = f"{type(error).__name__}: {error}"
            traceback_text = traceback_text or "".join(tb.format_exception(error))
        else:
            message = str(error)
        return self.meta.fail_job(run_id, check_key(key), message, traceback_text or "")

    def log_epoch(self, run_id: str, key: JobKey | Sequence[Any], epoch: int,
                  metrics: dict[str, Any]) -> None:
        self.meta.log_epoch(run_id, check_key(key), epoch, metrics)

    def epoch_metrics(self, run_id: str, key: JobKey | Sequence[Any]) -> list[dict[str, Any]]:
        return self.meta.epoch_metrics(run_id, check_key(key))

    # ------------------------------------------------------------------ versions
    def register_version(self, name: str, artifact: bytes, config: dict[str, Any],
                         metrics: dict[str, Any], lineage: Lineage, *,
                         run_id: str | None = None, job: JobKey | Sequence[Any] | None = None,
                         by: str | None = None) -> ModelVersion:
        """Store the artifact and register a candidate version of ``name``; with ``job`` the
        job is marked done in the same transaction. Returns the new (or, for a job already
        done, the existing) version."""
        check_name(name, "version name")
        if not isinstance(lineage, Lineage):
            raise RegistryError(f"lineage: expected causalcast.registry.Lineage, got "
                                f"{type(lineage).__name__}")
        if not isinstance(config, dict) or not isinstance(metrics, dict):
            raise RegistryError("config and metrics: expected dicts")
        canonical_json(config, "config")  # refuse bad input before anything is written
        canonical_json(metrics, "metrics")
        key = None if job is None else check_key(job)
        if key is not None and run_id is None:
            raise RegistryError("job: a job key needs its run_id")
        if run_id is not None:  # unknown run or job: refuse before writing anything
            self.meta.get_run(run_id)
        if key is not None:
            self.meta.get_job(run_id, key)
        digest = self.artifacts.put(artifact)
        new = NewVersion(name=name, artifact_sha256=digest, artifact_size=len(artifact),
                         config=config, metrics=metrics,
                         data_fingerprint=lineage.data_fingerprint,
                         feature_config=dict(lineage.feature_config),
                         split_config=dict(lineage.split_config), code_version=dict(lineage.code),
                         lineage=lineage.details(), run_id=run_id, job=key)
        with self._lock():
            if not self.artifacts.exists(digest):  # gc removed it before we held the lock
                self.artifacts.put(artifact)
            return self.meta.insert_version(new, by or default_user())

    def get_version(self, ref: str | int) -> ModelVersion:
        return self.meta.get_version(ref)

    def versions(self, name: str | None = None, stage: str | None = None,
                 run_id: str | None = None) -> list[ModelVersion]:
        return self.meta.list_versions(name, stage, run_id)

    def production(self, name: str) -> ModelVersion | None:
        return self.meta.production(name)

    def load_artifact(self, version: ModelVersion | str | int) -> bytes:
        """The version's bytes, verified against its SHA-256."""
        if not isinstance(version, ModelVersion):
            version = self.get_version(version)
        return self.artifacts.get(version.artifact_sha256)

    def load_weights(self, version: ModelVersion | str | int) -> tuple[dict[str, Any],
                                                                        dict[str, Any]]:
        """Tensors and embedded config of a version whose artifact is `causalcast.weights`
        bytes (verified hash, safetensors, no code executed)."""
        from causalcast.weights import parse

        if not isinstance(version, ModelVersion):
            version = self.get_version(version)
        return parse(self.load_artifact(version), sha256=version.artifact_sha256,
                     source=f"version {version.ref}")

    # ------------------------------------------------------------------ evaluations
    def attach_evaluation(self, version_ref: str | int, evaluation: dict[str, Any],
                          by: str | None = None) -> EvaluationRecord:
        """Attach an evaluation (e.g. `causalcast.evaluation.promotion_metrics`) to an existing
        version. Versions stay immutable: the evaluation is its own record, appended; the
        latest one is what `evaluation` returns and what the promotion gates read."""
        if not isinstance(evaluation, dict) or not evaluation:
            raise RegistryError("evaluation: expected a non-empty dict")
        canonical_json(evaluation, "evaluation")  # refuse bad input before anything is written
        version = self.get_version(version_ref)
        return self.meta.attach_evaluation(version.version_id, evaluation,
                                           by or default_user())

    def evaluation(self, version_ref: str | int) -> dict[str, Any] | None:
        """The latest evaluation attached to the version, or None."""
        record = self.meta.latest_evaluation(self.get_version(version_ref).version_id)
        return None if record is None else record.evaluation

    def evaluation_record(self, version_ref: str | int) -> EvaluationRecord | None:
        """The latest attached evaluation with when and by whom it was attached, or None."""
        return self.meta.latest_evaluation(self.get_version(version_ref).version_id)

    def check_loadable(self, version: ModelVersion | str | int) -> dict[str, Any]:
        """Prove a version's artifact can be served before it becomes production: present,
        hashing to its name, and a well-formed causalcast weights file (the safetensors
        header, tensor byte ranges and embedded config the loader checks; no torch needed).
        Returns the embedded config; raises `ArtifactError` naming the version otherwise."""
        from causalcast.weights_header import WeightsError, check_weights_header

        if not isinstance(version, ModelVersion):
            version = self.get_version(version)
        try:
            data = self.artifacts.get(version.artifact_sha256)
        except ArtifactError as exc:
            raise ArtifactError(f"version {version.ref}: {exc}; stage unchanged") from None
        try:
            return check_weights_header(data, f"version {version.ref} artifact")
        except WeightsError as exc:
            raise ArtifactError(f"{exc}; it cannot be loaded, stage unchanged") from None

    # ------------------------------------------------------------------ stages
    def check_gates(self, ref: str | int, gates: Sequence[str] | None = None
                    ) -> list[GateResult]:
        """Run the gates on the version's recorded metrics, overlaid by its attached
        evaluation (where both hold a record, the evaluation's wins)."""
        version = self.get_version(ref)
        run = self.meta.get_run(version.run_id) if version.run_id else None
        attached = self.meta.latest_evaluation(version.version_id)
        return run_gates(GateContext(version, run, self.production(version.name),
                                     None if attached is None else attached.evaluation), gates)

    def promote(self, ref: str | int, *, stage: str = "production", by: str | None = None,
                reason: str = "", gates: Sequence[str] | None = None) -> Promotion:
        """Move a version to ``stage``. To production only if every gate passes (default: all
        default gates); raises `GateRefused` naming the failed gates otherwise. Records who,
        when, why and the gate results."""
        check_stage(stage)
        version = self.get_version(ref)
        results: list[GateResult] = []
        if stage == "production":
            results = self.check_gates(version.version_id, gates)
            failed = [r for r in results if not r.passed]
            if failed:
                raise GateRefused(f"promote {version.ref}: refused by "
                                  + "; ".join(f"gate {r.gate!r}: {r.detail}" for r in failed),
                                  results)
            self.check_loadable(version)  # a version that cannot be served never goes live
        moved = self.meta.set_stage(version.version_id, stage, by or default_user(), reason,
                                    [r.to_dict() for r in results])
        return Promotion(moved, results)

    def rollback(self, name: str, *, by: str | None = None, reason: str = "") -> ModelVersion:
        """Archive the production version of ``name`` and restore the one it replaced."""
        return self.meta.rollback(name, by or default_user(), reason)

    def history(self, name: str | None = None) -> list[StageEvent]:
        return self.meta.stage_history(name)

    # ------------------------------------------------------------------ maintenance
    def verify(self) -> VerifyReport:
        """Re-hash every artifact and check every reference. Needs no lock: versions are never
        deleted and gc never deletes a referenced object, so the references read first stay
        valid while the objects are listed."""
        report = VerifyReport()
        report.problems += self.meta.check_integrity()
        references = self.meta.artifact_references()
        report.n_versions = len(references)
        referenced = {digest for _, _, digest, _ in references}
        present = set()
        for digest in self.artifacts.digests():
            problem = self.artifacts.check(digest)
            if problem and digest not in referenced and not self.artifacts.exists(digest):
                continue  # an unreferenced object removed by a concurrent gc
            present.add(digest)
            if problem:
                report.problems.append(problem)
        report.n_objects = len(present)
        for version_id, ref, digest, size in references:
            if digest not in present and not self.artifacts.exists(digest):
                report.problems.append(f"version {ref} (id {version_id}): artifact {digest} "
                                       f"is missing")
            elif digest in present and self.artifacts.size(digest) != size:
                report.problems.append(f"version {ref} (id {version_id}): artifact {digest} "
                                       f"has {self.artifacts.size(digest)} bytes, the version "
                                       f"recorded {size}")
        report.n_unreferenced = len(present - referenced)
        if report.n_unreferenced:
            report.notes.append(f"{report.n_unreferenced} unreferenced objects (gc removes "
                                f"them after the grace period)")
        owner = self.artifacts.read_owner()
        if owner is not None and owner != self.meta.created_at():
            report.notes.append(f"the objects were written through a database created {owner}, "
                                f"not this one ({self.meta.created_at()}): gc refuses until "
                                f"`gc --force` (expected after `registry recover`)")
        temp = self.artifacts.temp_files()
        report.n_temp_files = len(temp)
        if temp:
            report.notes.append(f"{len(temp)} temporary files of interrupted writes (not "
                                f"objects; gc removes them)")
        return report

    def gc(self, grace_s: float = DEFAULT_GRACE_S, *, dry_run: bool = False,
           force: bool = False) -> GcReport:
        """Delete objects no version references and older than ``grace_s`` (see module doc for
        why this is safe while writers run), and stale temporary files.

        Refuses (`DamagedError`, nothing deleted) when the database and the objects disagree
        wholesale, the signature of a replaced, recreated or wrong database rather than of
        garbage: unreferenced objects older than the database itself, objects but no version
        at all, or versions none of whose objects is present. ``force`` overrides after a
        deliberate `recover` left unreadable objects behind."""
        if grace_s < 0:
            raise RegistryError(f"grace: expected seconds >= 0, got {grace_s}")
        report = GcReport(dry_run=dry_run)
        with self._lock():
            referenced = self.meta.referenced_digests()
            digests = list(self.artifacts.digests())
            if not force:
                self._refuse_wholesale_disagreement(referenced, digests)
            for digest in digests:
                if digest in referenced:
                    report.kept_referenced += 1
                elif self.artifacts.age_seconds(digest) < grace_s:
                    report.kept_young += 1
                else:
                    report.removed.append(digest)
                    report.bytes_freed += self.artifacts.size(digest)
                    if not dry_run:
                        self.artifacts.delete(digest)
            if not dry_run:
                report.temp_removed = self.artifacts.remove_temp_files(
                    max(grace_s, MIN_TEMP_AGE_S))
                if force:  # the operator vouched for this database: the objects are its now
                    self.artifacts.write_owner(self.meta.created_at())
        return report

    def _refuse_wholesale_disagreement(self, referenced: set[str], digests: list[str]) -> None:
        where = f"registry {redact(self._reopen[0]) if self._reopen else ''}".rstrip()
        advice = ("; nothing deleted. Run `causalcast registry verify`; restore a backup or "
                  "`causalcast registry recover`, then gc (or --force if you are sure)")
        if not digests:
            return
        present = referenced.intersection(digests)
        if referenced and not present:
            raise DamagedError(f"{where}: gc refused: none of the {len(referenced)} objects "
                               f"the versions reference is present, yet {len(digests)} other "
                               f"objects are (wrong object folder?){advice}")
        owner, created = self.artifacts.read_owner(), self.meta.created_at()
        if owner is not None and owner != created:
            raise DamagedError(f"{where}: gc refused: the objects belong to a registry database "
                               f"created {owner}, this database was created {created} "
                               f"(recreated or replaced?){advice}")
        if not referenced and any(self.artifacts.age_seconds(d) >= MIN_TEMP_AGE_S
                                  for d in digests):
            raise DamagedError(f"{where}: gc refused: the database references no object but "
                               f"{len(digests)} objects are stored{advice}")


def _timed_lock(file_lock: FileLock, timeout_s: float
                ) -> Callable[[], AbstractContextManager[Any]]:
    """The cross-store lock as a context-manager factory; a holder that never lets go (a hung
    process) becomes one clear `BusyError` after the timeout, not a filelock traceback."""

    @contextmanager
    def held() -> Iterator[None]:
        try:
            # The locked sections take milliseconds; poll often so waiters do not idle 50 ms.
            file_lock.acquire(poll_interval=LOCK_POLL_S)
        except Timeout:
            raise BusyError(f"registry lock {file_lock.lock_file}: held by another process for "
                            f"more than {timeout_s:g} s (a stalled writer or gc?); retry, or "
                            f"stop the holder") from None
        try:
            yield
        finally:
            file_lock.release()

    return held


def _reopen(home: str, busy_timeout_s: float, artifacts: str | None = None) -> Registry:
    return Registry.open(home, busy_timeout_s=busy_timeout_s, artifacts=artifacts)
