"""What runs inside a worker process (process pool or Ray): one job or the leakage audit.

`execute_job` runs `run_job` (which writes the job's folder on the worker's filesystem) and
returns a `JobOutcome` holding the result and the bytes of every output file, so whoever
records it (the parent, or the task itself with a registry every node reaches: see
`recording.records_in_workers`) can register the artifact and materialise the folder on its own
filesystem even when the worker runs on another machine of a Ray cluster.

This module imports only the standard library at the top: `init_worker` must set the thread
environment before torch is imported in a fresh pool worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Output files of a job folder returned to the parent (checkpoints stay on the worker).
OUTPUT_FILES = ("model.safetensors", "model.json", "predictions.parquet", "metrics.jsonl",
                "result.json", "failure.json")
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
PARENT_POLL_S = 1.0


@dataclass
class JobOutcome:
    """A finished job as the parent receives it (picklable, no open handles)."""

    result: dict[str, Any]                       # JobResult.to_dict()
    files: dict[str, bytes] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    comparison: dict[str, Any] | None = None     # evaluation.scores.beats_naive_record
    worker: str = ""                             # host:pid that trained it
    report: Any = None                           # recording.JobReport when the task recorded

    @property
    def ok(self) -> bool:
        return self.result.get("status") == "ok"


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def init_worker(parent_pid: int | None = None) -> None:
    """Pool worker start-up: one thread for every math library, Ctrl+C left to the trainer
    (an idle worker ignores SIGINT; a training one checkpoints and returns 'interrupted'),
    and exit when the parent is gone so a SIGKILLed run leaves no orphans."""
    os.environ.update(THREAD_ENV)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)
    if parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True,
                         name="causalcast-parent-watch").start()


def _exit_with_parent(parent_pid: int) -> None:
    import psutil

    while True:
        time.sleep(PARENT_POLL_S)
        try:
            alive = psutil.Process(parent_pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        if not alive:
            os._exit(1)  # files are written atomically: stopping anywhere is safe


def _read_files(job_dir: Path) -> dict[str, bytes]:
    out = {}
    for name in OUTPUT_FILES:
        path = job_dir / name
        if path.is_file():
            out[name] = path.read_bytes()
    return out


def _epochs(job_dir: Path) -> list[dict[str, Any]]:
    from causalcast.training.trainer import METRICS, read_jsonl

    return [r for r in read_jsonl(job_dir / METRICS) if r.get("kind") == "epoch"]


def naive_comparison(predictions_path: str | Path, horizon: int) -> dict[str, Any] | None:
    """The job's "beats naive" record from its validation predictions: the one definition
    in `causalcast.evaluation.scores` (validation MSE against the naive zero-return
    forecast), the record the registry's ``beats_naive_baseline`` gate reads."""
    from causalcast.evaluation.predictions import load_predictions
    from causalcast.evaluation.scores import beats_naive_record, validation_vs_naive

    return beats_naive_record(validation_vs_naive(load_predictions(predictions_path), horizon))


def execute_job(spec: Any) -> JobOutcome:
    """Run one `JobSpec` and package what the parent records. Never raises."""
    from causalcast.training.job import JobResult, run_job

    try:
        result = run_job(spec)
    except BaseException as exc:  # run_job catches fit failures; this is the last line
        result = JobResult(status="failed", model=spec.model, scope="?", fold=spec.fold,
                           job_dir="", error=f"{type(exc).__name__}: {exc}",
                           traceback=traceback.format_exc())
        if not isinstance(exc, Exception):
            result.status = "interrupted"
    outcome = JobOutcome(result=result.to_dict(), worker=worker_label())
    if result.job_dir:
        job_dir = Path(result.job_dir)
        try:
            outcome.files = _read_files(job_dir)
            outcome.epochs = _epochs(job_dir)
            if result.status == "ok" and result.predictions:
                outcome.comparison = naive_comparison(result.predictions, spec.horizons[0])
        except Exception as exc:  # unreadable outputs: the job cannot be registered
            outcome.result.update(status="failed", error=f"reading outputs: "
                                  f"{type(exc).__name__}: {exc}",
                                  traceback=traceback.format_exc())
    return outcome


def execute_audit(data: str, symbols: tuple[str, ...] | None, settings: dict[str, Any],
                  n_cuts: int, seed: int) -> dict[str, Any]:
    """The leakage audit on the run's data, as a task beside the training jobs."""
    from causalcast.audit import run_audit
    from causalcast.config import Settings
    from causalcast.data.resolve import resolve_source

    try:
        frames, _ = resolve_source(data, symbols)
        return run_audit(frames, Settings.model_validate(settings), n_cuts=n_cuts,
                         seed=seed).to_dict()
    except Exception as exc:
        return {"passed": False, "n_checks": 0, "n_failures": 1, "checks": [],
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
