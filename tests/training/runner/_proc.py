"""Subprocess entry for the kill and SIGTERM tests:
``python -m tests.training.runner._proc HOME RUN_ID [long]`` runs the tiny run (or, with
``long``, global + per-symbol LSTMs of 500 epochs that are still training when the test
signals them) on a 2-worker pool."""

from __future__ import annotations

import sys

from causalcast.training.runner import RunSpec, train_run
from tests.training.runner.common import TINY

LONG = RunSpec.from_dict({**TINY.to_dict(), "models": ["lstm"],
                          "train_params": {"epochs": 500, "patience": 500}})


def main() -> int:
    spec = LONG if sys.argv[3:] == ["long"] else TINY
    summary = train_run(spec, home=sys.argv[1], run_id=sys.argv[2], workers=2,
                        progress=False, audit=False)
    return 0 if summary.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
