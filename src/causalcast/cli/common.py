"""Helpers shared by the command modules: output in tables or JSON, and clear failures."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.table import Table

PIPE_WIDTH = 10_000


class _Console(Console):
    """A terminal gets its own width; a file or pipe a width no table reaches, so rows are
    never wrapped or cut with an ellipsis (a number must reach a script whole)."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        return dims if self.is_terminal else ConsoleDimensions(PIPE_WIDTH, dims.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


console = _Console()
err_console = _Console(stderr=True)

def json_option(help_text: str = "Print machine-readable JSON on stdout (progress and "
                "errors on stderr).") -> Any:
    """``--json``, on every command (docs/cli.md lists what each prints)."""
    return typer.Option(False, "--json", metavar="", help=help_text)


JSON_OPTION = json_option()


def fail(message: str, code: int = 2) -> NoReturn:
    # The message is escaped: it is printed verbatim (``pip install 'causalcast[bench]'``
    # must not lose ``[bench]`` to rich markup).
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False,
                      soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the expected input errors into one line on stderr and exit code 2."""
    from causalcast.data.quality import DataValidationError
    from causalcast.splits import SplitError

    try:
        yield
    except KeyError as exc:   # str(KeyError) wraps the message in quotes
        fail(str(exc.args[0]) if exc.args else "missing key")
    except (DataValidationError, SplitError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:    # a path that cannot be read or written: name it
        fail(os_error_line(exc))


def os_error_line(exc: OSError) -> str:
    """``PATH: reason`` for a failed file operation (the path first, as every CLI error)."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    return f"{exc.filename}: {reason}"


def writable_home(home: Path) -> Path:
    """Create ``--home`` (and parents) or fail with one line: a home that cannot exist
    (``/proc/x``, a file, no permission) must not surface as a traceback mid-command."""
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--home {home}: cannot create it ({exc.strerror or exc})")
    return home


def registry_home(text: str | Path) -> str | Path:
    """A ``--home`` as `Registry.open` takes it (a ``postgresql://`` URL or a folder)."""
    from causalcast.registry.urls import as_home

    return as_home(text)


def local_home(text: str | Path, command: str) -> Path:
    """A ``--home`` that must be a folder (commands that copy or rebuild SQLite files)."""
    home = registry_home(text)
    if not isinstance(home, Path):
        from causalcast.registry.urls import redact

        fail(f"--home {redact(str(home))}: `{command}` works on a registry folder; back up a "
             f"PostgreSQL registry with pg_dump and its object store's own tools")
    return home


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def print_json_line(obj: Any) -> None:
    """One compact JSON line, flushed: what a long-running command (`serve`, `watch`,
    `retrain --schedule`) prints with ``--json``, readable line by line while it runs."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def table(title: str, columns: list[str], rows: list[tuple[Any, ...]]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(str(v) for v in row))
    return t


def parse_horizons(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        fail(f"--horizons: expected comma-separated integers, got {text!r}")
