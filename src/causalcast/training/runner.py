"""The parallel runner: plan a run's (scope × model × fold) jobs, execute them on a process
pool or Ray, record everything in the registry, and resume a run from what it already did.

    from causalcast.training.runner import RunSpec, train_run

    summary = train_run(RunSpec(data="synthetic:8,2520,0.325,42",
                                models=("ridge", "lstm"), scopes=("global",)),
                        home=".causalcast")
    summary.run_id, summary.status, [j.version for j in summary.jobs]

One call = one run in the registry under ``home``: the run (its description as config), the
leakage audit (run as one more task beside the jobs, unless given or switched off), every job
planned as pending, marked running when a worker takes it, then done with a model version or
failed with its traceback. A failing job never stops the others. `train_run` with the id of an
existing run executes only the jobs that are not done (its description comes from the
registry); with an unchanged description and seed the registry ends with the same artifacts as
an uninterrupted run, whichever backend ran which part.

Job folders live under ``home/runs/<run_id>/`` (``final/`` and ``walk/``, then
``<model>/<scope>/fold<k>/``), with the predictions evaluation reads.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from causalcast.registry import NotFoundError, Registry, fingerprint_frames
from causalcast.registry.model_registry import new_run_id
from causalcast.training.backends import BACKENDS, Backend, make_backend
from causalcast.training.plan import (
    FINAL,
    PlanError,
    PlannedJob,
    RunSpec,
    parse_folds,
    plan_run,
)
from causalcast.training.recording import (
    JobReport,
    fill_from_version,
    record_lost,
    record_outcome,
)
from causalcast.training.trainer import SignalGuard
from causalcast.training.worker import execute_audit, execute_job

__all__ = ["FINAL", "JobReport", "PlanError", "RunSpec", "RunSummary", "RunnerError",
           "parse_folds", "train_run"]

POLL_S = 0.5
#: A job in flight when a pool worker died this many times is failed, not retried again.
MAX_LOST = 2
INTERRUPT_GRACE_S = 60.0


class RunnerError(RuntimeError):
    """The run cannot start or resume (the message says why and what to do)."""


@dataclass
class RunSummary:
    """What `train_run` did and what the run holds now."""

    run_id: str
    home: str
    status: str                       # "done" | "failed" | "interrupted"
    backend: str
    workers: int
    planned: int
    ran: int                          # jobs executed by this call
    skipped: int                      # already done before this call
    done: int
    failed: int
    seconds: float
    audit_passed: bool | None
    out_dir: str
    jobs: list[JobReport] = field(default_factory=list)

    @property
    def versions(self) -> dict[str, str]:
        """Job label -> registered version reference (``name:version``) of every done job."""
        return {j.label: j.version for j in self.jobs if j.version}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["jobs"] = [j.to_dict() for j in self.jobs]
        return d


class RunProgress:
    """One progress line for the whole run (done / failed / running / left, ETA) and one
    printed line per finished job. ETA = mean wall time per job finished in this call × jobs
    left: honest once a few jobs are in, and shown as "?" before."""

    def __init__(self, total: int, already: int, console: Console | None, enabled: bool):
        self.total, self.already = total, already
        self.done = self.failed = self.running = 0
        self.started = time.perf_counter()
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(TextColumn("[bold]training[/]"), BarColumn(),
                                      MofNCompleteColumn(), TextColumn("{task.description}"),
                                      TimeElapsedColumn(), console=self.console,
                                      transient=False)
            self._task = self._progress.add_task(self._text(), total=total, completed=already)
            self._progress.start()

    def _text(self) -> str:
        left = self.total - self.already - self.done - self.failed
        finished = self.done + self.failed
        eta = "?"
        if finished and left:
            eta = f"{(time.perf_counter() - self.started) / finished * left:.0f}s"
        elif not left:
            eta = "0s"
        return (f"[green]{self.already + self.done} done[/] [red]{self.failed} failed[/] "
                f"{self.running} running {left} left  ETA {eta}")

    def update(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.already + self.done + self.failed,
                                  description=self._text())

    def finished(self, report: JobReport) -> None:
        if report.status == "done":
            self.done += 1
        else:
            self.failed += 1
        if self.enabled:
            if report.status == "done":
                acc = "-" if report.dir_acc is None else f"{report.dir_acc:.3f}"
                line = (f"[green]done[/] {report.label}  {report.seconds or 0:.1f}s  "
                        f"dir-acc {acc}  -> {report.version}")
            else:
                line = f"[red]failed[/] {report.label}: {report.error}"
            self.console.print(line, highlight=False)
        self.update()

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False)

    def close(self) -> None:
        if self._progress is not None:
            self.update()
            self._progress.stop()
            self._progress = None


def _audit_settings(spec: RunSpec) -> dict[str, Any]:
    return {"seed": spec.seed, "features": spec.feature_config().model_dump(mode="json"),
            "split": spec.split_config(spec.n_folds).model_dump(mode="json")}


def _resolve(registry: Registry, spec: RunSpec | None, run_id: str | None, home: Path,
             out: str | Path | None) -> tuple[RunSpec, str, Path]:
    """The run's description, id and output folder; a known run id must match its record."""
    existing = None
    if run_id is not None:
        try:
            existing = registry.get_run(run_id)
        except NotFoundError:
            existing = None
    if existing is not None:
        stored = existing.config.get("spec")
        if stored is None:
            raise RunnerError(f"run {run_id}: not made by the training runner (no spec in its "
                              f"config); choose another --run-id")
        recorded = RunSpec.from_dict(stored)
        theirs = recorded.to_dict()
        if spec is not None and spec.to_dict() != theirs:
            diff = sorted(k for k, v in spec.to_dict().items() if theirs.get(k) != v)
            raise RunnerError(f"run {run_id}: was started with a different description "
                              f"(fields {diff}); resume it without changing them, or start a "
                              f"new run")
        return recorded, run_id, Path(existing.config["out"])
    if spec is None:
        raise RunnerError(f"run {run_id!r}: no such run in {home}; give a run description "
                          f"to start it")
    run_id = run_id or new_run_id()
    return spec, run_id, Path(out) if out is not None else home / "runs" / run_id


def _already_done(registry: Registry, run_id: str, jobs: list[PlannedJob]) -> list[JobReport]:
    records = {r.key: r for r in registry.jobs(run_id, "done")}
    out = []
    for job in jobs:
        rec = records.get(job.key)
        if rec is None:
            continue
        report = JobReport(symbol=job.key.symbol, model=job.key.model, fold=job.key.fold,
                           label=job.label, name=job.name, status="done", ran=False,
                           seconds=rec.seconds, job_dir=str(job.job_dir), worker=rec.worker)
        if rec.version_id is not None:
            fill_from_version(report, registry.get_version(rec.version_id))
        out.append(report)
    return out


def train_run(spec: RunSpec | None = None, *, home: str | Path = ".causalcast",
              run_id: str | None = None, backend: str = "pool", workers: int | None = None,
              ray_address: str | None = None, out: str | Path | None = None,
              audit: bool | dict[str, Any] | Any = True, audit_cuts: int = 5,
              name: str = "", progress: bool = True,
              console: Console | None = None) -> RunSummary:
    """Plan, execute and register a training run; see the module doc.

    ``spec``: the run description (None: resume ``run_id`` with its stored one).
    ``audit``: True runs the leakage audit as a task (``audit_cuts`` cut points per symbol),
    an `AuditReport` or its dict is recorded as given (e.g. one ``make run`` already
    computed), False records none (promotion's audit gate will then refuse).
    Raises `PlanError`/`RunnerError`/`BackendError` before anything runs if the description,
    the run id or the backend is unusable; job failures never raise (see `RunSummary`)."""
    from causalcast.training.data import resolve_source

    if backend not in BACKENDS:
        raise RunnerError(f"backend: choose from {list(BACKENDS)}, got {backend!r}")
    if workers is not None and workers < 1:
        raise RunnerError(f"workers: expected >= 1, got {workers}")
    started = time.perf_counter()
    home = Path(home)
    registry = Registry.open(home)
    try:
        spec, run_id, out_root = _resolve(registry, spec, run_id, home, out)
        try:
            frames, _ = resolve_source(spec.data, spec.symbols)
        except (KeyError, ValueError, FileNotFoundError) as exc:
            raise PlanError(f"data: {str(exc).strip(chr(39) + chr(34))}") from None
        jobs = plan_run(spec, list(frames), out_root)
        for job in jobs:  # what an interrupted job's message tells the user to run
            job.spec.resume_hint = f"causalcast train --home {home} --run-id {run_id}"
        fingerprints = {}
        for job in jobs:
            symbols = job.spec.symbols or tuple(frames)
            if symbols not in fingerprints:
                fingerprints[symbols] = fingerprint_frames({s: frames[s] for s in symbols})
        registry.start_run(run_id, name=name, config={"spec": spec.to_dict(),
                                                      "out": str(out_root)})
        registry.plan_jobs(run_id, [j.key for j in jobs])
        missing = set(registry.missing_jobs(run_id, [j.key for j in jobs]))
        reports = {r.label: r for r in _already_done(registry, run_id, jobs)}
        todo = deque(j for j in jobs if j.key in missing)
        run = registry.get_run(run_id)
        audit_task = None
        if run.audit is None and audit is not False and audit is not None:
            if audit is True:
                audit_task = (spec.data, spec.symbols, _audit_settings(spec), audit_cuts,
                              spec.seed)
            else:
                registry.record_audit(run_id, audit)
        shown = RunProgress(len(jobs), len(reports), console, progress)
        status = "done"
        n_workers = 0
        try:
            if todo or audit_task:
                shown.note(f"run {run_id}: {len(todo)} of {len(jobs)} jobs to train on "
                           f"{backend}" + (f" ({len(reports)} already done)" if reports
                                           else ""))
                pool = make_backend(backend, workers, ray_address)
                n_workers = pool.slots
                try:
                    with SignalGuard() as stop:   # checked between waits, at most POLL_S later
                        status = _execute(pool, registry, run_id, spec, todo, audit_task,
                                          fingerprints, home, reports, shown, stop)
                finally:
                    pool.close(cancel=status == "interrupted")
        finally:
            shown.close()
        registry.finish_run(run_id)
        run = registry.get_run(run_id)
        ordered = [reports[j.label] for j in jobs if j.label in reports]
        failed = sum(r.status == "failed" for r in ordered)
        if status != "interrupted":
            status = "done" if failed == 0 and len(ordered) == len(jobs) else "failed"
        return RunSummary(
            run_id=run_id, home=str(home), status=status, backend=backend, workers=n_workers,
            planned=len(jobs), ran=sum(r.ran for r in ordered),
            skipped=sum(not r.ran for r in ordered),
            done=sum(r.status == "done" for r in ordered), failed=failed,
            seconds=time.perf_counter() - started,
            audit_passed=None if run.audit is None else bool(run.audit.get("passed")),
            out_dir=str(out_root), jobs=ordered)
    finally:
        registry.close()


def _execute(pool: Backend, registry: Registry, run_id: str, spec: RunSpec,
             todo: deque[PlannedJob], audit_task: tuple | None,
             fingerprints: dict[tuple[str, ...], str], home: Path,
             reports: dict[str, JobReport], shown: RunProgress, stop: SignalGuard) -> str:
    """Keep `pool.slots` tasks in flight until every job has an outcome or a stop signal."""
    worker = f"{socket.gethostname()}:{os.getpid()}/{pool.name}"
    inflight: dict[Any, PlannedJob | None] = {}   # None: the audit task
    lost: dict[str, int] = {}
    audit_pending = audit_task is not None

    try:
        while todo or inflight or audit_pending:
            if stop.received:
                raise KeyboardInterrupt(stop.received)
            broken = False
            try:
                if audit_pending:
                    inflight[pool.submit(execute_audit, *audit_task)] = None
                    audit_pending = False
                while todo and len(inflight) < pool.slots:
                    job = todo[0]
                    if registry.job_started(run_id, job.key, worker=worker).status == "done":
                        todo.popleft()
                        continue  # finished by a concurrent invocation of the same run
                    inflight[pool.submit(execute_job, job.spec)] = job
                    todo.popleft()
                    shown.running += 1
            except Exception as exc:
                # A worker died between two submissions: the pool refuses new work. The job
                # stays queued; the restart below requeues what was in flight.
                if not pool.lost_worker(exc):
                    raise
                broken = True
            shown.update()
            for handle, value, error in pool.wait(list(inflight), POLL_S):
                job = inflight.pop(handle)
                if error is not None and pool.lost_worker(error):
                    broken = True
                if job is None:  # the audit
                    if error is not None and pool.lost_worker(error):
                        audit_pending = True
                        continue
                    record = value if error is None else {
                        "passed": False, "error": f"{type(error).__name__}: {error}"}
                    registry.record_audit(run_id, record)
                    shown.note(f"leakage audit: "
                               f"{'passed' if record.get('passed') else 'FAILED'}")
                    continue
                shown.running -= 1
                if error is None:
                    report = record_outcome(registry, run_id, job, value, spec,
                                            fingerprints[job.spec.symbols], home)
                elif pool.lost_worker(error):
                    lost[job.label] = lost.get(job.label, 0) + 1
                    if lost[job.label] < MAX_LOST:
                        todo.appendleft(job)
                        continue
                    report = record_lost(registry, run_id, job, f"worker process died "
                                         f"{MAX_LOST} times while running it ({error})")
                else:
                    report = record_lost(registry, run_id, job, error)
                reports[job.label] = report
                shown.finished(report)
            if broken:
                # Every future of a broken pool fails: requeue what is still in flight.
                shown.note("[yellow]a worker process died[/]: restarting the pool and "
                           "retrying the jobs it held")
                pool.restart()
                for handle, job in list(inflight.items()):
                    del inflight[handle]
                    if job is None:
                        audit_pending = True
                    else:
                        shown.running -= 1
                        todo.appendleft(job)
    except KeyboardInterrupt:
        shown.note(f"[bold yellow]stopping ({stop.received or 'interrupt'})[/]: running jobs "
                   f"checkpoint and are recorded; resume with: causalcast train --home {home} "
                   f"--run-id {run_id}")
        # Ctrl+C in a terminal reaches every process of the group: the workers got their
        # SIGINT already (a second one would skip their checkpoint). Other signals came to
        # the runner alone, so it passes a SIGINT on.
        _drain(pool, registry, run_id, spec, inflight, fingerprints, home, reports, shown,
               forward=stop.received != "SIGINT")
        return "interrupted"
    return "done"


def _drain(pool: Backend, registry: Registry, run_id: str, spec: RunSpec,
           inflight: dict[Any, PlannedJob | None], fingerprints: dict[tuple[str, ...], str],
           home: Path, reports: dict[str, JobReport], shown: RunProgress,
           forward: bool = True) -> None:
    """After Ctrl+C/SIGTERM: ask the workers to checkpoint, record what comes back."""
    if forward:
        pool.interrupt()
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    try:
        while inflight and time.monotonic() < deadline:
            for handle, value, error in pool.wait(list(inflight), POLL_S):
                job = inflight.pop(handle)
                if job is None:
                    continue
                shown.running -= 1
                if error is None:
                    report = record_outcome(registry, run_id, job, value, spec,
                                            fingerprints[job.spec.symbols], home)
                else:
                    report = record_lost(registry, run_id, job, f"interrupted: {error}")
                reports[job.label] = report
                shown.finished(report)
    except KeyboardInterrupt:
        pass  # a second Ctrl+C: stop waiting; unfinished jobs stay 'running' until a rerun
