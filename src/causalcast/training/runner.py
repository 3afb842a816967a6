"""The one way to train: `Executor` plans a run's (scope × model × fold) jobs from a
`RunSpec`, executes them on a backend (inline, process pool or Ray) and records each outcome.

    from causalcast.training.runner import Executor, RunSpec

    spec = RunSpec(data="synthetic:8,2520,0.325,42", models=("ridge", "lstm"),
                   scopes=("global",))
    summary = Executor(backend="pool").run(spec, home=".causalcast")
    summary.run_id, summary.status, [j.version for j in summary.jobs]

Every entry point goes through it: ``causalcast train`` (inline backend, job folders under
``--out``), ``causalcast train --parallel`` (pool or Ray, recorded in the registry),
``causalcast run`` (`causalcast.pipeline`), tuning trials (inline, folders) and the Python
API (`Executor`, or `train_run` for the registry case). Each job is started by one function,
`causalcast.training.job.run_job`, inside `worker.execute_job`; the same spec and seed give
byte-identical artifacts whichever entry point and backend ran them.

With a ``home`` one call = one run in the registry: the run (its description as config), the
leakage audit (run as one more task beside the jobs, unless given or switched off), every job
planned as pending, marked running when a worker takes it, then done with a model version or
failed with its traceback. A failing job never stops the others. Running the id of an existing
run executes only the jobs that are not done (its description comes from the registry).
Without a ``home`` nothing but the job folders is written. Who writes a job's records is one
rule, `recording.records_in_workers`: each Ray task itself when the home is a database every
node reaches, else this process.

Folder layout (one rule, `plan.plan_run`): ``<out>/final/<model>/<scope>/fold0/`` for final
fits and ``<out>/walk/<model>/<scope>/fold<k>/`` for walk-forward folds; ``<out>`` defaults to
``home/runs/<run_id>/``. **Resume** means the same everywhere: a job whose folder holds a
finished result for the same spec is not trained again, and an interrupted one continues from
its last checkpoint; a registry run resumes by its id, a folder run with ``resume=True``
(``--resume``).
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

from causalcast.registry import NotFoundError, Registry, fingerprint_frames
from causalcast.registry.model_registry import new_run_id
from causalcast.registry.urls import as_home, redact
from causalcast.training.backends import BACKENDS, Backend, make_backend
from causalcast.training.device import resolve_device
from causalcast.training.plan import (
    FINAL,
    PlanError,
    PlannedJob,
    RunSpec,
    parse_folds,
    plan_run,
)
from causalcast.training.progress import RunProgress
from causalcast.training.recording import (
    FolderRecorder,
    InTaskRecording,
    JobReport,
    RegistryRecorder,
    execute_and_record,
    fill_from_version,
    records_in_workers,
)
from causalcast.training.trainer import SignalGuard
from causalcast.training.worker import execute_audit, execute_job

__all__ = ["FINAL", "Executor", "JobReport", "PlanError", "RunSpec", "RunSummary",
           "RunnerError", "parse_folds", "train_run"]

POLL_S = 0.5
#: A job in flight when a pool worker died this many times is failed, not retried again.
MAX_LOST = 2
INTERRUPT_GRACE_S = 60.0


class RunnerError(RuntimeError):
    """The run cannot start or resume (the message says why and what to do)."""


@dataclass
class RunSummary:
    """What a run did and what it holds now."""

    run_id: str                       # "" for a folder run (no registry)
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
    #: `JobResult` dicts of the jobs executed by this call, in plan order (not in to_dict).
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def versions(self) -> dict[str, str]:
        """Job label -> registered version reference (``name:version``) of every done job."""
        return {j.label: j.version for j in self.jobs if j.version}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("results")
        d["jobs"] = [j.to_dict() for j in self.jobs]
        return d


def _audit_settings(spec: RunSpec) -> dict[str, Any]:
    return {"seed": spec.seed, "features": spec.feature_config().model_dump(mode="json"),
            "split": spec.split_config(spec.n_folds).model_dump(mode="json")}


def _resolve(registry: Registry, spec: RunSpec | None, run_id: str | None, home: Path | str,
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
        raise RunnerError(f"run {run_id!r}: no such run in {redact(str(home))}; give a run "
                          f"description to start it")
    run_id = run_id or new_run_id()
    return spec, run_id, Path(out) if out is not None else Path(home) / "runs" / run_id


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


def _frames(spec: RunSpec) -> dict[str, Any]:
    from causalcast.data.resolve import resolve_source

    try:
        frames, _ = resolve_source(spec.data, spec.symbols)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        # str(KeyError) wraps its message in quotes; a ValueError's own quotes are kept
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        raise PlanError(f"data: {text}") from None
    return frames


class Executor:
    """Plans, executes and records training runs; see the module doc.

    ``backend``: ``inline`` (this process, one job at a time), ``pool`` or ``ray``;
    ``workers``: parallel slots (pool/Ray); ``device``: ``auto``/``cpu``/``cuda[:N]`` for
    every job's training loop; ``threads``: torch threads of each job (None: the backend's
    default, one per pool worker); ``verbose``: per-epoch lines from each job (inline);
    ``progress``: the run's progress line and one line per finished job.
    Raises `RunnerError` at once for an unusable backend, worker count or device."""

    def __init__(self, backend: str = "pool", workers: int | None = None, *,
                 ray_address: str | None = None, device: str = "auto",
                 threads: int | None = None, verbose: bool = False, progress: bool = True,
                 console: Console | None = None) -> None:
        if backend not in BACKENDS:
            raise RunnerError(f"backend: choose from {list(BACKENDS)}, got {backend!r}")
        if workers is not None and workers < 1:
            raise RunnerError(f"workers: expected >= 1, got {workers}")
        try:
            resolve_device(device)
        except ValueError as exc:
            raise RunnerError(str(exc)) from None
        self.backend, self.workers, self.ray_address = backend, workers, ray_address
        self.device, self.threads, self.verbose = device, threads, verbose
        self.progress, self.console = progress, console

    # ------------------------------------------------------------------ the entry point
    def run(self, spec: RunSpec | None = None, *, home: str | Path | None = None,
            out: str | Path | None = None, run_id: str | None = None, resume: bool = True,
            audit: bool | dict[str, Any] | Any = True, audit_cuts: int = 5, name: str = "",
            resume_hint: str | None = None, artifacts: str | None = None) -> RunSummary:
        """Train `spec`'s jobs. With ``home``: one registry run (``spec`` None resumes
        ``run_id`` with its stored description; ``audit`` True runs the leakage audit as a
        task, an `AuditReport` or dict is recorded as given, False records none). Without:
        job folders under ``out`` only, ``resume`` deciding whether finished or interrupted
        jobs there continue. Raises `PlanError`/`RunnerError`/`BackendError` before anything
        runs if the description, run id or backend is unusable; job failures never raise.
        A ``postgresql://`` home keeps its artifacts at ``artifacts`` (an fsspec URL) and needs
        ``out``: job folders on a path every node of the cluster sees."""
        if home is None:
            if spec is None or out is None:
                raise RunnerError("a run without a registry home needs a description and an "
                                  "output folder (out)")
            return self._run_in_folder(spec, Path(out), resume, resume_hint)
        home = as_home(home)
        if isinstance(home, str) and out is None and spec is not None:
            raise RunnerError(f"--home {redact(home)}: a database registry needs --out, the "
                              f"folder for job outputs (on a path every worker node sees)")
        return self._run_in_registry(spec, home, out, run_id, audit, audit_cuts, name,
                                     artifacts)

    def _jobs(self, spec: RunSpec, frames: dict[str, Any], out_root: Path, *, resume: bool,
              resume_hint: str) -> list[PlannedJob]:
        """The planned jobs with this executor's placement (device, threads, verbosity)."""
        jobs = plan_run(spec, list(frames), out_root, longest_first=self.backend != "inline")
        for job in jobs:
            job.spec.resume, job.spec.resume_hint = resume, resume_hint
            job.spec.device, job.spec.verbose = self.device, self.verbose
            if self.threads is not None:
                job.spec.threads = self.threads
        return jobs

    def _run_in_folder(self, spec: RunSpec, out_root: Path, resume: bool,
                       resume_hint: str | None) -> RunSummary:
        started = time.perf_counter()
        frames = _frames(spec)
        jobs = self._jobs(spec, frames, out_root, resume=resume,
                          resume_hint=resume_hint or "run the same command again with --resume")
        reports: dict[str, JobReport] = {}
        status, n_workers = self._execute_all(FolderRecorder(), deque(jobs), None, reports,
                                              len(jobs), 0, hint=resume_hint or "--resume")
        return self._summary("", "", status, n_workers, jobs, reports, started, None,
                             out_root)

    def _run_in_registry(self, spec: RunSpec | None, home: Path | str, out: str | Path | None,
                         run_id: str | None, audit: Any, audit_cuts: int,
                         name: str, artifacts: str | None = None) -> RunSummary:
        started = time.perf_counter()
        registry = Registry.open(home, artifacts=artifacts)
        try:
            spec, run_id, out_root = _resolve(registry, spec, run_id, home, out)
            frames = _frames(spec)
            hint = f"causalcast train --home {redact(str(home))} --run-id {run_id}"
            jobs = self._jobs(spec, frames, out_root, resume=True, resume_hint=hint)
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
            audit_task = None
            if registry.get_run(run_id).audit is None and audit is not False \
                    and audit is not None:
                if audit is True:
                    audit_task = (spec.data, spec.symbols, _audit_settings(spec), audit_cuts,
                                  spec.seed)
                else:
                    registry.record_audit(run_id, audit)
            worker = f"{socket.gethostname()}:{os.getpid()}/{self.backend}"
            # Lineage paths are relative to the home folder (a database home: to the run's
            # output folder, recorded in the run's config).
            lineage_home = home if isinstance(home, Path) else out_root
            in_task = None
            if records_in_workers(home, self.backend):
                in_task = InTaskRecording(str(home), registry.artifacts_url or "", run_id, spec,
                                          fingerprints, lineage_home)
            recorder = RegistryRecorder(registry, run_id, spec, fingerprints, lineage_home,
                                        worker, in_task=in_task)
            status, n_workers = self._execute_all(recorder, todo, audit_task, reports,
                                                  len(jobs), len(reports), hint=hint,
                                                  run_id=run_id, registry=registry)
            registry.finish_run(run_id)
            run = registry.get_run(run_id)
            audit_passed = None if run.audit is None else bool(run.audit.get("passed"))
            return self._summary(run_id, redact(str(home)), status, n_workers, jobs, reports,
                                 started, audit_passed, out_root)
        finally:
            registry.close()

    def _summary(self, run_id: str, home: str, status: str, n_workers: int,
                 jobs: list[PlannedJob], reports: dict[str, JobReport], started: float,
                 audit_passed: bool | None, out_root: Path) -> RunSummary:
        ordered = [reports[j.label] for j in jobs if j.label in reports]
        failed = sum(r.status == "failed" for r in ordered)
        if status != "interrupted":
            status = "done" if failed == 0 and len(ordered) == len(jobs) else "failed"
        return RunSummary(
            run_id=run_id, home=home, status=status, backend=self.backend, workers=n_workers,
            planned=len(jobs), ran=sum(r.ran for r in ordered),
            skipped=sum(not r.ran for r in ordered),
            done=sum(r.status == "done" for r in ordered), failed=failed,
            seconds=time.perf_counter() - started, audit_passed=audit_passed,
            out_dir=str(out_root), jobs=ordered,
            results=[self._results[j.label] for j in jobs if j.label in self._results])

    # ------------------------------------------------------------------ execution
    def _execute_all(self, recorder: Any, todo: deque[PlannedJob], audit_task: tuple | None,
                     reports: dict[str, JobReport], total: int, already: int, *, hint: str,
                     run_id: str = "", registry: Registry | None = None) -> tuple[str, int]:
        """Start the backend, run everything, close it; returns (status, worker slots)."""
        self._results: dict[str, dict[str, Any]] = {}
        self._recorder, self._registry, self._run_id = recorder, registry, run_id
        self._hint, self._reports = hint, reports
        shown = RunProgress(total, already, self.console, self.progress)
        self._shown = shown
        status, n_workers = "done", 0
        try:
            if todo or audit_task:
                shown.note(f"run {run_id or '(folder)'}: {len(todo)} of {total} jobs to train "
                           f"on {self.backend}" + (f" ({already} already done)" if already
                                                   else ""))
                pool = make_backend(self.backend, self.workers, self.ray_address)
                n_workers = pool.slots
                try:
                    with SignalGuard() as stop:   # checked between waits, at most POLL_S later
                        status = self._execute(pool, todo, audit_task, stop)
                finally:
                    pool.close(cancel=status == "interrupted")
        finally:
            shown.close()
        return status, n_workers

    def _record(self, job: PlannedJob, value: Any, error: BaseException | str | None
                ) -> JobReport:
        if error is None:
            report = self._recorder.outcome(job, value)
            self._results[job.label] = value.result
        else:
            report = self._recorder.lost(job, error)
        self._reports[job.label] = report
        self._shown.finished(report)
        return report

    def _execute(self, pool: Backend, todo: deque[PlannedJob], audit_task: tuple | None,
                 stop: SignalGuard) -> str:
        """Keep `pool.slots` tasks in flight until every job has an outcome or a stop signal
        (a signal to this process, or a job that reports it was interrupted)."""
        shown = self._shown
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
                        if not self._recorder.claim(job):
                            todo.popleft()
                            continue  # finished by a concurrent invocation of the same run
                        in_task = getattr(self._recorder, "in_task", None)
                        handle = (pool.submit(execute_job, job.spec) if in_task is None else
                                  pool.submit(execute_and_record, job, in_task))
                        inflight[handle] = job
                        todo.popleft()
                        shown.running += 1
                except Exception as exc:
                    # A worker died between two submissions: the pool refuses new work. The
                    # job stays queued; the restart below requeues what was in flight.
                    if not pool.lost_worker(exc):
                        raise
                    broken = True
                shown.update()
                interrupted = False
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
                        self._registry.record_audit(self._run_id, record)
                        shown.note(f"leakage audit: "
                                   f"{'passed' if record.get('passed') else 'FAILED'}")
                        continue
                    shown.running -= 1
                    if error is not None and pool.lost_worker(error):
                        lost[job.label] = lost.get(job.label, 0) + 1
                        if lost[job.label] < MAX_LOST:
                            todo.appendleft(job)
                            continue
                        error = (f"worker process died {MAX_LOST} times while running it "
                                 f"({error})")
                    self._record(job, value, error)
                    interrupted |= error is None and value.result.get("status") == "interrupted"

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
                if interrupted:
                    raise KeyboardInterrupt("a job was interrupted")
        except KeyboardInterrupt:
            shown.note(f"[bold yellow]stopping ({stop.received or 'interrupt'})[/]: running "
                       f"jobs checkpoint and are recorded; resume with: {self._hint}")
            # Ctrl+C in a terminal reaches every process of the group: the workers got their
            # SIGINT already (a second one would skip their checkpoint). Other signals came to
            # the runner alone, so it passes a SIGINT on.
            self._drain(pool, inflight, forward=stop.received != "SIGINT")
            return "interrupted"
        return "done"

    def _drain(self, pool: Backend, inflight: dict[Any, PlannedJob | None],
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
                    self._shown.running -= 1
                    self._record(job, value, None if error is None else f"interrupted: {error}")
        except KeyboardInterrupt:
            pass  # a second Ctrl+C: stop waiting; unfinished jobs stay 'running' until a rerun


def train_run(spec: RunSpec | None = None, *, home: str | Path = ".causalcast",
              run_id: str | None = None, backend: str = "pool", workers: int | None = None,
              ray_address: str | None = None, out: str | Path | None = None,
              audit: bool | dict[str, Any] | Any = True, audit_cuts: int = 5,
              name: str = "", progress: bool = True, console: Console | None = None,
              device: str = "auto") -> RunSummary:
    """A registry run on `Executor` (kept as the short spelling of the common case)."""
    executor = Executor(backend, workers, ray_address=ray_address, device=device,
                        progress=progress, console=console)
    return executor.run(spec, home=home, out=out, run_id=run_id, audit=audit,
                        audit_cuts=audit_cuts, name=name)
