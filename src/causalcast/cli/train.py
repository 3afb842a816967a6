"""`causalcast train` and `causalcast predict`: fit models on one or more symbols, then
forecast from what was trained.

Two modes, one job function (`causalcast.training.run_job`), so both train identically:

* sequential (``--out DIR``, the default): jobs one after another into a folder;
* parallel into the registry (``--parallel``, ``--workers N``, ``--backend``, ``--home``,
  ``--run-id`` or ``--ray-address`` selects it): `causalcast.training.runner.train_run` on
  a process pool or Ray, every job recorded, a run resumable by its id.
"""

from __future__ import annotations

import os

# Before anything imports torch: with other processes on the cores, OpenMP threads that
# spin while waiting made 2-thread PyTorch up to 14x slower (DESIGN.md); an explicit
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

DATA_OPTION = typer.Option(None, "--data", help="Folder of CSV/Parquet files, a file, or "
                                                "sample:msft.")
SYNTHETIC_OPTION = typer.Option(None, "--synthetic", help="N_SYMBOLS[,BARS[,STRENGTH]]: a "
                                "synthetic universe with a known accuracy ceiling (seeded by "
                                "--seed).")
SYMBOLS_OPTION = typer.Option(None, "--symbols", help="Comma-separated subset of symbols.")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("predict")(predict)


def data_source(data: str | None, synthetic: str | None, seed: int) -> str:
    """The data string a job understands, from the mutually exclusive options."""
    from causalcast.training.data import SYNTHETIC_PREFIX, parse_synthetic

    if (data is None) == (synthetic is None):
        fail("give exactly one of --data DIR or --synthetic N_SYMBOLS[,BARS[,STRENGTH]]")
    if synthetic is not None:
        kw = parse_synthetic(synthetic)
        return (f"{SYNTHETIC_PREFIX}{kw['n_symbols']},{kw.get('n_bars', 2520)},"
                f"{kw.get('strength', 0.325)},{kw.get('seed', seed)}")
    return str(data)


def _overrides(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--set model.hidden=64 --set lstm.layers=2 --set train.lr=1e-3`` -> {group: params}.

    ``model.X`` applies to every chosen model that has a field X; ``<model>.X`` to that
    model only; ``train.X`` to the training settings."""
    groups: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        group, dot, name = key.partition(".")
        if not sep or not dot or not name:
            fail(f"--set: expected GROUP.NAME=VALUE (GROUP: model, train or a model name), "
                 f"got {item!r}")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        groups.setdefault(group, {})[name] = value
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

    unknown_groups = set(groups) - {"model", "train", *MODELS}
    if unknown_groups:
        fail(f"--set: unknown group(s) {sorted(unknown_groups)}; use model, train or a model "
             f"name ({sorted(MODELS)})")
    generic = groups.get("model", {})
    nobody = [k for k in generic if not any(k in f for f in fields.values())]
    if nobody:
        fail(f"--set: no chosen model has the field(s) {nobody}")
    return {n: {**{k: v for k, v in generic.items() if k in fields[n]}, **groups.get(n, {})}
            for n in names}


def _resume_hint() -> str:
    args = sys.argv[1:]
    return shlex.join(["causalcast", *args, *([] if "--resume" in args else ["--resume"])])


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def train(
    data: str | None = DATA_OPTION,
    synthetic: str | None = SYNTHETIC_OPTION,
    models: str = typer.Option("lstm,tcn,mamba,ridge", "--models",
                               help="Comma-separated: lstm, tcn, mamba, naive, drift, ridge."),
    horizons: str = typer.Option("1,5,10,30", "--horizons", help="Forecast horizons in bars."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (bundles, "
                                    "checkpoints, metrics); required without --parallel "
                                    "(default there: HOME/runs/RUN_ID)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoints; "
                                                        "finished jobs are skipped."),
    profile: str = typer.Option("quick", "--profile", help="quick or full."),
    lookback: int = typer.Option(60, "--lookback", min=2),
    symbols: str | None = SYMBOLS_OPTION,
    per_symbol: bool = typer.Option(False, "--per-symbol", help="One model per symbol "
                                    "instead of one global model across symbols."),
    global_: bool = typer.Option(False, "--global", help="One model across all symbols (the "
                                 "default); with --per-symbol: both."),
    fold: str | None = typer.Option(None, "--fold", help="Which folds: 0, 0,2, all, final, "
                                    "all,final (default: 0 = the single split with --folds 1; "
                                    "parallel with --folds N > 1: all)."),
    folds: int = typer.Option(1, "--folds", min=1, help="1: one temporal split (the final "
                              "fit); > 1: that many walk-forward folds."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Override the profile."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(0, "--threads", min=0, help="torch threads (0: default)."),
    overrides: list[str] | None = typer.Option(None, "--set", help="model.NAME=VALUE (every "
                                               "model with that field), lstm.NAME=VALUE (one "
                                               "model) or train.NAME=VALUE; repeatable."),
    quiet: bool = typer.Option(False, "--quiet", help="No per-epoch / per-job progress."),
    parallel: bool = typer.Option(False, "--parallel", help="Train the jobs in parallel into "
                                  "the registry (process pool unless --backend ray)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Parallel workers "
                                       "(default: one per core); implies --parallel."),
    backend: str | None = typer.Option(None, "--backend", help="pool (default) or ray; "
                                       "implies --parallel."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster to use "
                                           "(e.g. ray://head:10001 or auto); implies "
                                           "--backend ray."),
    home: Path | None = typer.Option(None, "--home", help="Registry home (default "
                                     ".causalcast); implies --parallel."),
    run_id: str | None = typer.Option(None, "--run-id", help="Resume this run (only its "
                                      "missing jobs run), or name a new one; implies "
                                      "--parallel."),
    no_audit: bool = typer.Option(False, "--no-audit", help="Parallel: skip the leakage "
                                  "audit (promotion will refuse the run's models)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train forecasting models; Ctrl+C or SIGTERM checkpoints and says how to resume."""
    from causalcast.training.data import resolve_source
    from causalcast.training.job import PROFILES, JobSpec, run_job

    if profile not in PROFILES:
        fail(f"--profile: choose from {list(PROFILES)}, got {profile!r}")
    if ray_address and backend is None:
        backend = "ray"
    if parallel or any(v is not None for v in (workers, backend, home, run_id, ray_address)):
        _train_parallel(data, synthetic, models, horizons, out, profile, lookback, symbols,
                        per_symbol, global_, fold, folds, epochs, seed, overrides, quiet,
                        workers, backend or "pool", ray_address, home or Path(".causalcast"),
                        run_id, resume, not no_audit, as_json)
        return
    if out is None:
        fail("--out: required for sequential training (or use --parallel / --home to train "
             "into the registry)")
    try:
        fold_index = int(fold) if fold is not None else 0
    except ValueError:
        fail(f"--fold: sequential training takes one fold number, got {fold!r} (lists, "
             f"'all' and 'final' need --parallel)")
    if fold_index < 0:
        fail(f"--fold: expected >= 0, got {fold_index}")
    source, names, groups, train_params = _job_inputs(data, synthetic, seed, models,
                                                      overrides, epochs)
    with clear_errors():
        model_params = _model_params(groups, names)
        wanted = [s.strip() for s in symbols.split(",")] if symbols else None
        frames, _ = resolve_source(source, wanted)
    scopes: list[tuple[str, ...] | None] = []
    if global_ or not per_symbol:
        scopes.append(tuple(wanted) if wanted else None)
    if per_symbol:
        scopes += [(s,) for s in frames]
    results = []
    for scope in scopes:
        for name in names:
            spec = JobSpec(model=name, data=source, out_dir=str(out), symbols=scope,
                           fold=fold_index, n_folds=folds, horizons=parse_horizons(horizons),
                           lookback=lookback, seed=seed, profile=profile, threads=threads,
                           resume=resume, model_params=model_params[name],
                           train_params=train_params,
                           verbose=not quiet, resume_hint=_resume_hint())
            result = run_job(spec)
            results.append(result)
            if result.status == "interrupted":
                err_console.print(f"[bold yellow]interrupted[/]: {result.error}",
                                  highlight=False)
                if as_json:
                    print_json([r.to_dict() for r in results])
                raise typer.Exit(143 if "SIGTERM" in (result.error or "") else 130)
            if result.status == "failed":
                err_console.print(f"[bold red]failed[/] {name}/{result.scope}: {result.error}",
                                  highlight=False)
    if as_json:
        print_json([r.to_dict() for r in results])
    else:
        rows = []
        for r in results:
            m, t = r.metrics, r.train
            rows.append((r.model, r.scope, r.status, t.get("epochs", "-"),
                         _fmt(m.get("dir_acc")), _fmt(m.get("ceiling")),
                         _fmt(m.get("binom_p"), ".2g"), f"{r.seconds:.1f}"))
        console.print(table(f"Trained into {out}/<model>/<scope>/fold{fold_index} (test range, "
                            "first horizon)", ["model", "scope", "status", "epochs",
                                               "dir acc", "ceiling", "p>0.5", "s"], rows))
    if any(r.status != "ok" for r in results):
        raise typer.Exit(1)


def _train_parallel(data: str | None, synthetic: str | None, models: str, horizons: str,
                    out: Path | None, profile: str, lookback: int, symbols: str | None,
                    per_symbol: bool, global_: bool, fold: str | None, folds: int,
                    epochs: int | None, seed: int, overrides: list[str] | None, quiet: bool,
                    workers: int | None, backend: str, ray_address: str | None, home: Path,
                    run_id: str | None, resume: bool, audit: bool, as_json: bool) -> None:
    """`causalcast train --parallel ...`: one registry run via `train_run`."""
    from causalcast.registry import RegistryError
    from causalcast.training.backends import BackendError
    from causalcast.training.plan import PlanError, RunSpec, parse_folds
    from causalcast.training.runner import RunnerError, train_run

    if resume and run_id is None:
        fail("--resume: in parallel mode a run resumes by its id: --run-id RUN_ID (printed "
             "when the run started, and in `causalcast registry list`)")
    spec = None
    if data is not None or synthetic is not None or run_id is None:
        source, names, groups, train_params = _job_inputs(data, synthetic, seed, models,
                                                          overrides, epochs)
        with clear_errors():
            model_params = {k: v for k, v in _model_params(groups, names).items() if v}
            scopes = (["global"] if global_ or not per_symbol else []) + (
                ["per-symbol"] if per_symbol else [])
            spec = RunSpec(data=source, models=tuple(names),
                           symbols=tuple(s.strip() for s in symbols.split(",") if s.strip())
                           if symbols else None,
                           scopes=tuple(scopes), folds=parse_folds(fold, folds),
                           n_folds=folds, horizons=parse_horizons(horizons),
                           lookback=lookback, seed=seed, profile=profile,
                           model_params=model_params, train_params=train_params)
    try:
        summary = train_run(spec, home=home, run_id=run_id, backend=backend, workers=workers,
                            ray_address=ray_address, out=out, audit=audit,
                            progress=not quiet)
    except (PlanError, RunnerError, BackendError, RegistryError) as exc:
        fail(str(exc))  # RegistryError: a bad --run-id or --home, a damaged registry
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


def find_bundles(path: Path) -> list[Path]:
    """Bundle stems at `path`: a stem, its .json/.safetensors, or a folder searched below."""
    if path.is_dir():
        stems = sorted(p.with_suffix("") for p in path.rglob("model.json"))
        if not stems:
            fail(f"--model: no trained bundle (model.json) under {path}")
        return stems
    stem = path.with_suffix("") if path.suffix in (".json", ".safetensors") else path
    if not stem.with_suffix(".json").exists():
        fail(f"--model: {stem.with_suffix('.json')} not found")
    return [stem]


def predict(
    model: Path = typer.Option(..., "--model", help="A bundle (stem or .json) or a folder of "
                                                    "them, e.g. the --out of train."),
    data: str | None = DATA_OPTION,
    synthetic: str | None = SYNTHETIC_OPTION,
    symbols: str | None = SYMBOLS_OPTION,
    seed: int = typer.Option(0, "--seed", help="Seed of a --synthetic universe."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Forecast every horizon from each symbol's latest bar with trained bundles."""
    from causalcast.models.bundle import TrainedModel
    from causalcast.training.data import resolve_source
    from causalcast.weights import WeightsError

    source = data_source(data, synthetic, seed)
    stems = find_bundles(model)
    wanted = [s.strip().upper() for s in symbols.split(",")] if symbols else None
    with clear_errors():
        frames, _ = resolve_source(source, wanted)
    out = []
    for stem in stems:
        try:
            bundle = TrainedModel.load(stem)
        except WeightsError as exc:
            fail(f"{stem}: {exc}")
        trained = [s for s in bundle.meta.get("symbols", []) if s in frames]
        chosen = wanted or trained or list(frames)
        with clear_errors():
            forecasts = bundle.forecast({s: frames[s] for s in chosen})
        for f in forecasts.values():
            out.append({"bundle": str(stem), **f.to_dict()})
    if as_json:
        print_json(out)
        return
    rows = []
    for f in out:
        for h in f["horizons"]:
            lo80, hi80 = h["intervals"]["80"]
            lo95, hi95 = h["intervals"]["95"]
            rows.append((f["model"], f["symbol"], f["as_of"][:10], h["h"], f"{h['mean']:+.4f}",
                         f"{h['prob_up']:.3f}", f"[{lo80:+.3f}, {hi80:+.3f}]",
                         f"[{lo95:+.3f}, {hi95:+.3f}]"))
    console.print(table("Forecasts (log returns from the last bar)",
                        ["model", "symbol", "as of", "h", "mean", "P(up)", "80% interval",
                         "95% interval"], rows))
