"""The documentation is checked like code.

* Every page (README.md and docs/**/*.md) runs its ```python blocks in order, in one fresh
  interpreter per page, in an empty folder: a page is self-contained and no page depends on
  another. Where a page shows what an example prints — a ```text title="prints"``` block
  right after the python block — the block's standard output must equal it, line by line
  after normalising whitespace (runs of spaces collapsed, blank lines dropped), not just exit
  with status 0. A page whose examples take more than a few seconds carries the comment
  `<!-- docs-test: slow -->` and is marked slow.
* `mkdocs build --strict` passes (warnings are errors: broken links and anchors, missing nav
  entries, docstrings mkdocstrings cannot read, a broken hook).
* No built page references another host: the site works offline and fetches nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SLOW_MARK = "<!-- docs-test: slow -->"
PRINTS_INFO = 'text title="prints"'
FENCE = re.compile(r"^(```+)(.*)$")
SENTINEL = "\x00docs-block {}\x00"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


@dataclass
class Example:
    """One ```python block, where it starts in the page, and the output the page shows."""

    code: str
    line: int
    expected: list[str] | None = None


@dataclass
class Page:
    path: Path
    examples: list[Example] = field(default_factory=list)


def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """(info string, body, first line number) of every fenced block, in order."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).strip(), i + 1
        j = start
        while j < len(lines) and lines[j].rstrip() != fence:
            j += 1
        if j == len(lines):
            raise AssertionError(f"unclosed code fence at line {i + 1}")
        blocks.append((info, "\n".join(lines[start:j]) + "\n", start + 1))
        i = j + 1
    return blocks


def parse_page(path: Path) -> Page:
    page = Page(path)
    previous = None
    for info, body, line in fenced_blocks(path.read_text(encoding="utf-8")):
        if info == "python":
            page.examples.append(Example(body, line))
        elif info == PRINTS_INFO:
            assert previous == "python", (
                f"{path.name}:{line}: a 'prints' block must follow a python block")
            page.examples[-1].expected = normalise(body)
        previous = info
    return page


def normalise(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def run_page(page: Page, cwd: Path) -> list[list[str]]:
    """Run the page's examples in one fresh interpreter; the stdout of each, normalised."""
    blocks = cwd / "_blocks.json"
    blocks.write_text(json.dumps(
        [{"code": e.code, "name": f"{page.path.name}:{e.line}"} for e in page.examples]))
    runner = (
        "import json, sys\n"
        f"blocks = json.load(open({str(blocks)!r}))\n"
        "ns = {'__name__': '__main__'}\n"
        "for i, block in enumerate(blocks):\n"
        f"    print({SENTINEL!r}.format(i), flush=True)\n"
        "    exec(compile(block['code'], block['name'], 'exec'), ns)\n"
        "    sys.stdout.flush()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-c", runner], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{page.path.name} examples failed:\n{proc.stderr[-4000:]}"
    parts = re.split(r"\x00docs-block (\d+)\x00\n?", proc.stdout)
    outputs: list[list[str]] = [[] for _ in page.examples]
    for index, chunk in zip(parts[1::2], parts[2::2], strict=True):
        outputs[int(index)] = normalise(chunk)
    return outputs


def _page_params():
    params = []
    for path in PAGES:
        page = parse_page(path)
        if not page.examples:
            continue
        slow = SLOW_MARK in path.read_text(encoding="utf-8")
        params.append(pytest.param(page, id=str(path.relative_to(ROOT)),
                                   marks=[pytest.mark.slow] if slow else []))
    return params


@pytest.mark.parametrize("page", _page_params())
def test_page_examples_run_and_print_what_the_page_shows(page: Page, tmp_path):
    outputs = run_page(page, tmp_path)
    for example, printed in zip(page.examples, outputs, strict=True):
        if example.expected is not None:
            assert printed == example.expected, (
                f"{page.path.name}, example at line {example.line}: printed\n"
                + "\n".join(printed) + "\ninstead of\n" + "\n".join(example.expected))


def test_parser_pairs_outputs_with_their_examples(tmp_path):
    """The rule the pages rely on, on a page written for the purpose: a prints block belongs
    to the python block right before it; a python block without one is only run; a prints
    block after anything else is refused rather than silently ignored."""
    page = tmp_path / "page.md"
    page.write_text("intro\n```python\nprint('a  b')\n```\n\n```text title=\"prints\"\n"
                    "a b\n\n```\n```bash\necho no\n```\n```python\nx = 1\n```\n")
    parsed = parse_page(page)
    assert [(e.line, e.expected) for e in parsed.examples] == [(3, ["a b"]), (14, None)]
    assert run_page(parsed, tmp_path) == [["a b"], []]
    page.write_text("```bash\necho a\n```\n```text title=\"prints\"\na\n```\n")
    with pytest.raises(AssertionError, match="must follow a python block"):
        parse_page(page)


def test_every_page_with_output_blocks_checks_at_least_one_example():
    """Guards the guard: the pages' expected outputs are really paired with examples."""
    checked = [p.path.name for p in map(parse_page, PAGES)
               if any(e.expected is not None for e in p.examples)]
    assert {"README.md", "getting-started.md", "accuracy.md", "evaluation.md"} <= set(checked)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(site)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return site


@pytest.mark.slow
def test_mkdocs_strict_build_passes_with_generated_pages(built_site: Path):
    assert (built_site / "index.html").is_file()
    benchmarks = (built_site / "benchmarks.html").read_text(encoding="utf-8")
    for results in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        assert f"benchmarks/results/{results.name}" in benchmarks, results.name
        assert f"python -m benchmarks.{results.stem}" in benchmarks, results.stem
    cli = (built_site / "cli.html").read_text(encoding="utf-8")
    for command in ("causalcast train", "causalcast evaluate", "causalcast registry promote",
                    "causalcast options price", "causalcast serve"):
        assert command in cli, command
    api = (built_site / "api" / "registry.html").read_text(encoding="utf-8")
    assert 'id="causalcast.registry.Registry"' in api


URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.I)
CSS_URL = re.compile(r"""url\(\s*["']?((?:https?:)?//[^"')\s]+)""", re.I)


def external_references(site: Path) -> list[str]:
    found = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in {".html", ".css"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for url in URL_ATTR.findall(text) + CSS_URL.findall(text):
            netloc = re.sub(r"^(?:https?:)?//", "", url).split("/")[0].lower()
            host = netloc.split("]")[0] + "]" if netloc.startswith("[") else netloc.split(":")[0]
            if host not in LOCAL_HOSTS:
                found.append(f"{path.relative_to(site)}: {url}")
    return found


def test_external_reference_check_sees_what_it_must(tmp_path):
    page = tmp_path / "p.html"
    page.write_text('<link href="https://fonts.googleapis.com/css"><img src=//cdn.x/a.png>'
                    '<a href="http://localhost:8000/v1/models">ok</a><a href="api/x.html">')
    (tmp_path / "s.css").write_text("@font-face{src:url(https://fonts.gstatic.com/f.woff)}")
    assert len(external_references(tmp_path)) == 3


@pytest.mark.slow
def test_built_site_references_no_external_host(built_site: Path):
    assert external_references(built_site) == []


def _hook(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}",
                                                  ROOT / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_hook_renders_each_results_file_with_its_environment(tmp_path):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (tmp_path / "benchmarks" / "speed.py").write_text("")
    (results / "speed.json").write_text(json.dumps({
        "environment": {"load_avg_1m": 2.5, "cpu_count": 2, "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
        "symbols": 50,
        "rows": [{"model": "lstm", "seconds": 1.23456, "meets_goal": True},
                 {"model": "tcn", "seconds": 4.5, "meets_goal": False}],
        "results": {"cached": {"p99_ms": 4.04}, "uncached": {"p99_ms": 12.36}},
    }))
    (results / "bare.json").write_text(json.dumps({"rows": [{"n": 100, "rate": 0.05}]}))
    page = _hook("benchmarks").render_results(results)
    assert page.index("## bare") < page.index("## speed")
    assert "`python -m benchmarks.speed`" in page and "no benchmark module" in page
    assert "load average 2.5" in page and "`OMP_WAIT_POLICY=PASSIVE`" in page
    assert "No environment recorded" in page and "symbols 50" in page
    assert "| lstm | 1.235 | yes |" in page and "| tcn | 4.5 | no |" in page
    assert "| cached | 4.04 |" in page and "| uncached | 12.36 |" in page
    (results / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json"):
        _hook("benchmarks").render_results(results)
