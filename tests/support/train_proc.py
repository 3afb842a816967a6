"""Subprocess entry for the kill/resume and signal tests: ``python -m tests.support.train_proc
SPEC_JSON [HOOK]``. HOOK ``sigkill@E.S`` / ``sigterm@E.S`` makes the process send that
signal to itself just before step S of epoch E, so the fault lands at a known point of a
real training run. Prints the JobResult as JSON; exit code 0 (ok), 143 (interrupted), 1."""

from __future__ import annotations

import json
import os
import signal
import sys

from causalcast.training import JobSpec, TrainHooks, run_job


def main() -> int:
    spec = JobSpec(**json.loads(sys.argv[1]))
    hooks = None
    if len(sys.argv) > 2:
        name, at = sys.argv[2].split("@")
        epoch, step = (int(v) for v in at.split("."))
        sig = {"sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM}[name]
        fired = []

        def before_step(info):
            if (info.epoch, info.step) == (epoch, step) and not fired:
                fired.append(True)
                os.kill(os.getpid(), sig)

        hooks = TrainHooks(before_step=before_step)
    result = run_job(spec, hooks=hooks)
    print(json.dumps(result.to_dict()))
    if result.status == "interrupted":
        print(result.error, file=sys.stderr)
        return 143
    return 0 if result.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
