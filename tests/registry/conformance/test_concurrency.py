"""Conformance (issue 4 acceptance): many writer processes, SIGKILLed writers, gc while
writing, concurrent creation; run against every backend of `backends.OPENERS`.

Every writer is a separate process (multiprocessing forkserver), with its own SQLite connection
and file lock handle, writing real safetensors bytes.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from causalcast.registry import JobKey, Registry, postgres_schema
from causalcast.registry import schema as sqlite_schema
from causalcast.weights import parse, sha256_bytes
from tests.registry.conformance import workers as w
from tests.registry.conformance.backends import Backend

pytestmark = pytest.mark.slow


def _assert_sound(reg: Registry) -> None:
    """Verify is clean, and no object is partial: each listed object hashes to its name and no
    temporary file is listed as an object."""
    report = reg.verify()
    assert report.ok, report.problems
    digests = list(reg.artifacts.digests())
    assert len(digests) == report.n_objects
    for digest in digests:
        assert sha256_bytes(reg.artifacts.get(digest)) == digest
    assert not set(reg.artifacts.temp_files()) & {reg.artifacts.location(d) for d in digests}


def test_stress_8_processes_x_25_registrations(backend: Backend) -> None:
    reg = backend.open()
    run_id = reg.start_run("stress")
    ctx = w.context()
    barrier, results = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=w.stress_worker, args=(backend, run_id, i, 25, barrier, results))
             for i in range(8)]
    for p in procs:
        p.start()
    returned = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    versions = reg.versions("stress")
    assert len(versions) == 200
    assert sorted(v.version for v in versions) == list(range(1, 201))  # no number reused
    by_id = {v.version_id: v for v in versions}
    for worker, pairs in returned.items():
        assert len(pairs) == 25
        for version_id, digest in pairs:  # what each writer was told is what is stored
            assert by_id[version_id].artifact_sha256 == digest
            tensors, config = reg.load_weights(version_id)
            assert config["seed"] == worker * 1000 + by_id[version_id].metrics["i"]
            assert tensors["layer.weight"].shape == (16, 16)
    assert reg.progress(run_id)["done"] == 200
    _assert_sound(reg)


def test_sigkilled_writers_leave_no_trace_and_a_rerun_completes(backend: Backend) -> None:
    reg = backend.open()
    run_id = reg.start_run("kill", config={"test": "kill"})
    keys = [JobKey(s, m, f) for s in ("AAA", "BBB", "CCC", "DDD")
            for m in ("lstm", "tcn", "mamba") for f in range(6)]
    reg.plan_jobs(run_id, keys)
    ctx = w.context()
    rng = random.Random(20240611)
    killed_alive, interrupted_rounds, temp_left = 0, 0, 0
    for _round in range(4):
        missing = reg.missing_jobs(run_id, keys)
        if not missing:
            break
        ready = ctx.Semaphore(0)
        shares = [[tuple(k) for k in missing[i::4]] for i in range(4)]
        procs = [ctx.Process(target=w.job_worker, args=(backend, run_id, share, 256, ready))
                 for share in shares if share]
        for p in procs:
            p.start()
        for _ in procs:
            assert ready.acquire(timeout=60)
        deadline = {p.pid: time.monotonic() + rng.uniform(0.0, 0.3) for p in procs}
        for p in sorted(procs, key=lambda p: deadline[p.pid]):
            time.sleep(max(0.0, deadline[p.pid] - time.monotonic()))
            killed_alive += p.is_alive()
            p.kill()  # SIGKILL; a no-op if it has already finished
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode in (0, -signal.SIGKILL)
        reg.close()
        reg = backend.open()  # the registry opens after every round of kills
        _assert_sound(reg)
        done = reg.jobs(run_id, "done")
        assert len(reg.versions(run_id=run_id)) == len(done)  # a job is done iff its version
        interrupted_rounds += bool(reg.missing_jobs(run_id, keys))
        temp_left = max(temp_left, len(reg.artifacts.temp_files()))
    # Each round after the first is itself a rerun after kills; the final one below finishes.
    assert killed_alive > 0 and interrupted_rounds > 0, "no writer was killed mid-work"
    print(f"kill test: {killed_alive} writers killed mid-work, {interrupted_rounds} rounds "
          f"interrupted, up to {temp_left} temporary files left by killed writes")

    # The rerun completes only the missing jobs.
    done_before = {j.key: j.version_id for j in reg.jobs(run_id, "done")}
    missing = reg.missing_jobs(run_id, keys)
    ready = ctx.Semaphore(0)
    proc = ctx.Process(target=w.job_worker,
                       args=(backend, run_id, [tuple(k) for k in missing], 256, ready))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == 0
    assert reg.missing_jobs(run_id, keys) == []
    jobs = reg.jobs(run_id)
    assert len(jobs) == len(keys) and all(j.status == "done" for j in jobs)
    assert {j.key: j.version_id for j in jobs if j.key in done_before} == done_before
    versions = reg.versions(run_id=run_id)
    assert len(versions) == len(keys)  # nothing registered twice
    assert len({v.job_id for v in versions}) == len(keys)
    for v in versions:  # the bytes stored with each job are that job's model
        key = JobKey(v.lineage["symbol"], v.lineage["model"], v.lineage["fold"])
        data, config = w.weights_bytes(w.job_seed(key), 256)
        assert reg.load_artifact(v) == data
        assert parse(reg.load_artifact(v))[1] == config
    _assert_sound(reg)


def test_gc_with_no_grace_never_deletes_what_a_concurrent_writer_references(
        backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    run_id = reg.start_run("gc")
    ctx = w.context()
    stop, results = tmp_path / "stop", ctx.Queue()
    collector = ctx.Process(target=w.gc_loop, args=(backend, str(stop), results))
    collector.start()
    with ctx.Pool(3) as pool:
        ids = pool.starmap(w.orphan_writer, [(backend, run_id, i, 15, 64) for i in range(3)])
    stop.touch()
    removed_concurrently = results.get(timeout=60)
    collector.join(timeout=30)
    assert collector.exitcode == 0
    assert removed_concurrently > 0, "gc removed nothing while writers ran; no race exercised"

    versions = reg.versions(run_id=run_id)
    assert sorted(v.version_id for v in versions) == sorted(i for part in ids for i in part)
    assert len(versions) == 45
    for v in versions:
        reg.load_artifact(v)  # present and hashes to its name
    _assert_sound(reg)
    reg.gc(grace_s=0.0)
    assert set(reg.artifacts.digests()) == {v.artifact_sha256 for v in versions}


def test_a_fresh_registry_can_be_created_by_many_processes_at_once(backend: Backend) -> None:
    ctx = w.context()
    barrier, results = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=w.open_and_register, args=(backend, i, barrier, results))
             for i in range(8)]
    for p in procs:
        p.start()
    numbers = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert numbers == list(range(1, 9))
    reg = backend.open()
    latest = {"sqlite+files": sqlite_schema.LATEST, "postgres+s3": postgres_schema.LATEST}
    assert reg.meta.schema_version() == latest[backend.kind]  # every migration, applied once
    _assert_sound(reg)
