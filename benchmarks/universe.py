"""Training a whole universe in parallel: wall time and peak memory, process pool vs Ray.

    python -m benchmarks.universe                       # 50 symbols x {lstm, tcn, mamba}
    python -m benchmarks.universe --symbols 10 --models lstm --backends pool

The issue's workload: 50 synthetic symbols x 2520 bars x {LSTM, TCN, Mamba}, quick profile,
final fit, one model per symbol (150 jobs), on every core. Goals on 2 cores: wall time <= 10
min (the reviewed system needed 20-30 min on a GPU) and peak memory of the whole process
tree (the runner, its pool workers or Ray's raylet, GCS and workers) <= 2 GB.

Memory is sampled every 0.25 s with psutil over this process and all its descendants: the
sum of RSS (counts pages shared between processes once per process, so it over-states) and
the sum of PSS (shares them out; what the tree really costs). Each backend trains into its
own fresh registry; the table also says whether both registered byte-identical artifacts.
The leakage audit is off by default (``--audit`` adds it as one more task): this measures
training. Writes benchmarks/results/universe.json with the environment (CPU count, load
average before and after, thread settings).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported anywhere

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import report

GOAL_WALL_S = 600.0
GOAL_PEAK_MB = 2048.0


class TreeMemory:
    """Peak summed RSS and PSS of this process and every descendant, sampled in a thread."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_rss = self.peak_pss = 0
        self.peak_procs = 0
        self.at_peak: list[tuple[str, float]] = []   # (process, PSS MB) when the sum peaked
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        rss = pss = 0
        parts = []
        for proc in procs:
            try:
                info = proc.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
                label = "runner" if proc.pid == me.pid else " ".join(proc.cmdline()[:3])[-60:]
                parts.append((label, round(getattr(info, "pss", info.rss) / 2**20, 1)))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self.peak_rss = max(self.peak_rss, rss)
        if pss > self.peak_pss:
            self.peak_pss, self.at_peak = pss, sorted(parts, key=lambda p: -p[1])
        self.peak_procs = max(self.peak_procs, len(procs))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _contents(home: Path, run_id: str) -> dict[tuple, str]:
    from causalcast.registry import Registry

    with Registry.open(home, create=False) as reg:
        return {(v.lineage["symbol"], v.lineage["model"], v.lineage["fold"]): v.artifact_sha256
                for v in reg.versions(run_id=run_id)}


def measure(backend: str, spec: Any, workers: int, audit: bool, keep: bool
            ) -> tuple[dict[str, Any], dict[tuple, str]]:
    from causalcast.training.runner import train_run

    home = Path(tempfile.mkdtemp(prefix=f"universe-{backend}-"))
    ray_tmp = None
    if backend == "ray":  # Ray's session files next to the registry, removed afterwards
        ray_tmp = Path(tempfile.mkdtemp(prefix="ccray"))
        os.environ["RAY_TMPDIR"] = str(ray_tmp)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    load_before = os.getloadavg()[0]
    try:
        with TreeMemory() as memory:
            started = time.perf_counter()
            summary = train_run(spec, home=home, backend=backend, workers=workers,
                                audit=audit, progress=True)
            wall = time.perf_counter() - started
        hashes = _contents(home, summary.run_id)
    finally:
        if keep:
            print(f"registry kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
        if ray_tmp is not None:
            shutil.rmtree(ray_tmp, ignore_errors=True)
    per_model: dict[str, list[float]] = {}
    for job in summary.jobs:
        if job.seconds is not None:
            per_model.setdefault(job.model, []).append(job.seconds)
    row = {
        "backend": backend, "workers": summary.workers, "jobs": summary.planned,
        "done": summary.done, "failed": summary.failed, "wall_s": wall,
        "jobs_per_min": summary.done / wall * 60,
        "peak_rss_mb": memory.peak_rss / 2**20, "peak_pss_mb": memory.peak_pss / 2**20,
        "peak_processes": memory.peak_procs, "pss_mb_by_process_at_peak": memory.at_peak,
        "job_seconds_median": {m: statistics.median(v) for m, v in per_model.items()},
        "load_avg_1m_before": load_before, "load_avg_1m_after": os.getloadavg()[0],
        "errors": sorted({j.error for j in summary.jobs if j.error})[:5],
    }
    return row, hashes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--models", default="lstm,tcn,mamba")
    parser.add_argument("--backends", default="pool,ray")
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--strength", type=float, default=0.325)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--audit", action="store_true", help="run the leakage audit too")
    parser.add_argument("--keep", action="store_true", help="keep the registries (temp dirs)")
    args = parser.parse_args(argv)

    from causalcast.training.backends import default_workers
    from causalcast.training.runner import RunSpec

    workers = args.workers or default_workers()
    spec = RunSpec(data=f"synthetic:{args.symbols},{args.bars},{args.strength},{args.seed}",
                   models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
                   scopes=("per-symbol",), folds=("final",), seed=args.seed,
                   profile=args.profile)
    rows, hashes = [], {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        row, hashes[backend] = measure(backend, spec, workers, args.audit, args.keep)
        rows.append(row)
    same = len({tuple(sorted(h.items())) for h in hashes.values()}) == 1 if hashes else None
    table = [[r["backend"], r["workers"], f"{r['done']}/{r['jobs']}", f"{r['wall_s']:.0f}",
              "yes" if r["wall_s"] <= GOAL_WALL_S else "no", f"{r['peak_rss_mb']:.0f}",
              f"{r['peak_pss_mb']:.0f}", "yes" if r["peak_pss_mb"] <= GOAL_PEAK_MB else "no",
              f"{r['load_avg_1m_before']:.1f}"] for r in rows]
    report("universe",
           f"{args.symbols} symbols x {args.bars} bars x {args.models} ({args.profile}, final "
           f"fit, per-symbol): {len(spec.models) * args.symbols} jobs; same artifacts across "
           f"backends: {same}",
           ["backend", "workers", "done", "wall s", f"<= {GOAL_WALL_S:.0f} s",
            "peak RSS MB (sum)", "peak PSS MB", f"<= {GOAL_PEAK_MB:.0f} MB", "load before"],
           table,
           {"params": {"symbols": args.symbols, "bars": args.bars, "models": spec.models,
                       "profile": args.profile, "scope": "per-symbol", "folds": "final",
                       "audit": args.audit, "seed": args.seed, "strength": args.strength,
                       "worker_torch_threads": 1},
            "goals": {"wall_s": GOAL_WALL_S, "peak_mb": GOAL_PEAK_MB},
            "same_artifacts_across_backends": same, "rows": rows,
            "note": "2 CPU cores shared with other engineers' jobs: provisional figures; "
                    "compare load_avg_1m_before/after"})


if __name__ == "__main__":
    main()
