"""Registry throughput: registrations per second with 1, 4 and 8 writer processes into one
registry, latency of one `register_version` call, and the cost of `verify` and `gc`.

Run: ``python -m benchmarks.registry`` (writes benchmarks/results/registry.json). Each
registration stores a real safetensors artifact (`causalcast.weights.serialize`) and marks a job
done, as a training worker does; every commit is fsynced (``synchronous=FULL``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from typing import Any

from benchmarks.common import report

FP = "0" * 64


def _writer(home: str, run_id: str, worker: int, count: int, size: int, barrier: Any,
            out: Any) -> None:
    import torch

    from causalcast.registry import JobKey, Lineage, Registry
    from causalcast.weights import serialize

    reg = Registry.open(home)
    gen = torch.Generator().manual_seed(worker)
    blobs = [serialize({"w": torch.randn(size, generator=gen)}, {"i": i})[0]
             for i in range(count)]
    lineage = Lineage(FP, {"lookback": 60}, {"n_folds": 5})
    barrier.wait()
    latencies = []
    for i, blob in enumerate(blobs):
        key = JobKey(f"S{worker}", "bench", i)
        started = time.perf_counter()
        reg.job_started(run_id, key)
        reg.register_version(f"bench-{worker}", blob, {}, {"i": i}, lineage, run_id=run_id,
                             job=key)
        latencies.append(time.perf_counter() - started)
    reg.close()
    out.put((time.time(), latencies))


def measure(writers: int, total: int, floats: int) -> dict[str, Any]:
    from causalcast.registry import Registry

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "causalcast.registry", "causalcast.weights"])
    with tempfile.TemporaryDirectory() as home:
        reg = Registry.open(home)
        run_id = reg.start_run("bench")
        barrier, out = ctx.Barrier(writers + 1), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(home, run_id, w, total // writers, floats,
                                                   barrier, out)) for w in range(writers)]
        for p in procs:
            p.start()
        barrier.wait()
        started = time.time()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        wall = max(end for end, _ in results) - started
        latencies = sorted(x for _, lat in results for x in lat)
        t0 = time.perf_counter()
        verify = reg.verify()
        verify_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        reg.gc(grace_s=0)
        gc_s = time.perf_counter() - t0
        assert verify.ok and verify.n_versions == total, verify.problems
        reg.close()
    return {"writers": writers, "registrations": total, "artifact_bytes": floats * 4,
            "wall_s": wall, "per_s": total / wall,
            "latency_p50_ms": 1000 * statistics.median(latencies),
            "latency_p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
            "verify_s": verify_s, "gc_s": gc_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=200)
    parser.add_argument("--floats", type=int, default=65536, help="float32s per artifact")
    args = parser.parse_args()
    rows = [measure(w, args.total, args.floats) for w in (1, 4, 8)]
    report("registry", f"Registry: {args.total} registrations, "
           f"{args.floats * 4 // 1024} KiB artifacts",
           ["writers", "wall s", "reg/s", "p50 ms", "p95 ms", "verify s", "gc s"],
           [[r["writers"], f"{r['wall_s']:.2f}", f"{r['per_s']:.0f}",
             f"{r['latency_p50_ms']:.1f}", f"{r['latency_p95_ms']:.1f}",
             f"{r['verify_s']:.2f}", f"{r['gc_s']:.3f}"] for r in rows],
           {"rows": rows, "note": "2 shared CPU cores; figures provisional under contention"})


if __name__ == "__main__":
    main()
