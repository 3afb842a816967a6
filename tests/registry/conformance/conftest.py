"""The ``backend`` fixture: every conformance test runs once per entry of `OPENERS`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.registry.conformance.backends import OPENERS, Backend


@pytest.fixture(params=sorted(OPENERS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, str(tmp_path / "home"))
