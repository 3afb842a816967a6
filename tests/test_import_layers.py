"""Imports go one way: evaluation (and the predictions contract) never need torch, and data
strings resolve without the training package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\n"
                          "print('\\n'.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": SRC, "PATH": ""})
    return set(out.stdout.split())


def test_evaluation_imports_without_torch():
    loaded = _modules_after("import causalcast.evaluation, causalcast.evaluation.walkforward, "
                            "causalcast.evaluation.promotion, causalcast.evaluation.report\n"
                            "from causalcast.evaluation.predictions import load_predictions, "
                            "save_predictions, FILE")
    assert "torch" not in loaded
    assert not any(m.startswith("causalcast.training") for m in loaded)


def test_data_sources_resolve_without_training_or_torch():
    loaded = _modules_after("from causalcast.data.resolve import resolve_source\n"
                            "frames, universe = resolve_source('synthetic:2,300,0.3,1')\n"
                            "assert sorted(frames) == ['SYN000', 'SYN001'] and universe")
    assert "torch" not in loaded
    assert not any(m.startswith("causalcast.training") for m in loaded)


def test_layers_contract_holds():
    """The import-linter contract in pyproject.toml: every module imports only layers below
    it (a lazy import inside a function counts too)."""
    linter = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(linter), "--config", str(Path(SRC).parent / "pyproject.toml")],
                         capture_output=True, text=True, cwd=Path(SRC).parent,
                         env={"PYTHONPATH": SRC, "PATH": ""})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout
