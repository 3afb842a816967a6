"""`causalcast run`: the main job on embedded defaults, end to end, showing progress.

Steps grow as the platform does; each is also its own command."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from causalcast.audit import run_audit
from causalcast.cli.common import console, table
from causalcast.cli.train import quick_training
from causalcast.config import load_settings
from causalcast.data.sources import load_ohlcv, write_ohlcv
from causalcast.data.synthetic import make_universe
from causalcast.features.pipeline import prepare_symbol, required_bars
from causalcast.io import atomic_write_json

PROFILES = {
    "quick": {"symbols": 8, "bars": 2520, "audit_cuts": 10},
    "full": {"symbols": 50, "bars": 2520, "audit_cuts": 30},
}


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    profile: str = typer.Option("quick", "--profile", help="quick (about 5 min) or full."),
    home: Path = typer.Option(Path(".causalcast"), "--home", help="Where results are kept."),
    seed: int = typer.Option(42, "--seed"),
) -> None:
    """Synthesise a universe, load MSFT, validate, build features, audit, summarise."""
    if profile not in PROFILES:
        raise typer.BadParameter(f"--profile: choose from {list(PROFILES)}")
    p = PROFILES[profile]
    settings = load_settings(overrides={"seed": seed, "home": str(home)})
    started = time.perf_counter()

    def step(text: str) -> None:
        console.print(f"[bold cyan]>[/] {text}  [dim]({time.perf_counter() - started:.1f}s)[/]")

    step(f"synthesising {p['symbols']} symbols x {p['bars']} bars (known ceiling)")
    universe = make_universe(p["symbols"], p["bars"], seed=seed)
    synth_dir = home / "data" / "synthetic"
    write_ohlcv(universe.frames, synth_dir)
    atomic_write_json(synth_dir / "universe.json", universe.metadata())

    step("loading and validating the synthetic files and the MSFT sample (pmdarima)")
    need = required_bars(settings.features, settings.split)
    synthetic, syn_reports = load_ohlcv(synth_dir, min_bars=need, with_reports=True)
    msft, msft_reports = load_ohlcv("sample:msft", min_bars=need, with_reports=True)

    step("building causal features and targets")
    frames = {**synthetic, **msft}
    prepared = {s: prepare_symbol(s, f, settings.features) for s, f in frames.items()}

    step("leakage audit (prefix, perturbation, purge, augmentation isolation)")
    audit = {}
    for name, group in (("synthetic", synthetic), ("msft", msft)):
        audit[name] = run_audit(group, settings, n_cuts=p["audit_cuts"], seed=seed)

    step("training quick models on the synthetic universe (one global model each)")
    trained = quick_training(f"synthetic:{p['symbols']},{p['bars']},"
                             f"{universe.params.strength},{seed}", home / "models",
                             settings.features.horizons, settings.features.lookback, seed)

    rows = [(s, len(frames[s]), prep.n_samples, len(prep.feature_names))
            for s, prep in prepared.items()]
    console.print(table("Data and features", ["symbol", "bars", "samples", "features"], rows))
    console.print(table("Known accuracy ceiling of the synthetic universe",
                        ["horizon", "Bayes-optimal directional accuracy"],
                        [(h, f"{a:.3f}") for h, a in universe.bayes_accuracy.items()]))
    for name, report in audit.items():
        verdict = "[green]passed[/]" if report.passed else "[red]FAILED[/]"
        console.print(f"leakage audit ({name}): {verdict}, {len(report.checks)} checks")
    summary = {
        "profile": profile, "seconds": round(time.perf_counter() - started, 1),
        "bayes_accuracy": universe.bayes_accuracy,
        "data": {s: r.to_dict() for s, r in {**syn_reports, **msft_reports}.items()},
        "audit": {k: v.to_dict() for k, v in audit.items()},
        "training": [r.to_dict() for r in trained],
    }
    atomic_write_json(home / "run_summary.json", summary)
    step(f"done; summary in {home / 'run_summary.json'}")
    if not all(r.passed for r in audit.values()) or any(r.status != "ok" for r in trained):
        raise typer.Exit(1)
