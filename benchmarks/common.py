"""What every benchmark records beside its figures: machine, threads, allocator settings."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results"
ENV_KEYS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "CI")


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
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
    from causalcast.io import atomic_write_json

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)
    path = RESULTS / f"{name}.json"
    atomic_write_json(path, {"benchmark": name, "environment": environment(), **payload})
    Console().print(f"wrote {path}")
    return path
