"""The registry's vocabulary: records, errors, and the two storage interfaces.

Callers (the training runner, the CLI, serving) talk to `causalcast.registry.Registry`, which
composes a `MetadataStore` (runs, jobs, metrics, versions, stages) with an `ArtifactStore`
(immutable, content-addressed bytes) and one cross-store lock. Today the implementations are
SQLite (`store.SQLiteStore`) and a local folder (`artifacts.FileArtifactStore`); a PostgreSQL
store or an fsspec object-storage artifact store only has to satisfy these Protocols, so no caller
changes when one is added.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

STAGES: tuple[str, ...] = ("candidate", "production", "archived")
JOB_STATUSES: tuple[str, ...] = ("pending", "running", "done", "failed")
RUN_STATUSES: tuple[str, ...] = ("running", "done", "failed")
#: Symbol used in a `JobKey` for a global model (one network across all symbols).
ALL_SYMBOLS = "*"


class RegistryError(ValueError):
    """Bad input or a refused operation; the message names the field and the problem."""


class NotFoundError(RegistryError):
    """An unknown run, job, version or name."""


class ArtifactError(RegistryError):
    """An artifact is missing or its bytes do not hash to its name."""


class GateRefused(RegistryError):
    """Promotion refused; `results` says which gates failed and why."""

    def __init__(self, message: str, results: Sequence[GateResult]) -> None:
        super().__init__(message)
        self.results = list(results)


class JobKey(NamedTuple):
    """One unit of work of a run. ``symbol == ALL_SYMBOLS`` marks a global model."""

    symbol: str
    model: str
    fold: int


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    name: str
    status: str
    config: dict[str, Any]
    audit: dict[str, Any] | None
    code_version: dict[str, Any]
    created_at: str
    finished_at: str | None


@dataclass(frozen=True)
class JobRecord:
    job_id: int
    run_id: str
    symbol: str
    model: str
    fold: int
    status: str
    attempts: int
    worker: str | None
    error: str | None
    traceback: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    seconds: float | None
    version_id: int | None

    @property
    def key(self) -> JobKey:
        return JobKey(self.symbol, self.model, self.fold)


@dataclass(frozen=True)
class ModelVersion:
    version_id: int
    name: str
    version: int
    artifact_sha256: str
    artifact_size: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    data_fingerprint: str
    feature_config: dict[str, Any]
    split_config: dict[str, Any]
    code_version: dict[str, Any]
    lineage: dict[str, Any]
    run_id: str | None
    job_id: int | None
    created_at: str
    stage: str

    @property
    def ref(self) -> str:
        """Human reference ``name:version`` (the CLI accepts it, or the numeric id)."""
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class StageEvent:
    event_id: int
    version_id: int
    name: str
    version: int
    from_stage: str | None
    to_stage: str
    action: str  # register | promote | demote | replaced | rollback
    by: str
    at: str
    reason: str
    gates: list[dict[str, Any]]
    replaced_version_id: int | None


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "passed": self.passed, "detail": self.detail}


@dataclass
class NewVersion:
    """Everything the metadata store needs to insert one version (artifact already stored)."""

    name: str
    artifact_sha256: str
    artifact_size: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    data_fingerprint: str
    feature_config: dict[str, Any]
    split_config: dict[str, Any]
    code_version: dict[str, Any]
    lineage: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    job: JobKey | None = None


@runtime_checkable
class ArtifactStore(Protocol):
    """Immutable bytes named by their SHA-256. Writes are atomic: an object is either absent or
    complete; a killed writer may leave only temporary files, which are never listed as objects.
    """

    def put(self, data: bytes) -> str:
        """Store bytes (no-op if present, but refresh its age) and return the SHA-256."""
        ...

    def get(self, digest: str) -> bytes:
        """Bytes of an object, verified against its name; raises `ArtifactError`."""
        ...

    def exists(self, digest: str) -> bool: ...

    def delete(self, digest: str) -> None: ...

    def size(self, digest: str) -> int:
        """Bytes of the object; 0 if it is gone."""
        ...

    def digests(self) -> Iterator[str]:
        """Every complete object (temporary files excluded)."""
        ...

    def age_seconds(self, digest: str) -> float:
        """Seconds since the object was last written or re-put (gc's grace period)."""
        ...

    def check(self, digest: str) -> str | None:
        """Re-hash one object; None when sound, else what is wrong."""
        ...

    def temp_files(self) -> list[str]:
        """Leftover temporary files of interrupted writes (invisible as objects)."""
        ...

    def remove_temp_files(self, older_than_s: float) -> int: ...

    def location(self, digest: str) -> str:
        """Where the object lives (path or URL), for messages."""
        ...


@runtime_checkable
class MetadataStore(Protocol):
    """Runs, jobs, per-epoch metrics, versions and stages. Every method that changes state does
    so in one transaction: a reader sees the state before or after it, never a mix."""

    def close(self) -> None: ...

    # runs
    def create_run(self, run_id: str, name: str, config: dict[str, Any],
                   code_version: dict[str, Any]) -> RunRecord: ...
    def get_run(self, run_id: str) -> RunRecord: ...
    def list_runs(self) -> list[RunRecord]: ...
    def finish_run(self, run_id: str, status: str) -> None: ...
    def record_audit(self, run_id: str, audit: dict[str, Any]) -> None: ...

    # jobs
    def add_jobs(self, run_id: str, keys: Iterable[JobKey]) -> int: ...
    def start_job(self, run_id: str, key: JobKey, worker: str | None) -> JobRecord: ...
    def finish_job(self, run_id: str, key: JobKey) -> JobRecord: ...
    def fail_job(self, run_id: str, key: JobKey, error: str, traceback: str) -> JobRecord: ...
    def get_job(self, run_id: str, key: JobKey) -> JobRecord: ...
    def list_jobs(self, run_id: str, status: str | None = None) -> list[JobRecord]: ...
    def log_epoch(self, run_id: str, key: JobKey, epoch: int, metrics: dict[str, Any]) -> None: ...
    def epoch_metrics(self, run_id: str, key: JobKey) -> list[dict[str, Any]]: ...

    # versions and stages
    def insert_version(self, new: NewVersion, by: str) -> ModelVersion: ...
    def get_version(self, ref: str | int) -> ModelVersion: ...
    def list_versions(self, name: str | None = None, stage: str | None = None,
                      run_id: str | None = None) -> list[ModelVersion]: ...
    def production(self, name: str) -> ModelVersion | None: ...
    def set_stage(self, version_id: int, stage: str, by: str, reason: str,
                  gates: list[dict[str, Any]]) -> ModelVersion: ...
    def rollback(self, name: str, by: str, reason: str) -> ModelVersion: ...
    def stage_history(self, name: str | None = None) -> list[StageEvent]: ...

    # maintenance
    def artifact_references(self) -> list[tuple[int, str, str, int]]: ...
    def referenced_digests(self) -> set[str]: ...
    def check_integrity(self, stages: Sequence[str] = STAGES) -> list[str]: ...
