"""How the blocked scan runs for one shape: chunk length and thread count.

The blocked scan (`scan._blocked`) issues about 4 (c + L / c) vectorised operations, each
over a slice of S * L / c elements (S = batch x channels x state size): c = sqrt(L) gives the
fewest operations. Threads help only when a slice is large: every parallel operation ends in
a barrier, and on a machine shared with another CPU-bound process one of the two threads is
often descheduled, so the barrier waits a scheduler slice (milliseconds) for work worth
microseconds. Hence the deterministic rule `default_plan`: a slice below `PARALLEL_SLICE`
elements runs on one thread.

`tune_plan` measures a few candidates on the real shape once, keeps the fastest, and stores it
in a JSON file under the user's cache directory (``$CAUSALCAST_CACHE_DIR`` or
``$XDG_CACHE_HOME/causalcast`` or ``~/.cache/causalcast``); `plan_for` reads that cache and
falls back to `default_plan` when a shape was never tuned; with ``CAUSALCAST_SCAN_AUTOTUNE=1``
`scan.selective_scan` tunes every new shape on its first call. Results never depend on the plan
beyond float rounding (tests/models/test_scan.py checks every chunk length against the reference).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

#: Elements per vectorised step below which a second thread costs more than it saves
#: (PyTorch's own grain size is 32768; on a shared machine the barrier is the cost). Measured
#: with one competing busy process on 2 loaded cores, a full selective_scan fwd+bwd at
#: L = 1024: one thread 2.35 s vs two 3.66 s at 131k elements per step, 5.9 s vs 11.4 s at
#: 524k; a 4 MB step is long enough to amortise a missed barrier.
PARALLEL_SLICE = 1 << 20
CACHE_FILE = "scan_plans.json"


@dataclass(frozen=True)
class ScanPlan:
    chunk: int      # steps per chunk in the blocked scan
    threads: int    # torch threads while the scan's loops run (0 = leave as is)


def chunk_size(length: int) -> int:
    """Chunk length near sqrt(L); a divisor of L when one is close, so no padding is needed."""
    root = math.sqrt(length)
    divisors = [c for c in range(max(2, int(root / 2)), int(2 * root) + 1) if length % c == 0]
    if divisors:
        return min(divisors, key=lambda c: (abs(c - root), c))
    return max(2, round(root))


def default_plan(length: int, inner: int) -> ScanPlan:
    """The deterministic rule: chunk ~ sqrt(L); one thread when a step's slice is small.

    `inner` is the number of elements per time step (batch x every trailing dimension)."""
    chunk = chunk_size(length)
    slice_elements = inner * -(-length // chunk)
    return ScanPlan(chunk=chunk, threads=1 if slice_elements < PARALLEL_SLICE else 0)


def _cache_dir() -> Path:
    if os.environ.get("CAUSALCAST_CACHE_DIR"):
        return Path(os.environ["CAUSALCAST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "causalcast"


def _key(length: int, inner: int, dtype: torch.dtype) -> str:
    return f"L{length}-S{inner}-{str(dtype).removeprefix('torch.')}-t{torch.get_num_threads()}"


_plans: dict[str, ScanPlan] | None = None


def _load() -> dict[str, ScanPlan]:
    global _plans
    if _plans is None:
        _plans = {}
        try:
            raw = json.loads((_cache_dir() / CACHE_FILE).read_text())
            _plans = {k: ScanPlan(int(v["chunk"]), int(v["threads"])) for k, v in raw.items()}
        except (OSError, ValueError, KeyError, TypeError):
            _plans = {}          # no cache, or an unreadable one: the default rule applies
    return _plans


def is_tuned(length: int, inner: int, dtype: torch.dtype) -> bool:
    return _key(length, inner, dtype) in _load()


def autotune_enabled() -> bool:
    """``CAUSALCAST_SCAN_AUTOTUNE=1``: tune each new shape on first use (then cached)."""
    return os.environ.get("CAUSALCAST_SCAN_AUTOTUNE", "") == "1"


def plan_for(length: int, inner: int, dtype: torch.dtype) -> ScanPlan:
    """The tuned plan for this shape when one is cached, else `default_plan`."""
    return _load().get(_key(length, inner, dtype)) or default_plan(length, inner)


def tune_plan(length: int, inner: int, dtype: torch.dtype,
              run: Callable[[ScanPlan], object], reps: int = 3) -> ScanPlan:
    """Time `run(plan)` for a few chunk lengths and thread counts, cache and return the best.

    Candidates: sqrt(L) / 2, sqrt(L), 2 sqrt(L) chunks, each with one thread and with all of
    them; the median of `reps` runs decides. The cache write is atomic (rename)."""
    root = chunk_size(length)
    chunks = sorted({max(2, root // 2), root, min(length, 2 * root)})
    candidates = [ScanPlan(c, t) for c in chunks for t in (1, 0)]
    best, best_time = default_plan(length, inner), math.inf
    for plan in candidates:
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            run(plan)
            times.append(time.perf_counter() - start)
        median = sorted(times)[len(times) // 2]
        if median < best_time:
            best, best_time = plan, median
    plans = _load()
    plans[_key(length, inner, dtype)] = best
    directory = _cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{CACHE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps({k: asdict(v) for k, v in plans.items()}, indent=1))
        tmp.replace(directory / CACHE_FILE)
    except OSError:
        pass                     # a read-only home: the plan still lives for this process
    return best


class threads_for:
    """Context manager: run the scan's loops with `plan.threads` torch threads (0 = as is)."""

    def __init__(self, plan: ScanPlan):
        self.want = plan.threads
        self.had = 0

    def __enter__(self) -> None:
        self.had = torch.get_num_threads()
        if self.want and self.want != self.had:
            torch.set_num_threads(self.want)

    def __exit__(self, *exc: object) -> None:
        if self.want and self.want != self.had:
            torch.set_num_threads(self.had)
