"""A 2-node Ray cluster (head and worker started as separate `ray start` processes) trains a
small universe into a PostgreSQL registry with artifacts on S3; the worker node is SIGKILLed
mid-run. Ray retries its tasks on the head, and the run ends with every job done exactly once
(one version per job, none registered twice) and `registry verify` clean.

Job folders and data are on a path both nodes see (one host here; a shared volume on a real
cluster). The driver records each job's result into PostgreSQL and S3 as it arrives (the
workers train and write their job folders; they need no registry access)."""

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
                continue
            try:
                with Registry.open(postgres_url, artifacts=s3_url, create=False) as reg:
                    done = reg.progress("cluster")["done"]
            except Exception:  # the run is not created yet
                continue
            if done >= 2:  # mid-run: some jobs recorded, most still to do
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
        print(f"ray cluster: {len(jobs)} jobs done, attempts "
              f"{sorted(j.attempts for j in jobs)}, {report.n_objects} objects")
