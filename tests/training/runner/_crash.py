"""Fault injection for the lost-worker test: the first attempt of the job whose label is in
the marker file's name kills its worker process outright (as the OOM killer would); every
other call is the real `execute_job`."""

from __future__ import annotations

import os
from pathlib import Path

from causalcast.training.worker import execute_job


def crash_once(spec):
    marker = Path(spec.out_dir).parent / f"crash-{spec.model}-{'_'.join(spec.symbols)}"
    if marker.exists():
        marker.unlink()
        os._exit(9)
    return execute_job(spec)
