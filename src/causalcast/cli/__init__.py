"""The one entry point: ``causalcast <command>``. Each command group lives in its own module
(data.py, run.py, ...) and is attached here; this file only assembles them."""

from __future__ import annotations

import logging
import sys

import typer
from typer.exceptions import TyperException

from causalcast.cli import config as config_commands
from causalcast.cli import data as data_commands
from causalcast.cli import evaluate as evaluate_commands
from causalcast.cli import monitor as monitor_commands
from causalcast.cli import options as options_commands
from causalcast.cli import predict as predict_command
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
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("causalcast")
        except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
            number = "unknown"
        sys.stdout.write(f"causalcast {number}\n")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", metavar="", callback=_print_version,
                                      is_eager=True, help="Print the version and exit."),
) -> None:
    """Causal market forecasting and option pricing whose numbers can be audited."""


data_commands.register(app)
options_commands.register(app)
run_command.register(app)
train_commands.register(app)
predict_command.register(app)
registry_commands.register(app)
serve_command.register(app)
evaluate_commands.register(app)
config_commands.register(app)
monitor_commands.register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Usage errors (an unknown option, a value out of range) are one line on
    stderr and exit 2, like every other input error, instead of click's framed box."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(args=argv, prog_name="causalcast", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):  # pragma: no cover - interactive only
        sys.exit(130)
    except TyperException as exc:   # click's UsageError and kin (vendored by typer)
        context = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
            sys.stdout.write(context.get_help())   # a group called without a command
            sys.exit(0)
        message = " ".join(exc.format_message().split())
        hint = f" (see: {context.command_path} --help)" if context is not None else ""
        sys.stderr.write(f"error: {message}{hint}\n")
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
