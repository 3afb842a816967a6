"""Option chains in the store (``causalcast options chain import|fetch|list|show``): chains
stored beside the bars, one table per underlying, one snapshot per as-of time. Other options
commands read them with ``--chain store:[PATH]?underlying=X[&as_of=T]``."""

from __future__ import annotations

from pathlib import Path

import typer

from causalcast.cli.common import JSON_OPTION, clear_errors, console, fail, print_json, table
from causalcast.cli.store import STORE_OPTION

chain_app = typer.Typer(help="Option chains in the store: import, fetch, list, show.",
                        no_args_is_help=True)


def register(options_app: typer.Typer) -> None:
    options_app.add_typer(chain_app, name="chain")


def _stored(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    console.print(f"[green]stored[/]: {result['underlying']} as of {result['as_of']}: "
                  f"{result['quotes']} quotes, {result['expiries']} expiries, "
                  f"{result['flagged']} flagged (store version {result['version']})")


@chain_app.command("import")
def import_chain(
    path: Path = typer.Argument(..., help="Chain CSV/Parquet in the normalised schema."),
    underlying: str = typer.Option(..., "--underlying", help="The underlying's symbol."),
    store: str = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate a chain file and store it as one snapshot."""
    from causalcast.options.analytics.chain import read_chain
    from causalcast.options.analytics.chain_source import store_chain

    with clear_errors():
        result = store_chain(read_chain(path), underlying, store)
    _stored(result, as_json)


@chain_app.command("fetch")
def fetch_chain(
    underlying: str = typer.Argument(..., help="The underlying's symbol."),
    source: str = typer.Option("yahoo", "--source", help="Only 'yahoo' (yfinance)."),
    store: str = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fetch every expiry's chain and store it as one snapshot (offline: one line, exit 2)."""
    from causalcast.options.analytics.chain import fetch_yfinance
    from causalcast.options.analytics.chain_source import store_chain

    if source != "yahoo":
        fail(f"--source: expected yahoo, got {source!r}")
    with clear_errors():
        result = store_chain(fetch_yfinance(underlying), underlying, store)
    _stored(result, as_json)


@chain_app.command("list")
def list_chains(store: str = STORE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Stored underlyings and their snapshot times."""
    from causalcast.options.analytics.chain_source import stored_underlyings

    with clear_errors():
        found = stored_underlyings(store)
    if as_json:
        print_json({"chains": found})
        return
    if not found:
        console.print("no chains stored")
        return
    console.print(table("stored chains", ["underlying", "snapshots", "latest as_of"],
                        [(u, len(s), s[-1] if s else "-") for u, s in found.items()]))


@chain_app.command("show")
def show_chain(
    underlying: str = typer.Argument(..., help="The underlying's symbol."),
    as_of: str = typer.Option(None, "--as-of", help="Latest snapshot at or before this time."),
    store: str = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """One stored snapshot per expiry, with its validation flags (recomputed on read)."""
    from causalcast.options.analytics.chain import validate_chain
    from causalcast.options.analytics.chain_source import load_chain

    source = f"store:{store or ''}?underlying={underlying}" + (f"&as_of={as_of}" if as_of
                                                                else "")
    with clear_errors():
        checked = validate_chain(load_chain(source))
    frame = checked.frame
    per_expiry = [{"expiry": str(e.date()), "quotes": len(g),
                   "flagged": int((g["flag"] != "").sum()),
                   "strikes": [float(g["strike"].min()), float(g["strike"].max())]}
                  for e, g in frame.groupby("expiry")]
    if as_json:
        print_json({"underlying": underlying.upper(), "as_of": frame["as_of"].iloc[0].isoformat(),
                    "spot": float(frame["spot"].iloc[0]), "expiries": per_expiry,
                    "excluded": checked.excluded()})
        return
    console.print(table(f"{underlying.upper()} as of {frame['as_of'].iloc[0].isoformat()}, spot "
                        f"{frame['spot'].iloc[0]:g}", ["expiry", "quotes", "flagged", "strikes"],
                        [(r["expiry"], r["quotes"], r["flagged"],
                          f"{r['strikes'][0]:g}-{r['strikes'][1]:g}") for r in per_expiry]))
