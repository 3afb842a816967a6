"""What every benchmark records beside its figures: machine, threads, allocator settings."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

RESULTS = Path(__file__).parent / "results"
# Variables that change how fast the same code runs (threads, allocator, BLAS) or what it does.
ENV_PREFIXES = ("OMP_", "MKL_", "KMP_", "OPENBLAS_", "MALLOC_", "CAUSALCAST_")


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) or k == "CI"},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "numpy": np.__version__,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    return info


def report(name: str, title: str, columns: list[str], rows: list[list[Any]],
           payload: dict[str, Any]) -> Path:
    """Print the table and write results/<name>.json (atomically)."""
    from causalcast.cli.common import table
    from causalcast.io import atomic_write_json

    Console().print(table(title, columns, rows))
    path = RESULTS / f"{name}.json"
    atomic_write_json(path, {"benchmark": name, "environment": environment(), **payload})
    Console().print(f"wrote {path}")
    return path
