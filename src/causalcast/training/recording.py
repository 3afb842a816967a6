"""Turning a finished job into registry records (runs in the parent process only).

Why the parent: a Ray worker may run on another machine, where neither the SQLite file nor
the artifact folder is reachable (WAL needs one host), and one writer makes the order of the
records obvious. Each outcome becomes, in this order:

1. the job folder materialised on the parent's filesystem (files the worker returned, written
   atomically where missing; nothing to do when the worker shared the filesystem);
2. every epoch of ``metrics.jsonl`` as per-epoch metrics (`Registry.log_epoch`, idempotent);
3. a model version (`Registry.register_version(..., job=key)`: artifact = the bundle's
   safetensors bytes, config, metrics, lineage) which marks the job done in the same
   transaction — or `Registry.job_failed` with the error and traceback.

A run killed between two of these steps is repaired by the rerun: the job is not done, so it
runs again; `run_job` finds its finished folder (``result.json`` with the same spec key) and
returns at once, and the records are written again (epochs overwrite themselves).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from causalcast.io import atomic_write_bytes
from causalcast.registry import Lineage, ModelVersion, Registry, RegistryError
from causalcast.registry.lineage import nonfinite_to_none
from causalcast.training.plan import FINAL, FINAL_FOLD, PlannedJob, RunSpec
from causalcast.training.worker import JobOutcome

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
    worker: str | None = None
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
                    bundle_config: dict[str, Any], home: Path) -> Lineage:
    """Data fingerprint (the OHLCV bars of the job's symbols), feature and split settings,
    code version, seed, fold; where the job's predictions live, for evaluation."""
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
               "predictions": _relative(job_dir / "predictions.parquet", home)})


def materialise(job_dir: Path, files: dict[str, bytes]) -> None:
    """Write the outputs a remote worker returned, where they are not already present."""
    for name, data in files.items():
        path = job_dir / name
        if not path.exists():
            atomic_write_bytes(path, data)


def record_outcome(registry: Registry, run_id: str, job: PlannedJob, outcome: JobOutcome,
                   run: RunSpec, fingerprint: str, home: Path) -> JobReport:
    result = outcome.result
    report = JobReport(symbol=job.key.symbol, model=job.key.model, fold=job.key.fold,
                       label=job.label, name=job.name, status="failed", ran=True,
                       seconds=result.get("seconds"), job_dir=str(job.job_dir),
                       worker=outcome.worker)
    try:
        materialise(job.job_dir, outcome.files)
        for record in outcome.epochs:
            metrics = {k: v for k, v in record.items() if k not in ("kind", "epoch")}
            registry.log_epoch(run_id, job.key, int(record["epoch"]), metrics)
        if not outcome.ok:
            error = result.get("error") or f"job ended with status {result.get('status')!r}"
            if result.get("status") == "interrupted":
                error = f"interrupted: {error}"
            registry.job_failed(run_id, job.key, error, result.get("traceback") or "")
            report.error = error
            return report
        artifact = outcome.files.get(ARTIFACT)
        if artifact is None:
            raise RegistryError(f"{job.label}: the worker returned no {ARTIFACT}")
        bundle_config = json.loads(outcome.files["model.json"])["config"]
        version = registry.register_version(
            job.name, artifact, version_config(job, bundle_config),
            version_metrics(result, outcome.comparison),
            version_lineage(job, run, fingerprint, bundle_config, home),
            run_id=run_id, job=job.key)
        if result.get("sha256") and version.artifact_sha256 != result["sha256"]:
            raise RegistryError(f"{job.label}: registered bytes hash to "
                                f"{version.artifact_sha256}, the job saved {result['sha256']}")
        fill_from_version(report, version)
        report.status = "done"
    except Exception as exc:  # a job that cannot be recorded is a failed job, not a dead run
        registry.job_failed(run_id, job.key, exc)
        report.status, report.error = "failed", f"{type(exc).__name__}: {exc}"
    return report


def record_lost(registry: Registry, run_id: str, job: PlannedJob, error: BaseException | str,
                traceback_text: str | None = None) -> JobReport:
    """A job whose worker died or whose task raised: failed, with what is known."""
    registry.job_failed(run_id, job.key, error, traceback_text)
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return JobReport(symbol=job.key.symbol, model=job.key.model, fold=job.key.fold,
                     label=job.label, name=job.name, status="failed", ran=True,
                     job_dir=str(job.job_dir), error=message)


def fill_from_version(report: JobReport, version: ModelVersion) -> JobReport:
    report.version, report.version_id = version.ref, version.version_id
    report.sha256 = version.artifact_sha256
    report.dir_acc = version.metrics.get("dir_acc")
    report.val_loss = version.metrics.get("val_loss")
    return report


class RegistryRecorder:
    """Records every job of a run in the registry (see module doc): what `Executor.run` uses
    with a ``home``."""

    def __init__(self, registry: Registry, run_id: str, spec: RunSpec,
                 fingerprints: dict[tuple[str, ...], str], home: Path, worker: str) -> None:
        self.registry, self.run_id, self.spec = registry, run_id, spec
        self.fingerprints, self.home, self.worker = fingerprints, home, worker

    def claim(self, job: PlannedJob) -> bool:
        """Mark the job running; False when a concurrent invocation already finished it."""
        started = self.registry.job_started(self.run_id, job.key, worker=self.worker)
        return started.status != "done"

    def outcome(self, job: PlannedJob, outcome: JobOutcome) -> JobReport:
        return record_outcome(self.registry, self.run_id, job, outcome, self.spec,
                              self.fingerprints[job.spec.symbols], self.home)

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
