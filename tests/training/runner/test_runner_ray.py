"""The same run on a local Ray instance gives the same registry contents as the process pool.

Ray starts inside pytest's temp folder (``RAY_TMPDIR`` = a short folder directly under the
session's base temp: Ray's socket paths must fit in 107 characters), without authentication
or dashboard, on 2 CPUs, and is shut down by the backend that started it."""

from __future__ import annotations

import pytest

from causalcast.registry import Registry
from causalcast.training.runner import train_run
from tests.training.runner.common import N_JOBS, TINY, contents

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def ray_env(tmp_path_factory, monkeypatch):
    short = tmp_path_factory.mktemp("ray")
    assert len(str(short)) < 45, f"{short}: too long for Ray's socket paths"
    monkeypatch.setenv("RAY_TMPDIR", str(short))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    yield short
    if ray.is_initialized():  # the backend shuts down what it started; never leave one up
        ray.shutdown()


def test_ray_backend_matches_the_pool(reference, tmp_path, ray_env):
    home = tmp_path / "home"
    summary = train_run(TINY, home=home, run_id="on-ray", backend="ray", workers=2,
                        progress=False)
    assert (summary.status, summary.backend, summary.done) == ("done", "ray", N_JOBS)
    assert summary.workers == 2 and summary.audit_passed is True
    assert not ray.is_initialized()  # started by the backend, so shut down by it
    assert any(ray_env.iterdir()), "Ray wrote its session outside the test folder"
    with Registry.open(home, create=False) as reg:
        assert reg.verify().ok
        assert all(j.status == "done" and "/ray" in j.worker for j in reg.jobs("on-ray"))
        assert len(reg.epoch_metrics("on-ray", ("*", "lstm", 999))) == 2
    assert contents(home, "on-ray") == contents(reference.home, "reference")
