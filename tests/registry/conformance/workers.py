"""Worker processes for the registry conformance concurrency tests (stress, kill, gc-while-writing).

They run in separate processes (multiprocessing 'forkserver'/'spawn'), so they live in an
importable module rather than inside the test file. Artifacts are real weight files
(`causalcast.weights.serialize` of random tensors), jobs are "register a version for
(symbol, model, fold)" with completion tracked in the jobs table, as the training runner will do.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import zlib
from pathlib import Path
from typing import Any

import torch

from causalcast.registry import JobKey, Lineage, Registry, baseline_comparison
from causalcast.weights import serialize
from tests.registry.conformance.backends import Backend

FINGERPRINT = "0" * 63 + "1"
FEATURES = {"lookback": 8, "horizons": [1, 5]}
SPLIT = {"n_folds": 3, "embargo": 5}


def context() -> mp.context.BaseContext:
    """A forkserver that imports torch once; children start clean (no inherited connections or
    threads) without paying for the import each time."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "causalcast.registry", "causalcast.weights",
                                "tests.registry.conformance.workers"])
    return ctx


def weights_bytes(seed: int, size: int = 64) -> tuple[bytes, dict]:
    """Deterministic, real safetensors bytes for one 'trained model'."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {"layer.weight": torch.randn(size, size, generator=gen),
               "layer.bias": torch.randn(size, generator=gen)}
    config = {"kind": "test-linear", "size": size, "seed": seed}
    data, _ = serialize(tensors, config)
    return data, config


def job_seed(key: JobKey) -> int:
    """Stable across processes (unlike hash(), which is salted per interpreter)."""
    return zlib.crc32(f"{key.symbol}/{key.model}/{key.fold}".encode())


def do_job(reg: Registry, run_id: str, key: JobKey, size: int, epochs: int = 2) -> int | None:
    """One simulated training job: start, log epochs, register its version (marks it done)."""
    job = reg.job_started(run_id, key)
    if job.status == "done":
        return job.version_id
    for epoch in range(epochs):
        reg.log_epoch(run_id, key, epoch, {"loss": 1.0 / (epoch + 1), "epoch_s": 0.01})
    data, config = weights_bytes(job_seed(key), size)
    metrics = {"val_mse": 0.9, "baseline_comparison": baseline_comparison(
        "val_mse", 0.9, 1.0, lower_is_better=True), "leakage_audit": True}
    lineage = Lineage(FINGERPRINT, FEATURES, SPLIT, symbol=key.symbol, model=key.model,
                      fold=key.fold, seed=job_seed(key))
    version = reg.register_version(f"{key.model}-{key.symbol}", data, config, metrics, lineage,
                                   run_id=run_id, job=key)
    return version.version_id


def stress_worker(backend: Backend, run_id: str, worker: int, count: int, barrier: Any,
                  results: Any) -> None:
    """Register ``count`` versions of one shared name; puts (version_id, sha256) pairs."""
    reg = backend.open()
    barrier.wait()  # start together so the writers really contend
    out = []
    for i in range(count):
        key = JobKey(f"S{worker}", "stress", i)
        reg.job_started(run_id, key)
        data, config = weights_bytes(worker * 1000 + i, 16)
        lineage = Lineage(FINGERPRINT, FEATURES, SPLIT, symbol=key.symbol, model="stress",
                          fold=i)
        v = reg.register_version("stress", data, config, {"i": i, "worker": worker}, lineage,
                                 run_id=run_id, job=key)
        out.append((v.version_id, v.artifact_sha256))
    reg.close()
    results.put((worker, out))


def job_worker(backend: Backend, run_id: str, keys: list[tuple[str, str, int]], size: int,
               ready: Any) -> None:
    """Do the given jobs in order (the kill test SIGKILLs this process at random moments)."""
    reg = backend.open()
    ready.release()
    for key in keys:
        do_job(reg, run_id, JobKey(*key), size)
    reg.close()


def orphan_writer(backend: Backend, run_id: str, worker: int, count: int, size: int) -> list[int]:
    """Register versions and also store orphan artifacts nobody references (gc fodder)."""
    reg = backend.open()
    ids = []
    for i in range(count):
        key = JobKey(f"G{worker}", "gc", i)
        ids.append(do_job(reg, run_id, key, size, epochs=0))
        reg.artifacts.put(os.urandom(1024))
    reg.close()
    return ids


def gc_loop(backend: Backend, stop_file: str, results: Any) -> None:
    """Collect garbage with no grace period until told to stop; puts the objects removed."""
    reg = backend.open()
    removed = 0
    while not Path(stop_file).exists():
        removed += len(reg.gc(grace_s=0.0).removed)
        time.sleep(0.01)  # let writers take the lock in between
    reg.close()
    results.put(removed)


def open_and_register(backend: Backend, worker: int, barrier: Any, results: Any) -> None:
    """Open a registry that may not exist yet (creation, WAL switch and migration race)."""
    barrier.wait()
    reg = backend.open()
    version = reg.register_version("fresh", weights_bytes(worker, 4)[0], {}, {},
                                   Lineage(FINGERPRINT, FEATURES, SPLIT))
    reg.close()
    results.put(version.version)
