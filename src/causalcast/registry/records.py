"""The registry's vocabulary: the records it stores and returns, and the errors it raises.

The storage interfaces that produce these records are in `causalcast.registry.interfaces`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

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


class DamagedError(RegistryError):
    """A store's bytes cannot be trusted (empty, truncated, not what its header claims, failing
    an integrity check). The message names the file and the damage; nothing is rewritten."""


class BusyError(RegistryError):
    """Another process held a lock longer than the timeout (a stalled or hung holder)."""


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
class EvaluationRecord:
    """An evaluation attached to a version (`Registry.attach_evaluation`)."""

    evaluation_id: int
    version_id: int
    evaluation: dict[str, Any]
    created_at: str
    by: str


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


@dataclass(frozen=True)
class Promotion:
    version: ModelVersion
    gates: list[GateResult]


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_versions: int = 0
    n_objects: int = 0
    n_unreferenced: int = 0
    n_temp_files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


@dataclass
class GcReport:
    removed: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    kept_referenced: int = 0
    kept_young: int = 0
    temp_removed: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)   # not frozen: the log's writer builds ~30 000 a second; frozen
class NewPrediction:      # dataclasses pay object.__setattr__ per field
    """One forecast to append to the prediction log (`MetadataStore.append_predictions`): one
    horizon of one answered request, with its whole distribution (location ``mean`` and
    ``scale`` of the log return; ``df`` for a Student-t, None for a Gaussian) and the served
    row (``forecast``: p_up, intervals, prices)."""

    version_id: int
    symbol: str
    as_of: str                   # ISO time of the last bar the forecast was made from
    horizon: int                 # bars ahead
    last_close: float
    mean: float
    scale: float
    df: float | None
    forecast: dict[str, Any]
    requested_at: str            # ISO UTC time the request was answered
    cached: bool
    source: str                  # "service" or "predict"
    monitor_status: str = ""     # the version's monitoring status when it answered


@dataclass(slots=True)
class PredictionRecord(NewPrediction):
    """A logged forecast (one horizon of one answer), with its realised log return once its
    outcome bar has arrived. ``answer_id`` names the answered request; ``forecast_id`` the
    forecast it served (a cache hit serves one forecast many times), and (forecast_id,
    horizon) is what an outcome belongs to (`MetadataStore.record_outcomes`)."""

    answer_id: int = 0
    forecast_id: int = 0
    realised: float | None = None
    outcome_as_of: str | None = None
