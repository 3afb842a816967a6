"""Model registry: runs, jobs, per-epoch metrics, versions, stages and content-addressed
artifacts that many processes can write at once without losing or half-writing anything.

Typical worker::

    reg = Registry.open(home)
    job = reg.job_started(run_id, key)
    if job.status != "done":
        try:
            ...train, reg.log_epoch(run_id, key, epoch, {...}) ...
            reg.register_version(name, artifact_bytes, config, metrics, lineage,
                                 run_id=run_id, job=key)
        except Exception as exc:
            reg.job_failed(run_id, key, exc)
"""

from causalcast.registry.file_artifacts import FileArtifactStore, sha256_hex
from causalcast.registry.gates import (
    GATES,
    GateContext,
    baseline_comparison,
    default_gates,
    register_gate,
    significance_record,
)
from causalcast.registry.interfaces import ArtifactStore, MetadataStore
from causalcast.registry.lineage import Lineage, code_version, fingerprint_frames, fingerprint_json
from causalcast.registry.model_registry import (
    DEFAULT_GRACE_S,
    GcReport,
    Promotion,
    Registry,
    VerifyReport,
    default_user,
)
from causalcast.registry.records import (
    ALL_SYMBOLS,
    STAGES,
    ArtifactError,
    BusyError,
    DamagedError,
    EvaluationRecord,
    GateRefused,
    GateResult,
    JobKey,
    JobRecord,
    ModelVersion,
    NewPrediction,
    NotFoundError,
    PredictionRecord,
    RegistryError,
    RunRecord,
    StageEvent,
)
from causalcast.registry.sqlite_store import SQLiteStore

__all__ = [
    "ALL_SYMBOLS",
    "DEFAULT_GRACE_S",
    "GATES",
    "STAGES",
    "ArtifactError",
    "ArtifactStore",
    "BusyError",
    "DamagedError",
    "EvaluationRecord",
    "FileArtifactStore",
    "GateContext",
    "GateRefused",
    "GateResult",
    "GcReport",
    "JobKey",
    "JobRecord",
    "Lineage",
    "MetadataStore",
    "ModelVersion",
    "NewPrediction",
    "NotFoundError",
    "PredictionRecord",
    "Promotion",
    "Registry",
    "RegistryError",
    "RunRecord",
    "SQLiteStore",
    "StageEvent",
    "VerifyReport",
    "baseline_comparison",
    "code_version",
    "default_gates",
    "default_user",
    "fingerprint_frames",
    "fingerprint_json",
    "register_gate",
    "sha256_hex",
    "significance_record",
]
