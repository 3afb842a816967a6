"""Every benchmark in turn (`make bench`), each in its own process so that one's imports,
threads and allocator state cannot colour the next one's figures. Each prints its table and
writes `benchmarks/results/<name>.json`; this prints a summary of which ran and how long.

    python -m benchmarks.run_all                      # all (about 35 min on 2 cores)
    python -m benchmarks.run_all features options     # a selection
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

# Fast ones first; the universe run (~13 min) and the random-walk study (~5 min) last.
BENCHMARKS = ("features", "data_store", "training", "mamba", "options", "options_analytics",
              "registry", "eval_stats", "eval_dm_size",
              "serving", "serving_arrow", "eval_random_walk", "universe")
# Small-MLP inference wants these set before Python starts (see benchmarks/options.py).
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "1000000000", "MALLOC_TRIM_THRESHOLD_": "1000000000",
                 "MALLOC_TOP_PAD_": "536870912", "OMP_WAIT_POLICY": "PASSIVE"}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
        return 2
    summary = []
    for name in chosen:
        if name == "serving" and shutil.which("wrk") is None:
            summary.append((name, "skipped: wrk not installed (apt-get install wrk)", 0.0))
            continue
        env = {**os.environ, **(ALLOCATOR_ENV if name == "options" else {})}
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"], env=env)
        summary.append((name, "ok" if code == 0 else f"exit {code}",
                        time.perf_counter() - started))
    print("\nbenchmark            status                                       seconds")
    for name, status, seconds in summary:
        print(f"{name:20s} {status:44s} {seconds:7.0f}")
    return 0 if all(s == "ok" or s.startswith("skipped") for _, s, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
