"""The docs' walk-forward example on the real MSFT sample (docs/evaluation.md), run as a new
user would: the shell commands exactly as written, in a fresh folder, with the installed
`causalcast`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "evaluation.md"
HEADING = "## Walk-forward evaluation and report"


def _section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(f"\n{HEADING}\n")
    nxt = re.search(r"\n## ", text[start + len(HEADING) + 2:])
    return text[start: start + len(HEADING) + 2 + nxt.start()] if nxt else text[start:]


@pytest.mark.slow
def test_msft_walk_forward_report_from_the_docs(tmp_path):
    section = _section()
    script = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    printed = re.search(r"`evaluate` prints.*?\n```\n(.*?)```", section, flags=re.S).group(1)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ.get('PATH', '')}", "COLUMNS": "110", "NO_COLOR": "1",
           "TERM": "dumb"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = [line.rstrip() for line in proc.stdout.splitlines()]
    want = [line.rstrip() for line in printed.strip("\n").splitlines()]
    start = out.index(want[0])
    assert out[start:start + len(want)] == want

    result = json.loads((tmp_path / "msft-report.json").read_text())
    assert result["data"]["symbols"] == ["MSFT"] and result["data"]["n_folds"] == 5
    assert result["audit"]["passed"] is True
    for model in ("ridge", "naive", "drift"):
        for h in ("1", "5"):
            m = result["models"][model]["metrics"][h]
            d = m["direction"]
            assert 0 <= d["ci_low"] <= d["accuracy"] <= d["ci_high"] <= 1
            assert 0 <= m["dm_vs_naive"]["p_a_better"] <= 1
            assert 0 <= m["direction_test"]["p_value"] <= 1
            assert len(m["coverage"]) == 4 and "ceiling" not in m
    html = (tmp_path / "msft-report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "p DM" in html
    assert "ridge does not beat the naive baseline" in html
