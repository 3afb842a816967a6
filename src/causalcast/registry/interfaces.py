"""The two storage interfaces the `Registry` composes.

Callers (the training runner, the CLI, serving) talk to `causalcast.registry.Registry`, which
composes a `MetadataStore` (runs, jobs, metrics, versions, stages) with an `ArtifactStore`
(immutable, content-addressed bytes) and one cross-store lock. Today the implementations are
SQLite (`sqlite_store.SQLiteStore`) and a local folder (`file_artifacts.FileArtifactStore`); a
PostgreSQL store or an object-storage artifact store only has to satisfy these Protocols (and
pass ``tests/registry/conformance``), so no caller changes when one is added. Every method the
`Registry` calls on a store is declared here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from causalcast.registry.records import (
    STAGES,
    EvaluationRecord,
    JobKey,
    JobRecord,
    ModelVersion,
    NewPrediction,
    NewVersion,
    PredictionRecord,
    RunRecord,
    StageEvent,
)


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

    def read_owner(self) -> str | None:
        """The creation time of the metadata store these objects belong to (None: unknown)."""
        ...

    def write_owner(self, owner: str) -> None:
        """Record which metadata store the objects belong to (creation, restore, recover)."""
        ...

    def location(self, digest: str) -> str:
        """Where the object lives (path or URL), for messages."""
        ...


@runtime_checkable
class MetadataStore(Protocol):
    """Runs, jobs, per-epoch metrics, versions and stages. Every method that changes state does
    so in one transaction: a reader sees the state before or after it, never a mix."""

    def close(self) -> None: ...
    def created_at(self) -> str:
        """ISO time the store was created (gc refuses objects older than their database)."""
        ...

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
    def job_counts(self, run_id: str) -> dict[str, int]:
        """Jobs of the run per status (every status in `JOB_STATUSES`, zeros included)."""
        ...

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

    # evaluations attached to versions (append-only; the latest one counts)
    def attach_evaluation(self, version_id: int, evaluation: dict[str, Any],
                          by: str) -> EvaluationRecord: ...
    def latest_evaluation(self, version_id: int) -> EvaluationRecord | None: ...

    # the prediction log (causalcast.monitoring): append-only forecasts, outcomes added once
    def append_predictions(self, predictions: Sequence[NewPrediction]) -> int:
        """Append a batch in one transaction (all rows checked first); consecutive horizons of
        one answer are stored as one answer (and its forecast). Returns the answers added."""
        ...

    def predictions(self, version_id: int | None = None, *, scored: bool | None = None,
                    since: str | None = None) -> list[PredictionRecord]:
        """Logged predictions, oldest first, with their outcome where recorded."""
        ...

    def record_outcomes(self, outcomes: Sequence[tuple[int, int, float, str]]) -> int:
        """(forecast_id, horizon, realised log return, outcome bar ISO time); a forecast's
        first outcome per horizon stands, later ones are ignored. Returns the outcomes
        added."""
        ...

    def prune_predictions(self, requested_before: str) -> int:
        """Retention: delete predictions (and outcomes) requested before an ISO time."""
        ...

    # maintenance
    def artifact_references(self) -> list[tuple[int, str, str, int]]: ...
    def referenced_digests(self) -> set[str]: ...
    def check_integrity(self, stages: Sequence[str] = STAGES) -> list[str]: ...
