"""Option commands: price (one option or a CSV batch), implied volatility, train the networks."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import typer

from causalcast.cli.common import JSON_OPTION, clear_errors, console, fail, print_json, table
from causalcast.io import atomic_write_text

options_app = typer.Typer(help="Price European and American options (PINN, closed form, "
                          "QuantLib).", no_args_is_help=True)

GREEK_COLUMNS = ("price", "delta", "gamma", "vega", "theta", "rho")
CSV_INPUTS = ("spot", "strike", "tau", "sigma")


def register(app: typer.Typer) -> None:
    from causalcast.cli import options_analytics, options_chain

    options_analytics.register(options_app)
    options_chain.register(options_app)
    app.add_typer(options_app, name="options")


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.5g}"


@options_app.command("price")
def price(
    spot: float = typer.Option(..., "--spot", help="Underlying price S."),
    strike: float = typer.Option(..., "--strike", help="Strike K."),
    tau: float = typer.Option(..., "--tau", help="Time to expiry in years."),
    sigma: float = typer.Option(..., "--sigma", help="Volatility per year (0.2 = 20%)."),
    rate: float = typer.Option(0.0, "--rate", help="Risk-free rate, continuous, per year."),
    div: float = typer.Option(0.0, "--div", help="Dividend yield, continuous, per year."),
    kind: str = typer.Option("call", "--kind", "--type", help="call, put or both (the HTTP "
                             "field's name; --type: the old spelling)."),
    style: str = typer.Option("european", "--style", help="european or american."),
    method: str = typer.Option("pinn", "--method", help="pinn, closed (European) or quantlib."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Price one option with its Greeks; the PINN refuses inputs outside its trained domain."""
    import numpy as np

    from causalcast.options.pricer import price_options

    kinds = ["call", "put"] if kind.strip().lower() == "both" else [kind]
    with clear_errors():
        res = price_options(spot, strike, tau, sigma, rate, div, "both" if len(kinds) == 2
                            else kind, style, method)
    rows = []
    for i, k in enumerate(kinds):
        vals = {g: float(np.asarray(res[g]).reshape(len(kinds))[i]) for g in GREEK_COLUMNS}
        rows.append({"type": k.lower(), "style": style, "method": method, **vals})
    if as_json:
        print_json(rows if len(rows) > 1 else rows[0])
        return
    console.print(table(f"{style} option  S={spot:g} K={strike:g} tau={tau:g} sigma={sigma:g} "
                        f"r={rate:g} q={div:g}", ["type", "method", *GREEK_COLUMNS],
                        [(r["type"], method, *(_fmt(r[g]) for g in GREEK_COLUMNS))
                         for r in rows]))


@options_app.command("batch")
def batch(
    source: Path = typer.Argument(..., help="CSV with columns spot,strike,tau,sigma[,rate,div,"
                                  "type,style]."),
    out: Path = typer.Argument(..., help="CSV to write: the input plus price and Greeks."),
    kind: str = typer.Option("call", "--kind", "--type", help="Default when the CSV has no "
                             "type column (--type: the old spelling)."),
    style: str = typer.Option("european", "--style", help="Default when no style column."),
    method: str = typer.Option("pinn", "--method", help="pinn, closed or quantlib."),
    greeks: bool = typer.Option(True, "--greeks/--no-greeks", metavar=""),
    as_json: bool = JSON_OPTION,
) -> None:
    """Price a CSV batch. Rows outside the PINN's domain are flagged (in_domain=false, NaN
    prices), never extrapolated; bad values stop the run naming the row and column."""
    import numpy as np
    import pandas as pd

    from causalcast.options.pricer import price_options

    with clear_errors():
        frame = pd.read_csv(source)
        missing = [c for c in CSV_INPUTS if c not in frame.columns]
        if missing:
            fail(f"{source}: missing column(s) {missing}; need {list(CSV_INPUTS)}")
        if frame.empty:
            fail(f"{source}: no rows")
        for col in ("rate", "div"):
            if col not in frame.columns:
                frame[col] = 0.0
        if "type" not in frame.columns:
            frame["type"] = kind
        if "style" not in frame.columns:
            frame["style"] = style
        for col in (*CSV_INPUTS, "rate", "div"):
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = values.isna() | ~np.isfinite(values)
            if col in CSV_INPUTS:
                bad |= values <= 0
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                need = "a number > 0" if col in CSV_INPUTS else "a finite number"
                fail(f"{source}: column {col!r}, row {row + 2} (line in file): "
                     f"{frame[col].iloc[row]!r} is not {need}; {int(bad.sum())} bad row(s)")
            frame[col] = values.astype(float)
        started = time.perf_counter()
        results = {c: np.full(len(frame), np.nan) for c in GREEK_COLUMNS}
        results["in_domain"] = np.ones(len(frame), bool)
        for sty in frame["style"].astype(str).str.lower().unique():
            sel = (frame["style"].astype(str).str.lower() == sty).to_numpy()
            part = frame[sel]
            res = price_options(part["spot"], part["strike"], part["tau"], part["sigma"],
                                part["rate"], part["div"], part["type"].to_numpy(), sty, method,
                                greeks=greeks, on_out_of_domain="flag")
            for c, v in res.items():
                results[c][sel] = v
        elapsed = time.perf_counter() - started
    for c, v in results.items():
        if c in GREEK_COLUMNS and not greeks and c != "price":
            continue
        frame[c] = v
    with clear_errors():
        atomic_write_text(out, frame.to_csv(index=False))
    flagged = int((~results["in_domain"]).sum())
    summary = {"rows": len(frame), "out": str(out), "seconds": round(elapsed, 4),
               "out_of_domain": flagged, "method": method}
    if as_json:
        print_json(summary)
        return
    console.print(f"[green]ok[/]: priced {len(frame)} rows in {elapsed * 1e3:.1f} ms -> {out}")
    if flagged:
        console.print(f"[yellow]{flagged} row(s) outside the trained domain[/]: in_domain=false, "
                      "prices left empty (use --method closed or quantlib for them)")


@options_app.command("train-pinn")
def train_pinn(
    which: str = typer.Option("both", "--which", help="european, american or both (the "
                              "American network sits on top of the European one)."),
    profile: str = typer.Option("full", "--profile", help="full (shipped weights) or quick "
                                "(seconds; for smoke tests)."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(None, "--out", help="Weights folder (default: a new folder "
                             "./pinn-weights; pass the package folder to replace the shipped "
                             "weights)."),
    evaluate: bool = typer.Option(True, "--evaluate/--no-evaluate", metavar="",
                                  help="Measure the acceptance figures after training."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train the PINN(s) reproducibly (same seed, same weights) and write safetensors + JSON."""
    from causalcast.options.train_command import run_training

    if which not in ("european", "american", "both"):
        fail(f"--which: expected european, american or both, got {which!r}")
    folder = out if out is not None else Path("pinn-weights")
    log = (lambda s: None) if as_json else (lambda s: console.print(s, highlight=False))
    with clear_errors():
        report = run_training(folder, which, profile, seed, evaluate, log)
    if as_json:
        print_json(report)
        return
    console.print_json(json.dumps(report, default=str))
