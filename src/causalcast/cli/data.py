"""Data commands: validate, synth, features, audit (the store's commands: cli/store.py)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from causalcast.cli import store as store_commands
from causalcast.cli.common import (
    JSON_OPTION,
    clear_errors,
    console,
    fail,
    parse_horizons,
    print_json,
    table,
)
from causalcast.cli.sources import data_option, data_source, deprecated
from causalcast.config import FeatureConfig, load_settings

# Heavy modules (pandas, scipy, arch, torch) are imported inside the commands, so that
# `causalcast --help` starts in well under a second.

data_app = typer.Typer(help="Load and validate market data.", no_args_is_help=True)

REPAIR_OPTION = typer.Option(
    None, "--repair", help="Opt-in repair (repeatable): sort, drop_duplicates, drop_nonfinite, "
    "fix_high_low, drop_nonpositive, clip_volume. Each is logged and counted.")


@data_app.command("validate")
def validate(
    data: str | None = data_option("Bars to validate."),
    source: str | None = typer.Argument(None, hidden=True, help="Deprecated: --data."),
    repair: list[str] = REPAIR_OPTION,
    lookback: int = typer.Option(60, help="Lookback window the data must support."),
    horizons: str = typer.Option("1,5,10,30", help="Forecast horizons in bars."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate bars; exit 2 with file, field and place of the first problems."""
    from causalcast.data.resolve import validate_source
    from causalcast.features.pipeline import required_bars

    if source is not None:
        if data is not None:
            fail("--data and a positional SOURCE: give only --data")
        deprecated("`data validate SOURCE`", f"data validate --data {source}")
        data = source
    data = data_source(data)
    with clear_errors():
        cfg = FeatureConfig(lookback=lookback, horizons=parse_horizons(horizons))
        frames, reports = validate_source(data, repairs=set(repair or []),
                                          min_bars=required_bars(cfg))
    if as_json:
        print_json({"ok": True, "symbols": {s: r.to_dict() for s, r in reports.items()}})
        return
    rows = [(s, r.n_bars, r.start, r.end, r.bar_spacing,
             sum(r.repairs.values()), len(r.warnings)) for s, r in reports.items()]
    console.print(table("Data report", ["symbol", "bars", "start", "end", "spacing",
                                        "repaired", "gap warnings"], rows))
    for s, r in reports.items():
        for w in r.warnings[:5]:
            console.print(f"[yellow]{s}[/]: {w}")
    console.print(f"[green]ok[/]: {len(frames)} symbols valid")


def register(app: typer.Typer) -> None:
    store_commands.register(data_app)
    app.add_typer(data_app, name="data")
    app.command("synth")(synth)
    app.command("features")(features)
    app.command("audit")(audit)


def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write one file per symbol into."),
    symbols: int = typer.Option(10, "--symbols", min=1),
    bars: int = typer.Option(2520, "--bars", min=10),
    strength: float = typer.Option(0.325, "--strength", min=0.0,
                                   help="Signal strength c; 0 = random walk. h=1 ceiling "
                                        "= 1/2 + arctan(c)/pi."),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write a synthetic universe with a known accuracy ceiling (universe.json)."""
    from causalcast.data.sources import write_ohlcv
    from causalcast.data.synthetic import make_universe
    from causalcast.io import atomic_write_json

    if fmt not in ("csv", "parquet"):
        fail(f"--format: expected csv or parquet, got {fmt!r}")
    with clear_errors():
        universe = make_universe(symbols, bars, strength, seed)
        write_ohlcv(universe.frames, out, fmt)
        meta = universe.metadata()
        atomic_write_json(out / "universe.json", meta)
    if as_json:
        print_json({"out": str(out), **meta})
        return
    rows = [(h, f"{a:.4f}", f"{universe.bayes_accuracy_se[h]:.4f}")
            for h, a in universe.bayes_accuracy.items()]
    console.print(table(f"Synthetic universe: {symbols} symbols x {bars} bars -> {out}",
                        ["horizon", "Bayes-optimal accuracy", "MC s.e."], rows))


def features(
    source: str = data_option("Bars to build features from (required unless --list)."),
    out: Path = typer.Option(None, "--out", help="Write features + targets as Parquet here."),
    lookback: int = typer.Option(60),
    horizons: str = typer.Option("1,5,10,30"),
    list_only: bool = typer.Option(False, "--list", metavar="",
                                   help="List the registered indicators."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Build causal features and targets (or list the indicators)."""
    from causalcast.features.indicators import INDICATORS

    if list_only:
        rows = [(i.name, i.warmup, i.description) for i in INDICATORS.values()]
        if as_json:
            print_json([{"name": r[0], "warmup": r[1], "description": r[2]} for r in rows])
        else:
            console.print(table(f"{len(rows)} causal indicators", ["name", "warm-up", "what"],
                                rows))
        return
    if source is None:
        fail("--data: required unless --list is given")
    import numpy as np
    import pandas as pd

    from causalcast.data.resolve import resolve_source
    from causalcast.features.pipeline import prepare_symbol, required_bars
    from causalcast.io import atomic_write_bytes

    with clear_errors():
        cfg = FeatureConfig(lookback=lookback, horizons=parse_horizons(horizons))
        frames, _ = resolve_source(source, min_bars=required_bars(cfg))
        summary = {}
        for symbol, frame in frames.items():
            prepared = prepare_symbol(symbol, frame, cfg)
            summary[symbol] = {"bars": len(frame), "features": len(prepared.feature_names),
                               "samples": prepared.n_samples,
                               "first_sample": str(prepared.dates[prepared.first_sample])}
            if out is not None:
                cols = prepared.feature_names + [f"ret_fwd_{h}" for h in cfg.horizons]
                data = pd.DataFrame(np.hstack([prepared.features, prepared.targets]),
                                    index=prepared.dates, columns=cols)
                atomic_write_bytes(out / f"{symbol}.features.parquet", data.to_parquet())
    if as_json:
        print_json(summary)
        return
    console.print(table("Features", ["symbol", "bars", "features", "samples", "first sample"],
                        [(s, v["bars"], v["features"], v["samples"], v["first_sample"])
                         for s, v in summary.items()]))


def audit(
    source: str = data_option("Bars to audit.", required=True),
    cuts: int = typer.Option(20, "--cuts", min=2, help="Cut points per symbol."),
    config: Path = typer.Option(None, "--config", help="TOML settings file."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Leakage audit: prefix invariance, perturbation, purge, augmentation isolation.
    Exits 1 naming the feature or fold at fault."""
    from causalcast.audit import audit_table_rows, run_audit
    from causalcast.data.resolve import resolve_source
    from causalcast.features.pipeline import required_bars

    with clear_errors():
        settings = load_settings(config)
        frames, _ = resolve_source(source, min_bars=required_bars(settings.features,
                                                                   settings.split))
        started = time.perf_counter()
        report = run_audit(frames, settings, n_cuts=cuts)
    if as_json:
        print_json({**report.to_dict(), "seconds": round(time.perf_counter() - started, 2)})
    else:
        rows = [(n, s, p, f, first[:80]) for n, s, p, f, first in audit_table_rows(report)]
        console.print(table("Leakage audit", ["check", "subject", "passed", "failed",
                                              "first failure"], rows))
        verdict = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
        console.print(f"{verdict}: {len(report.checks)} checks, {len(report.failures)} failed")
    if not report.passed:
        raise typer.Exit(1)
