"""MkDocs hook: render `benchmarks/results/*.json` into the benchmarks page at build time.

The page holds a marker (`<!-- benchmark-results -->`); this hook replaces it with one section
per results file: the command that reruns it, the environment it ran in (CPU count, threads,
load average, allocator and OpenMP variables) and every table found in the JSON (a list of
records, or a mapping of name -> record). Nothing is copied by hand, so the page cannot drift
from the files. A results file that cannot be read fails the build with its name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

MARKER = "<!-- benchmark-results -->"
PAGE = "benchmarks.md"
LOAD_KEYS = ("load_avg_1m", "load_avg", "load_average", "load_average_at_start")
SKIP_KEYS = {"environment", "wrk_output"}
MAX_COLUMNS = 14


def _root(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def on_config(config: Any) -> Any:
    """Rebuild on `mkdocs serve` when a results file changes."""
    results = _root(config) / "benchmarks" / "results"
    if results.is_dir():
        config["watch"].append(str(results))
    return config


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    if isinstance(value, list):
        if not value:
            return "none"
        if len(value) <= 4 and all(not isinstance(v, dict | list) for v in value):
            return ", ".join(_fmt(v) for v in value)
        return f"{len(value)} values"
    if isinstance(value, dict):
        return f"{len(value)} fields"
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 120 else text[:117] + "..."


def _flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    """One level of nesting becomes `outer.inner` columns; deeper values are summarised."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not prefix and all(
                not isinstance(v, dict) for v in value.values()):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _table(rows: list[dict]) -> str:
    flat = [_flatten(r) for r in rows]
    columns: list[str] = []
    for r in flat:
        columns.extend(c for c in r if c not in columns)
    # raw samples (e.g. 60 p-values) are data, not a figure: the summary columns say it
    columns = [c for c in columns if not all(
        isinstance(r.get(c), list) and len(r[c]) > 4 for r in flat)]
    columns = columns[:MAX_COLUMNS]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in flat]
    return "\n".join(lines)


def _tables(obj: Any, path: str = "") -> list[tuple[str, str]]:
    """Every list of records and every mapping of name -> record in `obj`, depth first."""
    found: list[tuple[str, str]] = []
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        found.append((path, _table(obj)))
        for i, r in enumerate(obj[:1]):
            for key, value in r.items():
                if isinstance(value, list | dict) and key not in SKIP_KEYS:
                    nested = _tables(value, f"{path}[{i}].{key}")
                    found.extend(t for t in nested if "|" in t[1] and t[1].count("\n") > 2)
        return found
    if isinstance(obj, dict):
        values = list(obj.values())
        if values and all(isinstance(v, dict) for v in values) and path:
            table = _table(values)
            head, rule, *body = table.split("\n")
            names = [_fmt(k) for k in obj]
            head = "| name " + head
            rule = "|---" + rule
            body = [f"| {n} " + line for n, line in zip(names, body, strict=True)]
            found.append((path, "\n".join([head, rule, *body])))
            return found
        for key, value in obj.items():
            if key in SKIP_KEYS:
                continue
            if isinstance(value, list | dict):
                found.extend(_tables(value, f"{path}.{key}" if path else key))
    return found


def _environment(data: dict) -> str:
    env = data.get("environment")
    if not isinstance(env, dict):
        return "*No environment recorded in this file.*"
    parts = []
    for key in LOAD_KEYS:
        if key in env:
            parts.append(f"load average {_fmt(env[key])}")
            break
    for key in ("cpu_count", "torch_threads", "requested_threads", "python", "torch", "numpy",
                "timestamp"):
        if key in env:
            parts.append(f"{key.replace('_', ' ')} {_fmt(env[key])}")
    variables = env.get("env") or {}
    if variables:
        parts.append("variables " + ", ".join(f"`{k}={v}`" for k, v in sorted(variables.items())))
    return "Environment: " + "; ".join(parts) + "."


def _scalars(data: dict) -> str:
    items = [(k, v) for k, v in data.items()
             if k not in SKIP_KEYS and not isinstance(v, dict | list)]
    lists = [(k, v) for k, v in data.items() if isinstance(v, list)
             and v and not isinstance(v[0], dict) and k not in SKIP_KEYS]
    items += lists
    if not items:
        return ""
    return "Parameters: " + "; ".join(f"{k} {_fmt(v)}" for k, v in items) + "."


def render_results(results_dir: Path) -> str:
    """Markdown for every results file in `results_dir`, sorted by name."""
    files = sorted(results_dir.glob("*.json"))
    if not files:
        return "*No results in `benchmarks/results/` yet: run `make bench`.*\n"
    out = []
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"benchmarks/results/{path.name}: cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"benchmarks/results/{path.name}: expected a JSON object")
        name = path.stem
        module = results_dir.parent / f"{name}.py"
        command = (f"`python -m benchmarks.{name}`" if module.exists()
                   else "(no benchmark module of this name)")
        out += [f"## {name}", "", f"Command: {command}; file: `benchmarks/results/{path.name}`.",
                "", _environment(data), ""]
        scalars = _scalars(data)
        if scalars:
            out += [scalars, ""]
        for where, table in _tables(data):
            out += [f"**{where}**", "", table, ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{PAGE}: the marker {MARKER} is missing")
    return markdown.replace(MARKER, render_results(_root(config) / "benchmarks" / "results"))
