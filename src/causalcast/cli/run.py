"""`causalcast run`: the main job on embedded defaults, end to end, showing progress.

Every step is also its own command (synth, data validate, features, audit, train, evaluate,
report, registry promote, serve); the stages themselves live in `causalcast.pipeline`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from causalcast.cli.common import (
    JSON_OPTION,
    clear_errors,
    console,
    err_console,
    fail,
    print_json,
    table,
    writable_home,
)
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
    home: Path | None = typer.Option(None, "--home", help="Registry, data, report (default: "
                                     "the settings' home, .causalcast)."),
    seed: int | None = typer.Option(None, "--seed", help="Default: the settings' seed, 42."),
    workers: int = typer.Option(None, "--workers", help="Training processes (default: cores)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Synthesise a universe, load MSFT, validate, build features, audit, train in parallel,
    evaluate walk-forward with significance tests, promote what passes, write the report.
    With --json the progress goes to stderr and stdout holds only the run summary."""
    show = err_console if as_json else console
    from causalcast.training.profiles import PROFILES

    if profile not in PROFILES:
        raise typer.BadParameter(f"--profile: choose from {list(PROFILES)}")
    given = {"seed": seed, "home": None if home is None else str(home)}
    with clear_errors():   # file, CAUSALCAST_* environment, then these flags
        settings = load_settings(overrides={k: v for k, v in given.items() if v is not None})
    seed, home = settings.seed, settings.home
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
        REPLAY_STEP,
        Dataset,
        evaluate_dataset,
        promote_evaluated,
        train_dataset,
        with_regime_change,
    )

    p = {**PROFILES[profile]["main_job"], "profile": profile}
    cfg = settings.features
    started = time.perf_counter()

    def step(text: str) -> None:
        show.print(f"[bold cyan]>[/] {text}  [dim]({time.perf_counter() - started:.0f}s)[/]")

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

    store = (home / "data").resolve()
    step(f"importing the synthetic files and the real MSFT sample (pmdarima) into the market "
         f"data store {store}, and reading both back")
    need = required_bars(cfg, settings.split)
    data, imported, synthetic, msft, syn_reports, msft_reports = load_through_store(
        store, synth_dir, universe, need, held_msft=REPLAY_BARS["msft"])
    syn_symbols = tuple(sorted(synthetic))
    live_msft = load_ohlcv("sample:msft", min_bars=need)

    step("building causal features and targets")
    frames = {**synthetic, **msft}
    prepared = {s: prepare_symbol(s, f, cfg) for s, f in frames.items()}
    show.print(table("Data and features", ["symbol", "bars", "samples", "features"],
                        [(s, len(frames[s]), x.n_samples, len(x.feature_names))
                         for s, x in prepared.items()]))

    step("leakage audit: prefix invariance, perturbation, purge, augmentation isolation")
    datasets = [
        Dataset("synthetic", data, synthetic,
                run_audit(synthetic, settings, n_cuts=p["audit_cuts"], seed=seed), universe,
                symbols=syn_symbols),
        Dataset("msft", data, msft,
                run_audit(msft, settings, n_cuts=p["audit_cuts"], seed=seed),
                symbols=("MSFT",)),
    ]
    for ds in datasets:
        verdict = "[green]passed[/]" if ds.audit.passed else "[red]FAILED[/]"
        show.print(f"  audit {ds.label}: {verdict} ({len(ds.audit.checks)} checks)")
    if not all(ds.audit.passed for ds in datasets):
        show.print("[red]leakage audit failed: nothing is trained or reported[/]")
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
    from causalcast.monitoring.replay import replay_run

    replays = {ds.label: replay_run(home, ds.run.run_id, full, REPLAY_BARS[ds.label],
                                    REPLAY_STEP)
               for ds, full in zip(datasets, (live_synthetic, live_msft), strict=True)}

    from causalcast.evaluation.report import write_report

    report_path = write_report([ds.evaluation for ds in datasets], home / "report.html")
    if not as_json:
        _print_results(datasets, universe)
        _print_live(replays)
    summary = {
        "profile": profile, "seconds": round(time.perf_counter() - started, 1),
        "bayes_accuracy": universe.bayes_accuracy,
        "data": {s: r.to_dict() for s, r in {**syn_reports, **msft_reports}.items()},
        "store": {"path": str(store), "data": data,
                  "imported": {k: r.to_dict() for k, r in imported.items()}},
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
    if as_json:
        print_json(summary)
    numbers = report_path.with_suffix(".json")
    show.print(f"\nReport: [bold]{report_path}[/] (numbers in {numbers})")
    show.print(f"Dashboard: [bold]causalcast serve --home {home}[/], http://127.0.0.1:8000/\n"
                  "  curl -s localhost:8000/v1/forecast -H 'content-type: application/json' "
                  "-d '{\"symbol\": \"SYN000\"}'")
    failed = sum(ds.run.failed for ds in datasets if ds.run)
    if failed:
        show.print(f"[red]{failed} training jobs failed; see `causalcast registry show "
                      "--run RUN_ID`[/]")
        raise typer.Exit(1)


def load_through_store(store: Path, synth_dir: Path, universe, need: int,
                       held_msft: int = 0) -> tuple:
    """Import the universe's files and the MSFT sample (less its last ``held_msft`` bars,
    which the main job replays as new) into the store, read both back from one pinned
    ``store:`` string; (data, imported, synthetic, msft, reports, reports).

    The universe is regenerated by every run, so it may revise what an earlier run with
    another seed stored (a new table version; the old one stays readable). The MSFT sample
    never changes: a difference would be a real revision and is refused."""
    from causalcast.data.quality import validate_ohlcv
    from causalcast.data.resolve import resolve_source
    from causalcast.data.sources import load_sample
    from causalcast.pipeline import import_to_store, store_data_string
    from causalcast.store.ingest import read_batches

    sample = load_sample("msft")
    kept_msft = sample.iloc[:len(sample) - held_msft]
    files = read_batches([synth_dir])
    imported = {"synthetic": import_to_store(store, files, revise=True),
                "msft": import_to_store(store, {"MSFT": kept_msft}, source="sample:msft")}
    data = store_data_string(store, imported["msft"].version)
    synthetic, _ = resolve_source(data, sorted(universe.frames), min_bars=need)
    msft, _ = resolve_source(data, ["MSFT"], min_bars=need)
    # The files written under synth_dir hold what this run trains on (the replayed bars
    # held out); a longer series stored by an earlier run would leak them into training.
    expected = {**{s: len(f) for s, f in files.items()},
                "MSFT": len(kept_msft)}
    for s, frame in {**synthetic, **msft}.items():
        if len(frame) != expected[s]:
            fail(f"store {store}: {s} holds {len(frame)} bars, this run trains on "
                 f"{expected[s]}; use a fresh --home")
    syn_reports = {s: validate_ohlcv(f, f"store {s}", min_bars=need)[1]
                   for s, f in synthetic.items()}
    msft_reports = {"MSFT": validate_ohlcv(msft["MSFT"], "store MSFT", min_bars=need)[1]}
    return data, imported, synthetic, msft, syn_reports, msft_reports


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
