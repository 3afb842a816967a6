"""MkDocs hook: the command-line reference, generated from the CLI itself at build time.

The page `cli.md` holds a marker (`<!-- cli-reference -->`); this hook replaces it with one
section per command (usage, help text, and a table of its arguments and options with their
defaults), walking the Typer app's click tree. The reference therefore cannot drift from the
code. The repository's own `src/` is put first on `sys.path`, so the checkout being documented
is the one imported, whatever is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- cli-reference -->"
PAGE = "cli.md"


def _escape(text: str) -> str:
    # Brackets are escaped too: `store:[PATH][?version=N]` is not a Markdown reference link.
    text = " ".join(str(text).split())
    for char in "|[]":
        text = text.replace(char, "\\" + char)
    return text


def _param_row(param: Any) -> str | None:
    if getattr(param, "hidden", False) or param.name == "help":
        return None
    if param.param_type_name == "argument":
        name = f"`{(param.metavar or param.name).upper()}`"
        kind = "argument" + ("" if param.required else " (optional)")
        return f"| {name} | {kind} | – |"
    names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    if param.is_flag:
        default = "on" if param.default else "off"
    elif param.default is None or param.default == () or callable(param.default):
        default = "–"
    else:
        default = f"`{param.default}`"
    required = " (required)" if param.required else ""
    return f"| {names} | {_escape(param.help or '')}{required} | {default} |"


def _sections(command: Any, path: list[str], depth: int) -> list[str]:
    # Duck-typed: Typer may bring its own copy of click, so no isinstance on click classes.
    out: list[str] = []
    name = " ".join(path)
    heading = "#" * min(depth, 4)
    ctx = command.context_class(command, info_name=name)
    out += [f"{heading} `{name}`", ""]
    if command.help:
        out += [" ".join(command.help.split("\b")).strip(), ""]
    if hasattr(command, "list_commands"):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not getattr(sub, "hidden", False):
                out += _sections(sub, [*path, sub_name], depth + 1)
        return out
    out += ["```text", command.get_usage(ctx).strip(), "```", ""]
    rows = [r for r in (_param_row(p) for p in command.params) if r]
    if rows:
        out += ["| argument / option | meaning | default |", "|---|---|---|", *rows, ""]
    return out


def render_cli(src: Path) -> str:
    """Markdown reference for every `causalcast` command, imported from `src`."""
    sys.path.insert(0, str(src))
    try:
        import typer

        import causalcast
        from causalcast.cli import app
    finally:
        sys.path.remove(str(src))
    if src.resolve() not in Path(causalcast.__file__).resolve().parents:
        raise RuntimeError(f"docs/hooks/cli.py: causalcast was already imported from "
                           f"{causalcast.__file__}, not from {src}")
    root = typer.main.get_command(app)
    return "\n".join(_sections(root, ["causalcast"], 2)[3:])


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{PAGE}: the marker {MARKER} is missing")
    root = Path(config["config_file_path"]).resolve().parent
    return markdown.replace(MARKER, render_cli(root / "src"))
