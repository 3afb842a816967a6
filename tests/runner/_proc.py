"""Subprocess entry for the kill test: ``python -m tests.runner._proc HOME RUN_ID`` runs the
tiny run on a 2-worker pool (the test SIGKILLs it part-way)."""

from __future__ import annotations

import sys

from causalcast.training.runner import train_run
from tests.runner.common import TINY


def main() -> int:
    summary = train_run(TINY, home=sys.argv[1], run_id=sys.argv[2], workers=2,
                        progress=False)
    return 0 if summary.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
