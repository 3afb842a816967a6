"""Turning a finished job into registry records: one function, `record_outcome`, run where
`records_in_workers` says.

**Where.** A registry every node reaches (a ``postgresql://`` home with its artifacts in an
object store) is written by the Ray task that ran the job: `execute_and_record` opens the
registry from its URL, records and closes it, so results land in PostgreSQL as each task ends,
whichever node it ran on, and the driver only reads the report it gets back. A SQLite registry
lives on the driver's disk (WAL needs one host): Ray workers elsewhere cannot reach it, so the
driver records what the task returns. Both places call the same `record_outcome`.

**What.** Each outcome becomes, in this order:

1. the job folder materialised on the recording process's filesystem (files the worker returned,
   written atomically where missing; nothing to do when it shares the worker's filesystem);
2. every epoch of ``metrics.jsonl`` as per-epoch metrics (`Registry.log_epoch`, idempotent);
3. a model version (`Registry.register_version(..., job=key)`: artifact = the bundle's
   safetensors bytes, config, metrics, lineage with who trained and who recorded it) which
   marks the job done in the same transaction — or `Registry.job_failed` with the error and
   traceback.

**Exactly once.** The job's row is locked while its version is registered, and a job already
done with a version gets that version back instead of a second one (`insert_version`). So a Ray
task re-executed after its node died having recorded (or a rerun after a driver was killed
between two steps) re-records harmlessly: `run_job` finds its finished folder (``result.json``
with the same spec key) and returns at once, epochs overwrite themselves, and registration
returns the existing version; a failure report never undoes a done job.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from causalcast.io import atomic_write_bytes
from causalcast.registry import Lineage, ModelVersion, Registry, RegistryError
from causalcast.registry.lineage import nonfinite_to_none
from causalcast.registry.urls import is_database_url
from causalcast.training.backends import REMOTE_BACKENDS
from causalcast.training.plan import FINAL, FINAL_FOLD, PlannedJob, RunSpec
from causalcast.training.worker import JobOutcome, execute_job, worker_label

ARTIFACT = "model.safetensors"


@dataclass
class JobReport:
    """One job's final state in a run, as `train_run` returns and ``--json`` prints it."""

    symbol: str
    model: str
    fold: int
    label: str                      # "lstm/SYN000/final"
    name: str                       # registry version name
    status: str                     # "done" | "failed"
    ran: bool                       # executed in this invocation (False: done before)
    version: str | None = None      # "name:version"
    version_id: int | None = None
    sha256: str | None = None
    dir_acc: float | None = None    # test range, first horizon
    val_loss: float | None = None
    seconds: float | None = None
    job_dir: str | None = None
    worker: str | None = None       # host:pid that trained it
    recorded_by: str | None = None  # host:pid that wrote its records (driver or the worker)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _relative(path: str | Path, home: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(home.resolve()))
    except ValueError:
        return str(path)


def version_config(job: PlannedJob, bundle_config: dict[str, Any]) -> dict[str, Any]:
    """What was trained and how: model architecture, training settings, the job's spec."""
    meta = bundle_config.get("meta", {})
    return {
        "model": job.key.model, "model_config": bundle_config.get("model"),
        "train": meta.get("train"), "profile": meta.get("profile"),
        "horizons": bundle_config.get("horizons"), "lookback": bundle_config.get("lookback"),
        "feature_names": bundle_config.get("feature_names"), "symbols": meta.get("symbols"),
        "fold": {"kind": FINAL if job.key.fold == FINAL_FOLD else "walk-forward",
                 "index": job.spec.fold, "n_folds": job.spec.n_folds},
        "job_spec": json.loads(json.dumps(job.spec.identity(), default=list)),
    }


def version_metrics(result: dict[str, Any], comparison: dict[str, Any] | None
                    ) -> dict[str, Any]:
    """Test-range scores (`evaluation.scores.job_scores`), the validation loss and training
    summary, and the "beats naive" record the promotion gate reads."""
    train = result.get("train", {})
    test = result.get("metrics", {})
    out = {"test": test, "dir_acc": test.get("dir_acc"), "val_loss": train.get("best_val_loss"),
           "best_epoch": train.get("best_epoch"), "epochs": train.get("epochs"),
           "stopped_early": train.get("stopped_early")}
    if comparison is not None:
        out["baseline_comparison"] = comparison
    return nonfinite_to_none(out)   # NaN/Inf metrics are stored as null


def version_lineage(job: PlannedJob, run: RunSpec, fingerprint: str,
                    bundle_config: dict[str, Any], home: Path, *, trained_by: str = "",
                    recorded_by: str = "") -> Lineage:
    """Data fingerprint (the OHLCV bars of the job's symbols), feature and split settings,
    code version, seed, fold; where the job's predictions live, for evaluation; which process
    (``host:pid``) trained the job and which recorded it."""
    meta = bundle_config.get("meta", {})
    job_dir = job.job_dir
    return Lineage(
        data_fingerprint=fingerprint,
        feature_config=run.feature_config().model_dump(mode="json"),
        split_config=run.split_config(job.spec.n_folds).model_dump(mode="json"),
        symbol=job.key.symbol, model=job.key.model, fold=job.key.fold, seed=job.spec.seed,
        extra={"fold_kind": FINAL if job.key.fold == FINAL_FOLD else "walk-forward",
               "fold_index": job.spec.fold, "n_folds": job.spec.n_folds,
               "scope": job.scope, "symbols": meta.get("symbols"), "data": job.spec.data,
               "windows_sha256": meta.get("data_sha256"),
               "fold_ranges": meta.get("fold"),
               "job_dir": _relative(job_dir, home),
               "predictions": _relative(job_dir / "predictions.parquet", home),
               "trained_by": trained_by, "recorded_by": recorded_by})


def materialise(job_dir: Path, files: dict[str, bytes]) -> None:
    """Write the outputs a remote worker returned, where they are not already present."""
    for name, data in files.items():
        path = job_dir / name
        if not path.exists():
            atomic_write_bytes(path, data)


def record_outcome(registry: Registry, run_id: str, job: PlannedJob, outcome: JobOutcome,
                   run: RunSpec, fingerprint: str, home: Path) -> JobReport:
    """Record one job's outcome (see the module doc); never raises for the job's own faults:
    a job that cannot be recorded is a failed job, not a dead run."""
    result = outcome.result
    report = JobReport(symbol=job.key.symbol, model=job.key.model, fold=job.key.fold,
                       label=job.label, name=job.name, status="failed", ran=True,
                       seconds=result.get("seconds"), job_dir=str(job.job_dir),
                       worker=outcome.worker, recorded_by=worker_label())
    try:
        materialise(job.job_dir, outcome.files)
        for record in outcome.epochs:
            metrics = {k: v for k, v in record.items() if k not in ("kind", "epoch")}
            registry.log_epoch(run_id, job.key, int(record["epoch"]), metrics)
        if not outcome.ok:
            error = result.get("error") or f"job ended with status {result.get('status')!r}"
            if result.get("status") == "interrupted":
                error = f"interrupted: {error}"
            return _fail(registry, run_id, job, error, result.get("traceback") or "", report)
        artifact = outcome.files.get(ARTIFACT)
        if artifact is None:
            raise RegistryError(f"{job.label}: the worker returned no {ARTIFACT}")
        bundle_config = json.loads(outcome.files["model.json"])["config"]
        version = registry.register_version(
            job.name, artifact, version_config(job, bundle_config),
            version_metrics(result, outcome.comparison),
            version_lineage(job, run, fingerprint, bundle_config, home,
                            trained_by=outcome.worker, recorded_by=report.recorded_by or ""),
            run_id=run_id, job=job.key)
        if result.get("sha256") and version.artifact_sha256 != result["sha256"]:
            raise RegistryError(f"{job.label}: registered bytes hash to "
                                f"{version.artifact_sha256}, the job saved {result['sha256']}")
        fill_from_version(report, version)
        report.status = "done"
    except Exception as exc:  # a job that cannot be recorded is a failed job, not a dead run
        _fail(registry, run_id, job, exc, None, report)
    return report


def _fail(registry: Registry, run_id: str, job: PlannedJob, error: BaseException | str,
          traceback_text: str | None, report: JobReport) -> JobReport:
    """Record a failure, unless the job is done already (an earlier attempt of the same task
    recorded it before its node died): then report that version, the registry's truth."""
    record = registry.job_failed(run_id, job.key, error, traceback_text)
    if record.status == "done" and record.version_id is not None:
        fill_from_version(report, registry.get_version(record.version_id))
        report.status, report.error = "done", None
        return report
    report.status = "failed"
    report.error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return report


def record_lost(registry: Registry, run_id: str, job: PlannedJob, error: BaseException | str,
                traceback_text: str | None = None) -> JobReport:
    """A job whose worker died or whose task raised: failed, with what is known."""
    report = JobReport(symbol=job.key.symbol, model=job.key.model, fold=job.key.fold,
                       label=job.label, name=job.name, status="failed", ran=True,
                       job_dir=str(job.job_dir), recorded_by=worker_label())
    return _fail(registry, run_id, job, error, traceback_text, report)


def fill_from_version(report: JobReport, version: ModelVersion) -> JobReport:
    report.version, report.version_id = version.ref, version.version_id
    report.sha256 = version.artifact_sha256
    report.dir_acc = version.metrics.get("dir_acc")
    report.val_loss = version.metrics.get("val_loss")
    return report


def records_in_workers(home: str | Path, backend: str) -> bool:
    """Where a run's results are recorded, the one rule: by the task that ran the job when the
    task may run on another host (Ray) and every host reaches the registry (a database home,
    artifacts in an object store); otherwise by the driver (SQLite lives on its disk; a local
    process pool gains nothing from more writers)."""
    return backend in REMOTE_BACKENDS and is_database_url(str(home))


@dataclass(frozen=True)
class InTaskRecording:
    """What a task needs to record its own job: the registry's URLs and the run's
    description, no open connection, so it pickles to any node of a cluster."""

    home: str                                   # postgresql://...
    artifacts: str                              # the artifact store's fsspec URL
    run_id: str
    spec: RunSpec
    fingerprints: dict[tuple[str, ...], str]
    lineage_home: Path                          # lineage paths are relative to it
    busy_timeout_s: float = 60.0


def execute_and_record(job: PlannedJob, where: InTaskRecording) -> JobOutcome:
    """A Ray task's body when it records its own result: run the job (`execute_job`), open the
    registry from its URL, record with `record_outcome` and close it again (a pool per task:
    a long-lived worker holds no idle connections between jobs). The returned outcome carries
    the `JobReport`, so the driver writes nothing. Raises only when the registry cannot be
    opened; the driver then records the job as failed with that error."""
    outcome = execute_job(job.spec)
    with Registry.open(where.home, artifacts=where.artifacts, create=False,
                       busy_timeout_s=where.busy_timeout_s) as registry:
        outcome.report = record_outcome(registry, where.run_id, job, outcome, where.spec,
                                        where.fingerprints[job.spec.symbols],
                                        where.lineage_home)
    return outcome


class RegistryRecorder:
    """Records every job of a run in the registry (see module doc): what `Executor.run` uses
    with a ``home``. ``in_task`` set: the tasks record their own results (submit
    `execute_and_record` with it) and `outcome` only passes their reports on."""

    def __init__(self, registry: Registry, run_id: str, spec: RunSpec,
                 fingerprints: dict[tuple[str, ...], str], home: Path, worker: str, *,
                 in_task: InTaskRecording | None = None) -> None:
        self.registry, self.run_id, self.spec = registry, run_id, spec
        self.fingerprints, self.home, self.worker = fingerprints, home, worker
        self.in_task = in_task

    def claim(self, job: PlannedJob) -> bool:
        """Mark the job running; False when a concurrent invocation already finished it."""
        started = self.registry.job_started(self.run_id, job.key, worker=self.worker)
        return started.status != "done"

    def outcome(self, job: PlannedJob, outcome: JobOutcome) -> JobReport:
        if outcome.report is None:
            return record_outcome(self.registry, self.run_id, job, outcome, self.spec,
                                  self.fingerprints[job.spec.symbols], self.home)
        report: JobReport = outcome.report  # recorded by the task, where it ran
        try:  # the driver's copy of the folder, as when it records (evaluation reads it)
            materialise(job.job_dir, outcome.files)
        except OSError as exc:
            report.error = (f"recorded by {report.recorded_by}, but the job folder could not "
                            f"be copied here: {exc}")
        return report

    def lost(self, job: PlannedJob, error: BaseException | str) -> JobReport:
        return record_lost(self.registry, self.run_id, job, error)


class FolderRecorder:
    """Records nothing beyond the job folders themselves (``causalcast train --out DIR``,
    tuning trials): the report is read from the job's own result."""

    def claim(self, job: PlannedJob) -> bool:
        return True

    def outcome(self, job: PlannedJob, outcome: JobOutcome) -> JobReport:
        result = outcome.result
        report = JobReport(symbol=job.key.symbol, model=job.key.model, fold=job.key.fold,
                           label=job.label, name=job.name, status="failed", ran=True,
                           sha256=result.get("sha256"),
                           dir_acc=(result.get("metrics") or {}).get("dir_acc"),
                           val_loss=(result.get("train") or {}).get("best_val_loss"),
                           seconds=result.get("seconds"), job_dir=str(job.job_dir),
                           worker=outcome.worker)
        if outcome.ok:
            report.status = "done"
        else:
            report.error = result.get("error") or f"job ended with status {result.get('status')!r}"
        return report

    def lost(self, job: PlannedJob, error: BaseException | str) -> JobReport:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return JobReport(symbol=job.key.symbol, model=job.key.model, fold=job.key.fold,
                         label=job.label, name=job.name, status="failed", ran=True,
                         job_dir=str(job.job_dir), error=message)
