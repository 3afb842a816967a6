"""`causalcast evaluate`, `causalcast report` and `causalcast tune`.

``evaluate`` and ``report`` read prediction files only (the folder a `train` run or the
parallel runner wrote, searched for ``**/predictions.parquet``), plus the OHLCV bars when
``--data`` is given (next-open fills in the backtest, the leakage audit, and on synthetic data
the Bayes ceiling). ``tune`` runs an Optuna study whose trials never read the test folds.
"""

from __future__ import annotations

import os
import shlex

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see cli/train.py

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from causalcast.cli.common import (
    JSON_OPTION,
    clear_errors,
    console,
    err_console,
    fail,
    parse_horizons,
    print_json,
    table,
)
from causalcast.cli.sources import data_option

if TYPE_CHECKING:
    from causalcast.registry.records import RunRecord

PREDICTIONS_OPTION = typer.Option(None, "--predictions", help="Folder (searched for "
                                  "**/predictions.parquet) or prediction file.")
DATA_OPTION = data_option("The bars the predictions were made on (next-open fills, the "
                          "leakage audit, the Bayes ceiling on synthetic data).")
COST_OPTION = typer.Option(5.0, "--cost-bps", help="Trading cost per unit turnover, bps.")
SLIPPAGE_OPTION = typer.Option(0.0, "--slippage-bps", help="Slippage per unit turnover, bps.")
ENSEMBLE_OPTION = typer.Option("stacking", "--ensemble",
                               help="stacking, inverse_mse or none.")
AUDIT_OPTION = typer.Option(True, "--audit/--no-audit", metavar="",
                            help="Run the leakage audit on --data "
                            "(without a passed audit no grade above F is shown).")
AUDIT_CUTS_OPTION = typer.Option(5, "--audit-cuts", help="Cut points per symbol in the audit.")
LOOKBACK_OPTION = typer.Option(60, "--lookback", help="Lookback the models used (audit).")
HOME_OPTION = typer.Option(Path(".causalcast"), "--home", help="Registry home (with --run).")
RUN_OPTION = typer.Option(None, "--run", help="Registry run id: its recorded audit is used "
                          "and, without --predictions, its prediction folder.")
LONG_ONLY_OPTION = typer.Option(False, "--long-only", metavar="",
                                help="Long/flat instead of long/short.")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("report")(report)
    app.command("tune")(tune)


# --------------------------------------------------------------------------- shared


def _run_record(home: Path, run_id: str) -> RunRecord:
    from causalcast.registry import Registry

    with Registry.open(home) as reg:
        return reg.get_run(run_id)


def run_predictions_dir(record: RunRecord, home: Path) -> Path:
    """Where a registry run's prediction files are: the run config's ``predictions_dir``,
    ``out_dir`` or ``out`` (what the training runner records), else ``<home>/runs/<run_id>``;
    its ``walk/`` folder when it has one (walk-forward folds; final fits are not scored)."""
    root = home / "runs" / record.run_id
    for key in ("predictions_dir", "out_dir", "out"):
        if record.config.get(key):
            root = Path(record.config[key])
            break
    return root / "walk" if (root / "walk").is_dir() else root


def evaluate_from_cli(predictions: Path | None, data: str | None, *, cost_bps: float,
                      slippage_bps: float, ensemble: str, audit: bool, audit_cuts: int,
                      lookback: int, home: Path, run: str | None, long_only: bool = False,
                      progress: bool = True) -> dict[str, Any]:
    """What `evaluate` and `report` share: find the predictions, load the bars, settle the
    audit verdict, evaluate."""
    from causalcast.evaluation.loading import load_prediction_set
    from causalcast.evaluation.walkforward import evaluate_predictions

    record = None
    if predictions is None:
        if run is None:
            fail("give --predictions DIR (or --run RUN_ID with --home)")
        record = _run_record(home, run)
        predictions = run_predictions_dir(record, home)
    if ensemble not in ("stacking", "inverse_mse", "none"):
        fail(f"--ensemble: choose stacking, inverse_mse or none, got {ensemble!r}")
    loaded = load_prediction_set(predictions)
    frames, universe, audit_flag = None, None, None
    horizons = tuple(sorted({h for p in loaded.values() for h in p.horizons}))
    if run is not None:
        audit_flag = (record or _run_record(home, run)).audit
    if data is not None:
        from causalcast.data.resolve import resolve_source

        symbols = sorted({s for p in loaded.values() for s in p.table["symbol"].unique()})
        frames, universe = resolve_source(data, symbols)
        if audit and audit_flag is None:
            from causalcast.audit import run_audit
            from causalcast.config import load_settings

            if progress:
                err_console.print(f"[dim]leakage audit on {len(frames)} symbol(s) "
                                  f"({audit_cuts} cuts each)...[/]")
            settings = load_settings(overrides={"features": {"lookback": lookback,
                                                             "horizons": horizons}})
            audit_flag = run_audit(frames, settings, n_cuts=audit_cuts).to_dict()
    label = data or str(predictions)
    return evaluate_predictions(loaded, frames, audit_passed=audit_flag, ceiling=universe,
                                cost_bps=cost_bps, slippage_bps=slippage_bps,
                                ensemble=None if ensemble == "none" else ensemble,
                                long_only=long_only, label=label)


def print_result(result: dict[str, Any]) -> None:
    def f(x: Any, d: int = 3) -> str:
        return "-" if x is None or isinstance(x, str) else f"{x:.{d}f}"

    def p(x: Any) -> str:
        return "-" if x is None else ("<0.001" if x < 0.001 else f"{x:.3f}")

    synthetic = any(r["ceiling"] is not None for r in result["leaderboard"])
    rows = []
    for r in result["leaderboard"]:
        grade = r["grade_shown"] + ("" if r["grade_shown"] == r["grade_computed"]
                                    else f" ({r['grade_computed']})")
        row = [r["model"], r["h"], r["n"],
               f"{f(r['accuracy'])} [{f(r['ci_low'])}, {f(r['ci_high'])}]", f(r["always_up"])]
        if synthetic:
            row.append(f(r["ceiling"]))
        row += [p(r["p_dm"]), p(r["p_direction"]), f(r["sharpe"], 2), grade,
                "yes" if r["beats_naive"] else "no"]
        rows.append(tuple(row))
    columns = ["model", "h", "n", "accuracy [95% CI]", "always up",
               *(["ceiling"] if synthetic else []), "p DM", "p dir", "Sharpe", "grade",
               "beats naive"]
    console.print(table(f"Walk-forward: {result['label']} ({result['data']['n_folds']} "
                        f"folds, audit {result['audit']['status']})", columns, rows))
    for line in result["warnings"]:
        console.print(f"[yellow]warning:[/] {line}")
    for line in result["summary"]:
        console.print(f"- {line}", highlight=False)


# --------------------------------------------------------------------------- commands


def evaluate(
    predictions: Path = PREDICTIONS_OPTION,
    data: str = DATA_OPTION,
    cost_bps: float = COST_OPTION,
    slippage_bps: float = SLIPPAGE_OPTION,
    ensemble: str = ENSEMBLE_OPTION,
    audit: bool = AUDIT_OPTION,
    audit_cuts: int = AUDIT_CUTS_OPTION,
    lookback: int = LOOKBACK_OPTION,
    long_only: bool = LONG_ONLY_OPTION,
    home: Path = HOME_OPTION,
    run: str = RUN_OPTION,
    out: Path = typer.Option(None, "--out", help="Also write the result JSON here."),
    attach: bool = typer.Option(False, "--attach", metavar="",
                                help="With --run: attach each model's "
                                "evaluation to the final fit the run registered (what the "
                                "promotion gates read); nothing is registered again."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Walk-forward evaluation of prediction files: accuracy with intervals beside always-up,
    price and distribution errors, DM/PT against the naive forecast, backtest after costs,
    ensemble, honest grade."""
    from causalcast.evaluation import EvaluationInputError
    from causalcast.io import atomic_write_json

    with clear_errors():
        try:
            result = evaluate_from_cli(predictions, data, cost_bps=cost_bps,
                                       slippage_bps=slippage_bps, ensemble=ensemble,
                                       audit=audit, audit_cuts=audit_cuts, lookback=lookback,
                                       home=home, run=run, long_only=long_only,
                                       progress=not as_json)
        except EvaluationInputError as exc:
            fail(str(exc))
    if attach and run is None:
        fail("--attach: needs --run RUN_ID (the run whose final fits get the evaluation)")
    if out is not None:
        atomic_write_json(out, result)
    attached: dict[str, str] = {}
    if attach:
        from causalcast.pipeline import attach_to_final_fits
        from causalcast.registry import Registry

        with clear_errors(), Registry.open(home, create=False) as registry:
            attached = attach_to_final_fits(registry, run, result)
    if as_json:
        print_json({**result, "attached": attached} if attach else result)
    else:
        print_result(result)
        for model, ref in attached.items():
            console.print(f"evaluation attached to {ref} ({model})", highlight=False)


def report(
    predictions: Path = PREDICTIONS_OPTION,
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write (the "
                             "JSON goes beside it)."),
    data: str = DATA_OPTION,
    result_json: Path = typer.Option(None, "--result", help="Report a saved `evaluate --out` "
                                     "JSON instead of evaluating again."),
    cost_bps: float = COST_OPTION,
    slippage_bps: float = SLIPPAGE_OPTION,
    ensemble: str = ENSEMBLE_OPTION,
    audit: bool = AUDIT_OPTION,
    audit_cuts: int = AUDIT_CUTS_OPTION,
    lookback: int = LOOKBACK_OPTION,
    long_only: bool = LONG_ONLY_OPTION,
    home: Path = HOME_OPTION,
    run: str = RUN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write one self-contained HTML report (plots embedded) and the same numbers as JSON."""
    from causalcast.evaluation import EvaluationInputError
    from causalcast.evaluation.report import write_report

    with clear_errors():
        try:
            if result_json is not None:
                result = json.loads(Path(result_json).read_text())
            else:
                result = evaluate_from_cli(predictions, data, cost_bps=cost_bps,
                                           slippage_bps=slippage_bps, ensemble=ensemble,
                                           audit=audit, audit_cuts=audit_cuts,
                                           lookback=lookback, home=home, run=run,
                                           long_only=long_only, progress=not as_json)
        except EvaluationInputError as exc:
            fail(str(exc))
        path = write_report(result, out)
    if as_json:
        print_json({"report": str(path), "json": str(path.with_suffix(".json")),
                    "summary": result["summary"] if isinstance(result, dict) else None})
    else:
        if isinstance(result, dict):
            print_result(result)
        console.print(f"report: [bold]{path}[/] (numbers: {path.with_suffix('.json')})")


def tune(
    model: str = typer.Option(..., "--model", help="lstm, tcn, mamba or ridge."),
    data: str = data_option("Bars to tune on (trials read them up to the first outer "
                            "test fold).", required=True),
    trials: int = typer.Option(20, "--trials", help="Complete trials wanted in total; "
                               "running again resumes up to this number."),
    home: Path = typer.Option(Path(".causalcast"), "--home", help="The study lives in "
                              "HOME/tuning.db, beside the registry."),
    horizons: str = typer.Option("1,5,10,30", "--horizons"),
    lookback: int = typer.Option(60, "--lookback"),
    folds: int = typer.Option(5, "--folds", help="Outer walk-forward folds; trials read bars "
                              "up to the end of the first one's training range only."),
    epochs: int = typer.Option(None, "--epochs", help="Fixed epoch budget per trial."),
    symbols: str = typer.Option(None, "--symbols", help="Comma-separated subset."),
    seed: int = typer.Option(0, "--seed"),
    study: str = typer.Option(None, "--study", help="Study name (default: from model and "
                              "data)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Optuna search on inner validation loss; the test folds are never read."""
    from causalcast.training.tuning import tune as run_tuning

    hs = parse_horizons(horizons)
    syms = tuple(s.strip().upper() for s in symbols.split(",") if s.strip()) if symbols \
        else None

    def progress(trial: Any, value: float | None) -> None:
        if not as_json:
            console.print(f"trial {trial.number}: validation loss {value:.5f} "
                          f"{trial.params}", highlight=False)

    with clear_errors():
        result = run_tuning(model, data, home, trials, symbols=syms, n_folds=folds,
                            horizons=hs, lookback=lookback, seed=seed, name=study,
                            train_params={"epochs": epochs} if epochs else None,
                            on_trial=progress)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"study [bold]{result.study}[/] in {result.storage}: {result.n_complete} "
                  f"complete trial(s) ({result.n_new} run now); trials read bars up to "
                  f"{result.until[:10]}, the outer test folds start {result.first_test[:10]}")
    if result.best_value is None:
        fail("no trial completed; see the errors above", code=1)
    console.print(f"best validation loss {result.best_value:.5f} with {result.best_params}")
    console.print("train with it:  causalcast train --models "
                  f"{result.model} ... {shlex.join(result.train_args)}", highlight=False,
                  soft_wrap=True)
