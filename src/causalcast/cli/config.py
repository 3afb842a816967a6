"""`causalcast config show`: the effective settings and the layer each value came from."""

from __future__ import annotations

from pathlib import Path

import typer

from causalcast.cli.common import JSON_OPTION, clear_errors, console, print_json, table

config_app = typer.Typer(help="Inspect the configuration (file, CAUSALCAST_* environment, "
                         "command line).", no_args_is_help=True)

CONFIG_OPTION = typer.Option(None, "--config", help="TOML settings file (default: the file "
                             "named by CAUSALCAST_CONFIG, if set).")


@config_app.command("show")
def show(config: Path | None = CONFIG_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Print every setting, its effective value and where it came from. Precedence, lowest
    first: default < TOML file < CAUSALCAST_* environment (``__`` between nested names,
    e.g. CAUSALCAST_FEATURES__LOOKBACK=20) < command-line flags."""
    from causalcast.config import settings_sources

    with clear_errors():
        _, sources = settings_sources(config)
    if as_json:
        print_json(sources)
        return
    console.print(table("Effective settings (default < file < environment < command line)",
                        ["setting", "value", "source"],
                        [(name, entry["value"], entry["source"])
                         for name, entry in sources.items()]))


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
