"""One uninterrupted pool run of the tiny spec, shared by the runner tests that compare
against it (determinism, kill + rerun, Ray)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from causalcast.training.runner import RunSummary, train_run
from tests.training.runner.common import TINY


@dataclass
class Reference:
    home: Path
    summary: RunSummary


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Reference:
    home = tmp_path_factory.mktemp("reference")
    summary = train_run(TINY, home=home, run_id="reference", workers=2, progress=False)
    return Reference(home, summary)
