"""The worked example in docs/options-analytics.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "options-analytics.md"


def test_worked_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "the page lost its example"
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
