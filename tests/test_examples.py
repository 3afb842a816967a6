"""Every script in examples/ runs (with small arguments where it takes any)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ARGS = {"audit_your_data.py": ["sample:msft", "--cuts", "3"]}


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(script, tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *ARGS.get(script, [])],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
