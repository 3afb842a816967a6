"""Where jobs execute: in this process (``inline``), a local process pool (default) or Ray
(extra ``[ray]``).

All three expose the same four calls the runner needs: `submit(fn, *args)` -> handle,
`wait(handles, timeout)` -> finished ``(handle, value, error)`` triples, `interrupt()` and
`close()`, plus `slots` (how many tasks run at once). The runner keeps at most `slots` tasks
in flight, so "started" in the registry means running, and nothing queues up in Ray's object
store.

* ``inline``: each job runs in the calling process when it is submitted, one at a time
  (``causalcast train`` without ``--parallel``, tuning trials); the same jobs, records and
  folders as the other backends, so sequential training is not a second code path.
* ``pool``: `concurrent.futures.ProcessPoolExecutor` with a forkserver context (spawn where
  there is none): workers start from a clean interpreter rather than a fork of a parent that
  may hold threads or open SQLite connections. One torch thread per worker, ``OMP_NUM_THREADS``
  and friends = 1, see `worker.init_worker`. A worker that dies (OOM killer, segfault) breaks
  the executor; `restart` builds a new one and the runner retries the jobs that were in
  flight.
* ``ray``: each job is a Ray task with ``num_cpus=1``. Connects to a running Ray (already
  initialised in this process, or ``address``), else starts a local one with
  ``num_cpus=workers`` and no dashboard, and shuts down only what it started.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from causalcast.training.worker import init_worker

BACKENDS = ("inline", "pool", "ray")
#: Backends whose tasks may run on another host (see `recording.records_in_workers`).
REMOTE_BACKENDS = ("ray",)


class BackendError(RuntimeError):
    """A backend cannot start (e.g. Ray not installed, no cluster at the address)."""


class Backend(Protocol):
    name: str
    slots: int

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any: ...
    def wait(self, handles: Iterable[Any], timeout: float
             ) -> list[tuple[Any, Any, BaseException | None]]: ...
    def lost_worker(self, error: BaseException) -> bool: ...
    def restart(self) -> None: ...
    def interrupt(self) -> None: ...
    def close(self, cancel: bool = False) -> None: ...


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Start workers without re-running the caller's script.

    A spawn/forkserver worker normally re-imports the parent's ``__main__`` by path (that is
    why multiprocessing code needs ``if __name__ == "__main__":``). Pool workers here run only
    functions of `causalcast.training.worker`, so they never need it: while a worker starts,
    the main module's ``__file__``/``__spec__`` are hidden from `multiprocessing.spawn`, so a
    script or docs example that calls `train_run` at top level does not run again in every
    worker."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    try:
        main.__dict__.pop("__file__", None)
        main.__spec__ = None
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _context() -> mp.context.BaseContext:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # No preloaded modules: each worker imports torch after init_worker set one thread.
        ctx.set_forkserver_preload([])
        return ctx
    return mp.get_context("spawn")


class InlineBackend:
    """Runs each task at `submit`, in this process: one slot, nothing to restart."""

    name = "inline"
    slots = 1

    def __init__(self) -> None:
        self._done: dict[int, tuple[Any, BaseException | None]] = {}
        self._next = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        handle, self._next = self._next, self._next + 1
        try:
            self._done[handle] = (fn(*args), None)
        except Exception as exc:   # as a pool reports a task's exception: on its handle
            self._done[handle] = (None, exc)
        return handle

    def wait(self, handles: Iterable[int], timeout: float
             ) -> list[tuple[int, Any, BaseException | None]]:
        return [(h, *self._done.pop(h)) for h in list(handles) if h in self._done]

    def lost_worker(self, error: BaseException) -> bool:
        return False

    def restart(self) -> None:
        pass

    def interrupt(self) -> None:
        pass  # the running job is in this process: the trainer's own guard saw the signal

    def close(self, cancel: bool = False) -> None:
        self._done.clear()


class PoolBackend:
    name = "pool"

    def __init__(self, workers: int | None = None) -> None:
        self.slots = workers or default_workers()
        if self.slots < 1:
            raise BackendError(f"workers: expected >= 1, got {self.slots}")
        self._executor = self._new()

    def _new(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.slots, mp_context=_context(),
                                      initializer=init_worker, initargs=(os.getpid(),))

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        with _main_not_reimported():  # 3.11 starts pool workers inside submit
            return self._executor.submit(fn, *args)

    def wait(self, handles: Iterable[cf.Future], timeout: float
             ) -> list[tuple[cf.Future, Any, BaseException | None]]:
        done, _ = cf.wait(list(handles), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        for fut in done:
            error = fut.exception()
            out.append((fut, None if error else fut.result(), error))
        return out

    def lost_worker(self, error: BaseException) -> bool:
        return isinstance(error, BrokenProcessPool)

    def restart(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new()

    def interrupt(self) -> None:
        """SIGINT to every worker: a training job checkpoints and returns 'interrupted', an
        idle worker ignores it (see `worker.init_worker`)."""
        for proc in list(getattr(self._executor, "_processes", {}).values()):
            with contextlib.suppress(ProcessLookupError, OSError):
                os.kill(proc.pid, signal.SIGINT)

    def close(self, cancel: bool = False) -> None:
        self._executor.shutdown(wait=True, cancel_futures=cancel)


class RayBackend:
    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise BackendError("backend ray: Ray is not installed; pip install "
                               "'causalcast[ray]'") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:
                    ray.init(num_cpus=workers or default_workers(), **kwargs)
            except Exception as exc:
                raise BackendError(f"backend ray: cannot start or reach Ray "
                                   f"({'address ' + address if address else 'local'}): "
                                   f"{type(exc).__name__}: {exc}") from exc
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.slots = max(min(cpus, workers) if workers else cpus, 1)
        self._remote: dict[Callable[..., Any], Any] = {}
        self._refs: list[Any] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(num_cpus=1, max_retries=1)(fn)
        ref = remote.remote(*args)
        self._refs.append(ref)
        return ref

    def wait(self, handles: Iterable[Any], timeout: float
             ) -> list[tuple[Any, Any, BaseException | None]]:
        handles = list(handles)
        if not handles:
            return []
        ready, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            try:
                out.append((ref, self._ray.get(ref), None))
            except Exception as exc:
                out.append((ref, None, exc))
        return out

    def lost_worker(self, error: BaseException) -> bool:
        return False  # Ray already retried system failures (max_retries)

    def restart(self) -> None:  # pragma: no cover - never needed, see lost_worker
        pass

    def interrupt(self) -> None:
        for ref in self._refs:
            with contextlib.suppress(Exception):
                self._ray.cancel(ref)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self.interrupt()
        if self._started:
            self._ray.shutdown()


def make_backend(name: str, workers: int | None = None, address: str | None = None) -> Backend:
    if name == "inline":
        if address:
            raise BackendError("--ray-address: only with --backend ray")
        if workers not in (None, 1):
            raise BackendError(f"workers: the inline backend runs one job at a time, got "
                               f"{workers} (use --parallel / --backend pool)")
        return InlineBackend()
    if name == "pool":
        if address:
            raise BackendError("--ray-address: only with --backend ray")
        return PoolBackend(workers)
    if name == "ray":
        return RayBackend(workers, address)
    raise BackendError(f"backend: choose from {list(BACKENDS)}, got {name!r}")
