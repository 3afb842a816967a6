"""`causalcast run`: the main job on embedded defaults, end to end, showing progress.

Every step is also its own command (synth, data validate, features, audit, train, evaluate,
report, registry promote, serve); the stages themselves live in `causalcast.pipeline`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from causalcast.cli.common import console, table, writable_home
from causalcast.config import load_settings


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _p(p) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def run(
    profile: str = typer.Option("quick", "--profile", help="quick (about 5 min on 2 cores) "
                                "or full (larger models, more symbols)."),
    home: Path = typer.Option(Path(".causalcast"), "--home", help="Registry, data, report."),
    seed: int = typer.Option(42, "--seed"),
    workers: int = typer.Option(None, "--workers", help="Training processes (default: cores)."),
) -> None:
    """Synthesise a universe, load MSFT, validate, build features, audit, train in parallel,
    evaluate walk-forward with significance tests, promote what passes, write the report."""
    from causalcast.training.profiles import PROFILES

    if profile not in PROFILES:
        raise typer.BadParameter(f"--profile: choose from {list(PROFILES)}")
    writable_home(home)
    from causalcast.audit import run_audit
    from causalcast.data.sources import load_ohlcv, write_ohlcv
    from causalcast.data.synthetic import make_universe
    from causalcast.features.pipeline import prepare_symbol, required_bars
    from causalcast.io import atomic_write_json
    from causalcast.pipeline import (
        ALL_MODELS,
        REGIME_CHANGE_AT,
        REPLAY_BARS,
        Dataset,
        evaluate_dataset,
        promote_evaluated,
        replay_dataset,
        train_dataset,
        with_regime_change,
    )

    p = {**PROFILES[profile]["main_job"], "profile": profile}
    settings = load_settings(overrides={"seed": seed, "home": str(home)})
    cfg = settings.features
    started = time.perf_counter()

    def step(text: str) -> None:
        console.print(f"[bold cyan]>[/] {text}  [dim]({time.perf_counter() - started:.0f}s)[/]")

    step(f"synthesising {p['symbols']} symbols x {p['bars']} bars with a known accuracy ceiling")
    universe = make_universe(p["symbols"], p["bars"], seed=seed)
    # The last bars are held out of everything below and replayed as "new" bars at the end;
    # the synthetic replay gets a planted regime change (signal off, volatility x 3).
    held = REPLAY_BARS["synthetic"]
    live_synthetic = with_regime_change(universe.frames, p["bars"] - held + REGIME_CHANGE_AT,
                                        seed=seed)
    synth_dir = (home / "data" / "synthetic").resolve()
    write_ohlcv({s: f.iloc[:-held] for s, f in universe.frames.items()}, synth_dir)
    atomic_write_json(synth_dir / "universe.json", universe.metadata())

    step("loading and validating the synthetic files and the real MSFT sample (pmdarima)")
    need = required_bars(cfg, settings.split)
    synthetic, syn_reports = load_ohlcv(synth_dir, min_bars=need, with_reports=True)
    live_msft = load_ohlcv("sample:msft", min_bars=need)
    msft_dir = (home / "data" / "msft").resolve()
    write_ohlcv({s: f.iloc[:-REPLAY_BARS["msft"]] for s, f in live_msft.items()}, msft_dir)
    msft, msft_reports = load_ohlcv(msft_dir, min_bars=need, with_reports=True)

    step("building causal features and targets")
    frames = {**synthetic, **msft}
    prepared = {s: prepare_symbol(s, f, cfg) for s, f in frames.items()}
    console.print(table("Data and features", ["symbol", "bars", "samples", "features"],
                        [(s, len(frames[s]), x.n_samples, len(x.feature_names))
                         for s, x in prepared.items()]))

    step("leakage audit: prefix invariance, perturbation, purge, augmentation isolation")
    datasets = [
        Dataset("synthetic", str(synth_dir), synthetic,
                run_audit(synthetic, settings, n_cuts=p["audit_cuts"], seed=seed), universe),
        Dataset("msft", str(msft_dir), msft,
                run_audit(msft, settings, n_cuts=p["audit_cuts"], seed=seed)),
    ]
    for ds in datasets:
        verdict = "[green]passed[/]" if ds.audit.passed else "[red]FAILED[/]"
        console.print(f"  audit {ds.label}: {verdict} ({len(ds.audit.checks)} checks)")
    if not all(ds.audit.passed for ds in datasets):
        console.print("[red]leakage audit failed: nothing is trained or reported[/]")
        raise typer.Exit(1)

    for ds in datasets:
        step(f"training {ds.label}: {len(ALL_MODELS)} models x ({p['folds']} walk-forward "
             "folds + final fit), in parallel, into the registry")
        train_dataset(ds, home=home, models=ALL_MODELS, n_folds=p["folds"],
                      horizons=cfg.horizons, lookback=cfg.lookback, seed=seed,
                      profile=p["profile"], workers=workers, train_params=p["train"])

    step("walk-forward evaluation: accuracy with intervals, DM / direction tests vs naive, "
         "backtest after costs, ensemble")
    for ds in datasets:
        evaluate_dataset(ds)

    step("attaching evaluations to the final fits and promoting those that pass the gates")
    for ds in datasets:
        promote_evaluated(ds, home)

    step(f"replaying the held-out bars as new ({REPLAY_BARS['synthetic']} synthetic with a "
         f"regime change {REGIME_CHANGE_AT} bars in, {REPLAY_BARS['msft']} MSFT): every "
         "forecast logged, scored as its bars arrive, drift watched")
    replays = {ds.label: replay_dataset(ds, home, full, REPLAY_BARS[ds.label])
               for ds, full in zip(datasets, (live_synthetic, live_msft), strict=True)}

    from causalcast.evaluation.report import write_report

    report_path = write_report([ds.evaluation for ds in datasets], home / "report.html")
    _print_results(datasets, universe)
    _print_live(replays)
    summary = {
        "profile": profile, "seconds": round(time.perf_counter() - started, 1),
        "bayes_accuracy": universe.bayes_accuracy,
        "data": {s: r.to_dict() for s, r in {**syn_reports, **msft_reports}.items()},
        "audit": {ds.label: ds.audit.to_dict() for ds in datasets},
        "runs": {ds.label: ds.run.to_dict() for ds in datasets if ds.run},
        "promotions": [row for ds in datasets for row in ds.promotions],
        "live": {label: {"timeline": r["timeline"],
                         "status": {x["version"]: x["status"] for x in r["reports"]}}
                 for label, r in replays.items()},
        "report": str(report_path),
    }
    atomic_write_json(home / "run_summary.json", summary)
    step("done")
    numbers = report_path.with_suffix(".json")
    console.print(f"\nReport: [bold]{report_path}[/] (numbers in {numbers})")
    console.print(f"Serve the promoted models:  [bold]causalcast serve --home {home}[/]  then\n"
                  "  curl -s localhost:8000/v1/forecast -H 'content-type: application/json' "
                  "-d '{\"symbol\": \"SYN000\"}'")
    failed = sum(ds.run.failed for ds in datasets if ds.run)
    if failed:
        console.print(f"[red]{failed} training jobs failed; see `causalcast registry show "
                      "--run RUN_ID`[/]")
        raise typer.Exit(1)


def _print_results(datasets: list, universe) -> None:
    for ds in datasets:
        board = ds.evaluation["leaderboard"]
        rows = [(r["model"], f"{_fmt(r['accuracy'])} [{_fmt(r['ci_low'])},{_fmt(r['ci_high'])}]",
                 _fmt(r["always_up"]), _fmt(r.get("ceiling")), _p(r["p_dm"]),
                 _p(r["p_direction"]), _fmt(r["sharpe"], 2), r["grade_shown"])
                for r in board]
        console.print(table(
            f"{ds.label}: walk-forward test, h={board[0]['h']}, {board[0]['n']} bars pooled "
            "over folds", ["model", "accuracy [95% CI]", "always up", "ceiling", "p DM",
                           "p dir", "Sharpe", "grade"], rows))
        for line in ds.evaluation.get("summary", [])[:8]:
            console.print(f"  {line}")
        console.print(table(f"Promotion: {ds.label}", ["model", "version", "promoted", "why"],
                            [(r["model"], r.get("version", r["candidate"]),
                              "yes" if r["promoted"] else "no", r["reason"])
                             for r in ds.promotions]))


def _print_live(replays: dict) -> None:
    """Live (replayed) vs walk-forward accuracy, and when each version was flagged."""
    for label, result in replays.items():
        if not result["reports"]:
            console.print(f"{label}: no promoted version, nothing to replay")
            continue
        rows = []
        for r in result["reports"]:
            h = r["drift"].get("horizon")
            d = (r["live"].get(str(h)) or {}).get("direction") or {}
            wf = r["walk_forward"] or {}
            flagged = next((bars for bars, status in result["timeline"][r["version"]]
                            if status == "degraded"), None)
            rows.append((r["version"], r["status"], r["distinct_scored"],
                         f"{_fmt(d.get('accuracy'))} [{_fmt(d.get('ci_low'))},"
                         f"{_fmt(d.get('ci_high'))}]",
                         f"{_fmt(wf.get('accuracy'))} [{_fmt(wf.get('ci_low'))},"
                         f"{_fmt(wf.get('ci_high'))}]",
                         "-" if flagged is None else f"after {flagged} bars",
                         (r["reasons"] or ["-"])[0][:40]))
        console.print(table(
            f"{label}: live replay of {result['bars']} held-out bars vs walk-forward "
            "(first horizon)", ["version", "status", "scored", "live accuracy [95% CI]",
                                "walk-forward [95% CI]", "degraded", "first reason"], rows))
