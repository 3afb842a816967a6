"""A real registry with trained, audited, promoted models for the serving tests, and a server
started in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from causalcast.audit import run_audit
from causalcast.data.resolve import resolve_source
from causalcast.registry import Lineage, Registry, fingerprint_frames
from causalcast.registry.gates import baseline_comparison
from causalcast.training.job import JobSpec, run_job

DATA = "synthetic:3,900,0.325,5"
SYMBOLS = ("SYN000", "SYN001", "SYN002")
SERVING_TEST_GATES = ("leakage_audit", "beats_naive_baseline")


def train_and_register(home: Path, models: tuple[str, ...] = ("ridge", "lstm"),
                       seed: int = 0, promote: bool = True,
                       registry_home: str | None = None) -> list[str]:
    """Train each model globally on the synthetic data, register it with its audit and a
    validation comparison against the naive baseline, and promote it. Returns version refs.
    ``registry_home``: a registry elsewhere (a postgresql:// URL) than ``home``'s."""
    out = home / "jobs"
    frames, _ = resolve_source(DATA)
    registry = Registry.open(registry_home or home)
    run_id = registry.start_run(name="serving-test")
    registry.record_audit(run_id, run_audit(frames, n_cuts=3))
    naive = run_job(JobSpec(model="naive", data=DATA, out_dir=str(out), lookback=20,
                            seed=seed))
    refs = []
    for model in models:
        result = run_job(JobSpec(model=model, data=DATA, out_dir=str(out), lookback=20,
                                 seed=seed, train_params={"epochs": 2}))
        assert result.status == "ok", result.error
        artifact = Path(result.bundle + ".safetensors").read_bytes()
        val_loss = result.train.get("best_val_loss", result.metrics["nll"])
        metrics = {"val_loss": val_loss, "test": result.metrics,
                   "baseline_comparison": baseline_comparison(
                       "val_nll", val_loss, naive.train["best_val_loss"],
                       lower_is_better=True)}
        version = registry.register_version(
            f"{model}-global", artifact, {"model": model}, metrics,
            Lineage(fingerprint_frames(frames), {"lookback": 20}, {}, model=model, seed=seed),
            run_id=run_id)
        if promote:  # significant_vs_naive needs a walk-forward evaluation
            # (evaluation.promotion_metrics); these 2-epoch models are served here, not judged.
            registry.promote(version.version_id, reason="test", gates=SERVING_TEST_GATES)
        refs.append(version.ref)
    registry.close()
    return refs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`causalcast serve` in a subprocess; waits until /readyz answers 200."""

    def __init__(self, home: Path | str, *args: str, api_key: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CAUSALCAST_NO_REEXEC": "0"}
        env.pop("CAUSALCAST_API_KEY", None)
        cmd = [sys.executable, "-m", "causalcast", "serve", "--home", str(home), "--port",
               str(self.port), *args]
        if api_key:   # through the environment: a key in argv is visible to every user in ps
            env["CAUSALCAST_API_KEY"] = api_key
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def wait_ready(self, timeout: float = 90.0) -> Server:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError("server not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
