"""Registry throughput on both backends in one run: registrations per second with 1, 4 and 8
writer processes into one registry, latency of one `register_version` call, promote latency,
and the cost of `verify` and `gc`.

Backends: SQLite + local files, and PostgreSQL + S3 (a throwaway PostgreSQL cluster and moto's
S3 server, started here as the tests start them; skipped with a note when the binaries are
missing). Run: ``python -m benchmarks.registry`` (writes benchmarks/results/registry.json). Each
registration stores a real safetensors artifact (`causalcast.weights.serialize`) and marks a job
done, as a training worker does; SQLite commits are fsynced (``synchronous=FULL``); the
throwaway PostgreSQL runs with ``fsync=off`` and moto keeps objects in memory, so its figures
are an upper bound for those servers, measured on the same 2 shared cores as SQLite.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.common import report

FP = "0" * 64


def _writer(home: str, artifacts: str | None, env: dict[str, str], run_id: str, worker: int,
            count: int, size: int, barrier: Any, out: Any) -> None:
    import os

    import torch

    from causalcast.registry import JobKey, Lineage, Registry
    from causalcast.weights import serialize

    os.environ.update(env)
    reg = Registry.open(home, artifacts=artifacts)
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


@contextlib.contextmanager
def _sqlite_home() -> Iterator[tuple[str, str | None]]:
    with tempfile.TemporaryDirectory() as home:
        yield home, None


def measure(backend: str, place: Callable[[], Any], env: dict[str, str], writers: int,
            total: int, floats: int) -> dict[str, Any]:
    from causalcast.registry import Registry

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "causalcast.registry", "causalcast.weights"])
    with place() as (home, artifacts):
        reg = Registry.open(home, artifacts=artifacts)
        run_id = reg.start_run("bench")
        barrier, out = ctx.Barrier(writers + 1), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(home, artifacts, env, run_id, w,
                                                   total // writers, floats, barrier, out))
                 for w in range(writers)]
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
        promote_ms = _promote_latencies(reg, reg.versions("bench-0")[:2])
        reg.close()
    return {"backend": backend, "writers": writers, "registrations": total,
            "artifact_bytes": floats * 4,
            "promote_p50_ms": statistics.median(promote_ms),
            "promote_p95_ms": promote_ms[int(0.95 * (len(promote_ms) - 1))],
            "wall_s": wall, "per_s": total / wall,
            "latency_p50_ms": 1000 * statistics.median(latencies),
            "latency_p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
            "verify_s": verify_s, "gc_s": gc_s}


def _promote_latencies(reg: Any, versions: list[Any], rounds: int = 40) -> list[float]:
    """Milliseconds per `promote` (gates off: the stage change itself), alternating two
    versions so each promotion archives the other."""
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        reg.promote(versions[i % 2].version_id, gates=[])
        times.append(1000 * (time.perf_counter() - started))
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=200)
    parser.add_argument("--floats", type=int, default=65536, help="float32s per artifact")
    args = parser.parse_args()
    rows = [measure("sqlite+files", _sqlite_home, {}, w, args.total, args.floats)
            for w in (1, 4, 8)]
    note = "2 shared CPU cores; figures provisional under contention"
    try:
        from tests.support.servers import ServerUnavailable, running_postgres, running_s3

        with running_postgres() as pg, running_s3() as s3:
            @contextlib.contextmanager
            def server_home() -> Iterator[tuple[str, str | None]]:
                yield pg.create_database("bench"), s3.create_bucket("bench") + "/registry"

            os.environ.update(s3.env)
            rows += [measure("postgres+s3", server_home, s3.env, w, args.total, args.floats)
                     for w in (1, 4, 8)]
    except (ImportError, ServerUnavailable) as exc:
        note += f"; postgres+s3 not measured: {exc}"
        print(f"postgres+s3 skipped: {exc}")
    by = {(r["backend"], r["writers"]): r for r in rows}
    for r in rows:  # the ratio to SQLite with the same number of writers
        r["per_s_vs_sqlite"] = r["per_s"] / by[("sqlite+files", r["writers"])]["per_s"]
    report("registry", f"Registry: {args.total} registrations, "
           f"{args.floats * 4 // 1024} KiB artifacts",
           ["backend", "writers", "wall s", "reg/s", "vs sqlite", "p50 ms", "p95 ms",
            "promote p50 ms", "promote p95 ms", "verify s", "gc s"],
           [[r["backend"], r["writers"], f"{r['wall_s']:.2f}", f"{r['per_s']:.0f}",
             f"{r['per_s_vs_sqlite']:.2f}", f"{r['latency_p50_ms']:.1f}",
             f"{r['latency_p95_ms']:.1f}", f"{r['promote_p50_ms']:.1f}",
             f"{r['promote_p95_ms']:.1f}", f"{r['verify_s']:.2f}", f"{r['gc_s']:.3f}"]
            for r in rows],
           {"rows": rows, "note": note})


if __name__ == "__main__":
    main()
