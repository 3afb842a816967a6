"""The one entry point: ``causalcast <command>``. Each command group lives in its own module
(data.py, run.py, ...) and is attached here; this file only assembles them."""

from __future__ import annotations

import logging
import sys

import typer

from causalcast.cli import data as data_commands
from causalcast.cli import evaluate as evaluate_commands
from causalcast.cli import monitor as monitor_commands
from causalcast.cli import options as options_commands
from causalcast.cli import registry as registry_commands
from causalcast.cli import run as run_command
from causalcast.cli import serve as serve_command
from causalcast.cli import train as train_commands

app = typer.Typer(
    name="causalcast",
    help="Causal market forecasting and option pricing whose numbers can be audited.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_commands.register(app)
options_commands.register(app)
run_command.register(app)
train_commands.register(app)
registry_commands.register(app)
serve_command.register(app)
evaluate_commands.register(app)
monitor_commands.register(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
