"""`causalcast train`: fit models on one or more symbols (`causalcast predict`, in
cli/predict.py, forecasts from what was trained).

Two modes, one executor (`causalcast.training.runner.Executor`), so both train identically
(same jobs, same folder layout, same artifacts for the same spec and seed):

* sequential (``--out DIR``, the default): the inline backend, jobs one after another in
  this process into the folder;
* parallel into the registry (``--parallel``, ``--workers N``, ``--backend``, ``--home``,
  ``--run-id`` or ``--ray-address`` selects it): a process pool or Ray, every job recorded,
  a run resumable by its id.
"""

from __future__ import annotations

import os

# Before anything imports torch: with other processes on the cores, OpenMP threads that
# spin while waiting made 2-thread PyTorch up to 14x slower (docs/design.md); an explicit
# setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shlex
import sys
from pathlib import Path
from typing import Any

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
from causalcast.cli.sources import SYNTHETIC_ALIAS, data_option, data_source

DATA_OPTION = data_option("Bars to train on.")
SYMBOLS_OPTION = typer.Option(None, "--symbols", help="Comma-separated subset of symbols.")


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def _overrides(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--set model.hidden=64 --set lstm.layers=2 --set train.lr=1e-3`` -> {group: params}.

    ``model.X`` applies to every chosen model that has a field X; ``<model>.X`` to that
    model only; ``train.X`` to the training settings; ``augment.X`` to augmentation. A list
    is written ``a,b,c`` (``ridge.alphas=0.1,10``)."""
    from causalcast.training.plan import parse_set_value

    groups: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        group, dot, name = key.partition(".")
        if not sep or not dot or not name:
            fail(f"--set: expected GROUP.NAME=VALUE (GROUP: model, train, augment or a model "
                 f"name), got {item!r}")
        groups.setdefault(group, {})[name] = parse_set_value(raw)
    return groups


def _job_inputs(data: str | None, synthetic: str | None, seed: int, models: str,
                overrides: list[str] | None, epochs: int | None
                ) -> tuple[str, list[str], dict[str, dict[str, Any]], dict[str, Any]]:
    """Data source, model names, per-group overrides and training parameters: what the
    sequential and the parallel paths both read from the command line."""
    source = data_source(data, synthetic, seed)
    names = [m.strip() for m in models.split(",") if m.strip()]
    groups = _overrides(overrides)
    train_params = dict(groups.get("train", {}))
    if epochs is not None:
        train_params["epochs"] = epochs
    return source, names, groups, train_params


def _model_params(groups: dict[str, dict[str, Any]], names: list[str]) -> dict[str, dict]:
    """Per-model parameters from `_overrides` groups; unknown names fail clearly (settings
    for a registered model that is not chosen are ignored)."""
    import dataclasses

    from causalcast.models.base import model_class

    fields = {n: {f.name for f in dataclasses.fields(model_class(n).config_cls)}
              for n in names}
    from causalcast.models.base import MODELS

    unknown_groups = set(groups) - {"model", "train", "augment", *MODELS}
    if unknown_groups:
        fail(f"--set: unknown group(s) {sorted(unknown_groups)}; use model, train, augment or "
             f"a model name ({sorted(MODELS)})")
    generic = groups.get("model", {})
    nobody = [k for k in generic if not any(k in f for f in fields.values())]
    if nobody:
        fail(f"--set: no chosen model has the field(s) {nobody}")
    out = {n: {**{k: v for k, v in generic.items() if k in fields[n]}, **groups.get(n, {})}
           for n in names}
    for n, params in out.items():   # a one-element list field (ridge.alphas=3.5) from a scalar
        defaults = {f.name: f.default for f in dataclasses.fields(model_class(n).config_cls)}
        for k, v in params.items():
            if isinstance(defaults.get(k), tuple) and not isinstance(v, tuple):
                params[k] = (v,)
    return out


def _resume_hint() -> str:
    args = sys.argv[1:]
    return shlex.join(["causalcast", *args, *([] if "--resume" in args else ["--resume"])])


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def train(
    data: str | None = DATA_OPTION,
    synthetic: str | None = SYNTHETIC_ALIAS,
    models: str = typer.Option("lstm,tcn,mamba,ridge", "--models",
                               help="Comma-separated: lstm, tcn, mamba, naive, drift, ridge."),
    horizons: str | None = typer.Option(None, "--horizons", help="Forecast horizons in bars "
                                        "(default: the settings', 1,5,10,30)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (job folders "
                                    "final/<model>/<scope>/fold0 and walk/...); required "
                                    "without --parallel (default there: HOME/runs/RUN_ID)."),
    resume: bool = typer.Option(False, "--resume", metavar="", help="Continue: finished jobs are "
                                "skipped, interrupted ones continue from their last "
                                "checkpoint (parallel: with --run-id)."),
    profile: str = typer.Option("quick", "--profile", help="quick or full."),
    lookback: int | None = typer.Option(None, "--lookback", min=2, help="Bars per window "
                                        "(default: the settings', 60)."),
    symbols: str | None = SYMBOLS_OPTION,
    per_symbol: bool = typer.Option(False, "--per-symbol", metavar="", help="One model per symbol "
                                    "instead of one global model across symbols."),
    global_: bool = typer.Option(False, "--global", metavar="",
                                 help="One model across all symbols (the "
                                 "default); with --per-symbol: both."),
    fold: str | None = typer.Option(None, "--fold", help="Which folds: 0, 0,2, all, final, "
                                    "all,final (default: 0 = the single split with --folds 1; "
                                    "parallel with --folds N > 1: all; lists need --parallel)."),
    folds: int = typer.Option(1, "--folds", min=1, help="1: one temporal split (the final "
                              "fit); > 1: that many walk-forward folds."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Override the profile."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(0, "--threads", min=0, help="torch threads without "
                                "--parallel (0: default; parallel workers use one each)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu "
                               "or cuda: where every job's training loop runs."),
    augment: bool = typer.Option(False, "--augment", metavar="", help="Training-only augmentation "
                                 "(jitter and magnitude warping of training windows); tune "
                                 "it with --set augment.NAME=VALUE."),
    overrides: list[str] | None = typer.Option(None, "--set", help="model.NAME=VALUE (every "
                                               "model with that field), lstm.NAME=VALUE (one "
                                               "model), train.NAME=VALUE or augment.NAME=VALUE;"
                                               " lists as a,b,c; repeatable. `causalcast "
                                               "tune` prints its result in this spelling."),
    quiet: bool = typer.Option(False, "--quiet", metavar="",
                               help="No per-epoch / per-job progress."),
    parallel: bool = typer.Option(False, "--parallel", metavar="",
                                  help="Train the jobs in parallel into "
                                  "the registry (process pool unless --backend ray)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Parallel workers "
                                       "(default: one per core); implies --parallel."),
    backend: str | None = typer.Option(None, "--backend", help="pool (default) or ray; "
                                       "implies --parallel."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster to use "
                                           "(e.g. ray://head:10001 or auto); implies "
                                           "--backend ray."),
    home: str | None = typer.Option(None, "--home", envvar="CAUSALCAST_REGISTRY_URL",
                                    help="Registry home: a folder (default .causalcast) or "
                                    "a postgresql:// URL (with --artifacts and --out); "
                                    "implies --parallel."),
    artifacts: str | None = typer.Option(None, "--artifacts", envvar="CAUSALCAST_ARTIFACTS_URL",
                                         help="Where a postgresql:// registry keeps its "
                                         "model files: s3://bucket/prefix or any fsspec URL."),
    run_id: str | None = typer.Option(None, "--run-id", help="Resume this run (only its "
                                      "missing jobs run), or name a new one; implies "
                                      "--parallel."),
    no_audit: bool = typer.Option(False, "--no-audit", metavar="",
                                  help="Parallel: skip the leakage "
                                  "audit (promotion will refuse the run's models)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train forecasting models; Ctrl+C or SIGTERM checkpoints and says how to resume.

    One executor behind both modes: without --parallel the jobs run one after another in
    this process into --out; with it they run on a process pool or Ray into the registry."""
    from causalcast.registry import RegistryError
    from causalcast.training.backends import BackendError
    from causalcast.training.plan import PlanError
    from causalcast.training.profiles import PROFILES
    from causalcast.training.runner import Executor, RunnerError

    if profile not in PROFILES:
        fail(f"--profile: choose from {list(PROFILES)}, got {profile!r}")
    if ray_address and backend is None:
        backend = "ray"
    registry_run = parallel or any(v is not None for v in (workers, backend, home, run_id,
                                                            ray_address))
    if not registry_run and out is None:
        fail("--out: required for sequential training (or use --parallel / --home to train "
             "into the registry)")
    if run_id is not None:   # before --home is created: a refused id leaves nothing behind
        from causalcast.registry.names import check_path_component

        try:
            check_path_component(run_id, "--run-id")
        except RegistryError as exc:
            fail(str(exc))
    if registry_run and resume and run_id is None:
        fail("--resume: in parallel mode a run resumes by its id: --run-id RUN_ID (printed "
             "when the run started, and in `causalcast registry list`)")
    if not registry_run:   # one job folder per (scope, model): one fold number at a time
        try:
            fold_index = int(fold) if fold is not None else 0
        except ValueError:
            fail(f"--fold: sequential training takes one fold number, got {fold!r} (lists, "
                 f"'all' and 'final' need --parallel)")
        if fold_index < 0:
            fail(f"--fold: expected >= 0, got {fold_index}")
        fold = str(fold_index)
    from causalcast.config import load_settings

    with clear_errors():   # defaults < $CAUSALCAST_CONFIG file < CAUSALCAST_* env < flags
        features = load_settings().features
    lookback = features.lookback if lookback is None else lookback
    horizons = ",".join(map(str, features.horizons)) if horizons is None else horizons
    spec = None
    if data is not None or synthetic is not None or not registry_run or run_id is None:
        with clear_errors():
            spec = _run_spec(data, synthetic, seed, models, overrides, epochs, augment,
                             symbols, per_symbol, global_, fold, folds, horizons, lookback,
                             profile)
    try:
        executor = Executor("inline" if not registry_run else backend or "pool", workers,
                            ray_address=ray_address, device=device,
                            threads=None if registry_run else threads,
                            verbose=not quiet and not registry_run,
                            progress=not quiet and registry_run)
        if registry_run:
            summary = executor.run(spec, home=home or ".causalcast", run_id=run_id,
                                   out=out, audit=not no_audit, artifacts=artifacts)
        else:
            summary = executor.run(spec, out=out, resume=resume, resume_hint=_resume_hint())
    except (PlanError, RunnerError, BackendError, RegistryError) as exc:
        fail(str(exc))  # RegistryError: a bad --run-id or --home, a damaged registry
    if registry_run:
        _show_registry_run(summary, as_json)
    else:
        _show_folder_run(summary, out, as_json)


def _run_spec(data: str | None, synthetic: str | None, seed: int, models: str,
              overrides: list[str] | None, epochs: int | None, augment: bool,
              symbols: str | None, per_symbol: bool, global_: bool, fold: str | None,
              folds: int, horizons: str, lookback: int, profile: str) -> Any:
    """The `RunSpec` the command line describes (both modes read it the same way)."""
    from causalcast.training.plan import RunSpec, parse_folds

    source, names, groups, train_params = _job_inputs(data, synthetic, seed, models,
                                                      overrides, epochs)
    model_params = {k: v for k, v in _model_params(groups, names).items() if v}
    scopes = (["global"] if global_ or not per_symbol else []) + (
        ["per-symbol"] if per_symbol else [])
    augment_params = {**({"enabled": True} if augment else {}), **groups.get("augment", {})}
    return RunSpec(data=source, models=tuple(names),
                   symbols=tuple(s.strip() for s in symbols.split(",") if s.strip())
                   if symbols else None,
                   scopes=tuple(scopes), folds=parse_folds(fold, folds), n_folds=folds,
                   horizons=parse_horizons(horizons), lookback=lookback, seed=seed,
                   profile=profile, model_params=model_params, train_params=train_params,
                   augment=augment_params)


def _show_folder_run(summary: Any, out: Path | None, as_json: bool) -> None:
    """Sequential output: one `JobResult` per job (JSON) or a table; exit 130/143 when
    interrupted (the message says how to resume), 1 when a job failed."""
    results = summary.results
    for r in results:
        if r["status"] == "interrupted":
            err_console.print(f"[bold yellow]interrupted[/]: {r['error']}", highlight=False)
        elif r["status"] == "failed":
            err_console.print(f"[bold red]failed[/] {r['model']}/{r['scope']}: {r['error']}",
                              highlight=False)
    if as_json:
        print_json(results)
    elif summary.status != "interrupted":
        rows = []
        for r in results:
            m, t = r["metrics"], r["train"]
            rows.append((r["model"], r["scope"], r["status"], t.get("epochs", "-"),
                         _fmt(m.get("dir_acc")), _fmt(m.get("ceiling")),
                         _fmt(m.get("binom_p"), ".2g"), f"{r['seconds']:.1f}"))
        console.print(table(f"Trained into {out}/<final|walk>/<model>/<scope>/fold<k> (test "
                            "range, first horizon)", ["model", "scope", "status", "epochs",
                                                      "dir acc", "ceiling", "p>0.5", "s"],
                            rows))
    if summary.status == "interrupted":
        errors = " ".join(r.get("error") or "" for r in results)
        raise typer.Exit(143 if "SIGTERM" in errors else 130)
    if any(r["status"] != "ok" for r in results) or summary.status != "done":
        raise typer.Exit(1)


def _show_registry_run(summary: Any, as_json: bool) -> None:
    """Parallel output: the run summary (JSON) or a table of its jobs."""
    if as_json:
        print_json(summary.to_dict())
    else:
        rows = [(j.label, j.status, "yes" if j.ran else "no (done before)", j.version or "-",
                 _fmt(j.dir_acc), _fmt(j.seconds, ".1f"), j.error or "")
                for j in summary.jobs]
        console.print(table(f"Run {summary.run_id} in {summary.home} ({summary.backend}, "
                            f"{summary.ran} trained, {summary.skipped} already done, "
                            f"{summary.failed} failed; test range, first horizon)",
                            ["job", "status", "trained now", "version", "dir acc", "s",
                             "error"], rows))
        if summary.status != "done":
            err_console.print(f"resume with: causalcast train --home {summary.home} "
                              f"--run-id {summary.run_id}", highlight=False)
    if summary.status == "interrupted":
        raise typer.Exit(130)
    if summary.status != "done":
        raise typer.Exit(1)

