"""The README's Evaluation examples run as written and print what the README says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    nxt = re.search(r"\n## ", text[start + len(heading) + 2:])
    return text[start: start + len(heading) + 2 + nxt.start()] if nxt else text[start:]


def test_readme_evaluation_example_runs_and_prints_what_it_says():
    section = _section(README.read_text(encoding="utf-8"), "## Evaluation")
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    printed = re.search(r"\nprints\n\n```\n(.*?)```", section, flags=re.S)
    assert blocks and printed, "README ## Evaluation lost its example or its output"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for code in blocks:
            exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert out.getvalue().strip().splitlines() == printed.group(1).strip().splitlines()
