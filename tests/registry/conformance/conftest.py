"""The ``backend`` fixture: every conformance test runs once per entry of `OPENERS`. The
PostgreSQL + S3 backend gets a fresh database and bucket per test from the throwaway servers of
`tests.support.servers` (skipped, or failed under CI=true, when they cannot run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.registry.conformance.backends import OPENERS, Backend


@pytest.fixture(params=sorted(OPENERS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "postgres+s3":
        url = request.getfixturevalue("postgres_url")
        artifacts = request.getfixturevalue("s3_url")
        env = request.getfixturevalue("s3_server").env
        return Backend(request.param, url, artifacts, tuple(sorted(env.items())))
    return Backend(request.param, str(tmp_path / "home"))
