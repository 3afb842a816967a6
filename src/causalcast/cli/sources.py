"""How every command names its inputs: bars (``--data``), a market data store (``--store``)
and an option chain (``--chain``), each with one help text, so ``--help`` says the same thing
on every command. Bars are resolved by one function, `causalcast.data.resolve.resolve_source`;
this module only builds the options and turns the deprecated spellings into ``--data``."""

from __future__ import annotations

from typing import Any

import typer

from causalcast.cli.common import err_console, fail

DATA_FORMS = ("a folder or file of CSV/Parquet bars, sample:msft, "
              "synthetic:N[,BARS[,STRENGTH[,SEED]]] (missing fields: 2520 bars, strength "
              "0.325, seed 0) or store:[PATH][?interval=1d&prices=adjusted&version=N]")
STORE_FORMS = "a folder or an fsspec URI such as s3://bucket/prefix"
CHAIN_FORMS = ("a chain file (CSV/Parquet, normalised schema) or "
               "store:[PATH]?underlying=X[&as_of=T]")


def data_option(purpose: str = "Bars to read.", *, required: bool = False) -> Any:
    """``--data``: `purpose` (what the command does with the bars, its default) and then the
    accepted forms, the same words on every command."""
    return typer.Option(... if required else None, "--data",
                        help=f"{purpose} Forms: {DATA_FORMS}.")


def store_option(purpose: str = "Market data store.") -> Any:
    return typer.Option(None, "--store", help=f"{purpose} Forms: {STORE_FORMS}.")


def chain_option(purpose: str = "Option chain.", *, required: bool = False) -> Any:
    return typer.Option(... if required else None, "--chain",
                        help=f"{purpose} Forms: {CHAIN_FORMS}.")


SYNTHETIC_ALIAS = typer.Option(None, "--synthetic", hidden=True,
                               help="Deprecated: --data synthetic:N,BARS,STRENGTH,SEED.")


def deprecated(old: str, new: str) -> None:
    """One line on stderr: the old spelling still works, and what to write instead."""
    err_console.print(f"[yellow]deprecated:[/] {old}; use {new}", highlight=False,
                      soft_wrap=True)


def data_source(data: str | None, synthetic: str | None = None, seed: int = 0, *,
                required: bool = True) -> str | None:
    """The data string a command resolves, from ``--data`` or the deprecated ``--synthetic
    N[,BARS[,STRENGTH[,SEED]]]`` (whose missing SEED was taken from ``--seed``; kept so old
    scripts train on the same universe)."""
    from causalcast.data.resolve import SYNTHETIC_PREFIX, parse_synthetic

    if data is not None and synthetic is not None:
        fail("--data and the deprecated --synthetic: give only --data "
             "synthetic:N,BARS,STRENGTH,SEED")
    if synthetic is not None:
        try:
            kw = parse_synthetic(synthetic)
        except ValueError as exc:
            fail(f"--synthetic: {exc}")
        text = (f"{SYNTHETIC_PREFIX}{kw['n_symbols']},{kw.get('n_bars', 2520)},"
                f"{kw.get('strength', 0.325)},{kw.get('seed', seed)}")
        deprecated("--synthetic", f"--data {text}")
        return text
    if data is None and required:
        fail(f"--data: required ({DATA_FORMS})")
    return data
