"""A 2-node Ray cluster (head and worker started as separate `ray start` processes) trains a
small universe into a PostgreSQL registry with artifacts on S3; the worker node is SIGKILLed
mid-run. Ray retries its tasks on the head, and the run ends with every job done exactly once
(one version per job, none registered twice) and `registry verify` clean.

Job folders and data are on a path both nodes see (one host here; a shared volume on a real
cluster). Each Ray task records its own result straight into PostgreSQL and S3 (the driver
writes no version): every version's lineage names the process that trained and recorded it,
which must be a Ray worker process of one of the two nodes, never the driver; the node is
killed only after one of its workers has recorded a job."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from causalcast.registry import Registry
from tests.support.servers import free_port

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

SYMBOLS, MODELS = 8, ("naive", "ridge")


def _ray(args: list[str], env: dict[str, str]) -> None:
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    subprocess.run([ray, *args], env=env, check=True, capture_output=True, timeout=120)


def _raylets() -> list[psutil.Process]:
    """This host's raylets, oldest first (the head's is started first)."""
    found = []
    for proc in psutil.process_iter(["name", "create_time"]):
        if proc.info["name"] == "raylet":
            found.append(proc)
    return sorted(found, key=lambda p: p.info["create_time"])


def _worker_pids(raylet: psutil.Process) -> set[int]:
    """The processes a node's raylet started (its Ray workers), while it lives."""
    with contextlib.suppress(psutil.NoSuchProcess):
        return {p.pid for p in raylet.children(recursive=True)}
    return set()


def _pid(label: str) -> int:
    """The pid of a ``host:pid`` process label."""
    return int(label.rsplit(":", 1)[1])


def test_a_ray_cluster_trains_into_postgres_and_s3_despite_a_killed_worker_node(
        tmp_path_factory: pytest.TempPathFactory, postgres_url: str, s3_url: str,
        s3_server, monkeypatch: pytest.MonkeyPatch) -> None:
    if _raylets():
        pytest.skip("another Ray is running on this host; the test must tell its nodes apart")
    temp = tmp_path_factory.mktemp("rc")  # Ray's socket paths must stay short
    work = tmp_path_factory.mktemp("rcwork")
    env = {**os.environ, **s3_server.env, "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
           "CAUSALCAST_ARTIFACTS_URL": s3_url, "PYTHONPATH": os.pathsep.join(sys.path)}
    port = free_port()
    _ray(["start", "--head", "--port", str(port), "--num-cpus", "1", "--temp-dir", str(temp),
          "--disable-usage-stats", "--include-dashboard=false"], env)
    try:
        _ray(["start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1"], env)
        head_raylet, worker_raylet = _raylets()[:2]
        node_pids: dict[str, set[int]] = {"head": set(), "worker": set()}
        train = subprocess.Popen(
            [sys.executable, "-m", "causalcast", "train",
             "--data", f"synthetic:{SYMBOLS},400,0.5,0",
             "--models", ",".join(MODELS), "--horizons", "1", "--lookback", "10",
             "--per-symbol", "--backend", "ray", "--ray-address", f"127.0.0.1:{port}",
             "--home", postgres_url, "--artifacts", s3_url, "--out", str(work / "out"),
             "--run-id", "cluster", "--quiet"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
        deadline = time.monotonic() + 240
        killed = False
        while train.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            if killed:
                node_pids["head"] |= _worker_pids(head_raylet)
                continue
            node_pids["head"] |= _worker_pids(head_raylet)
            node_pids["worker"] |= _worker_pids(worker_raylet)
            try:
                with Registry.open(postgres_url, artifacts=s3_url, create=False) as reg:
                    done = reg.progress("cluster")["done"]
                    recorders = {_pid(v.lineage["extra"]["recorded_by"])
                                 for v in reg.versions(run_id="cluster")}
            except Exception:  # the run is not created yet
                continue
            # mid-run (some jobs recorded, most still to do), after the worker node recorded
            if done >= 2 and recorders & node_pids["worker"]:
                assert worker_raylet.is_running(), "the worker node died before the kill"
                victims = [worker_raylet]
                with contextlib.suppress(psutil.NoSuchProcess):
                    victims += worker_raylet.children(recursive=True)
                for victim in victims:  # the node's raylet and the workers it started
                    with contextlib.suppress(psutil.NoSuchProcess):
                        victim.send_signal(signal.SIGKILL)
                killed = True
        output = train.communicate(timeout=60)[0]
        assert killed, f"the run finished before the worker node could be killed:\n{output}"
        assert train.returncode == 0, output
        assert head_raylet.is_running()
    finally:
        _ray(["stop", "--force"], env)
    with Registry.open(postgres_url, artifacts=s3_url, create=False) as reg:
        jobs = reg.jobs("cluster")
        versions = reg.versions(run_id="cluster")
        assert len(jobs) == SYMBOLS * len(MODELS) and all(j.status == "done" for j in jobs)
        assert sorted(j.version_id for j in jobs) == sorted(v.version_id for v in versions)
        assert len({v.job_id for v in versions}) == len(jobs)  # exactly one version per job
        report = reg.verify()
        assert report.ok, report.problems
    # The workers recorded: each version by the Ray worker process that trained it, on either
    # node (the killed node's before the kill, the head's for the rest), none by the driver.
    recorded = {v.lineage["extra"]["recorded_by"] for v in versions}
    assert all(v.lineage["extra"]["recorded_by"] == v.lineage["extra"]["trained_by"]
               for v in versions)
    pids = {_pid(r) for r in recorded}
    assert train.pid not in pids
    assert pids <= node_pids["head"] | node_pids["worker"], (pids, node_pids)
    assert pids & node_pids["worker"] and pids & node_pids["head"], (pids, node_pids)
    print(f"ray cluster: {len(jobs)} jobs done, attempts {sorted(j.attempts for j in jobs)}, "
          f"{report.n_objects} objects, recorded by {len(pids)} worker processes "
          f"({len(pids & node_pids['worker'])} on the killed node), driver pid {train.pid}")
