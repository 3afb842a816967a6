"""Hyper-parameter search with Optuna that never sees a test fold.

The objective of a trial is the *validation* loss of `run_job` on data cut off at the end of
the outer walk-forward's first training range: the job splits those bars into its own inner
train / validation / test ranges (purged, embargoed), so every outer validation and test fold
lies after the last bar a trial can read (``JobSpec.until``). Tuning on the earliest training
range and applying the result to every fold is conservative: no fold's test data, and no
later fold's training data, informs the choice.

The study is persistent and resumable: it lives in ``<home>/tuning.db`` (SQLite, beside the
registry) under a name derived from the model and data, and ``tune(..., trials=N)`` runs
trials until N have completed, so running the same command again after an interruption
continues where it stopped. A trial whose process died is marked failed by Optuna's
heartbeat after a grace period and does not count. The best parameters are also written to
``<home>/tuning/<study>/best.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from causalcast.config import DEFAULT_HORIZONS, FeatureConfig, SplitConfig
from causalcast.data.resolve import resolve_source
from causalcast.features.pipeline import common_calendar, prepare_symbol
from causalcast.io import atomic_write_json
from causalcast.splits import make_folds
from causalcast.training.plan import RunSpec, format_set_value
from causalcast.training.runner import Executor

DB_NAME = "tuning.db"
HEARTBEAT_S = 30
GRACE_S = 120

Space = Callable[[optuna.Trial], tuple[dict[str, Any], dict[str, Any]]]


def _lr(trial: optuna.Trial) -> dict[str, Any]:
    return {"lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)}


def _lstm(trial: optuna.Trial) -> tuple[dict[str, Any], dict[str, Any]]:
    return ({"hidden": trial.suggest_categorical("hidden", [16, 32, 64]),
             "layers": trial.suggest_int("layers", 1, 2),
             "dropout": trial.suggest_float("dropout", 0.0, 0.3)}, _lr(trial))


def _tcn(trial: optuna.Trial) -> tuple[dict[str, Any], dict[str, Any]]:
    return ({"channels": trial.suggest_categorical("channels", [16, 32, 64]),
             "blocks": trial.suggest_int("blocks", 2, 5),
             "kernel_size": trial.suggest_int("kernel_size", 2, 3),
             "dropout": trial.suggest_float("dropout", 0.0, 0.3)}, _lr(trial))


def _mamba(trial: optuna.Trial) -> tuple[dict[str, Any], dict[str, Any]]:
    return ({"d_model": trial.suggest_categorical("d_model", [16, 32, 64]),
             "n_layers": trial.suggest_int("n_layers", 1, 2),
             "d_state": trial.suggest_categorical("d_state", [4, 8, 16]),
             "dropout": trial.suggest_float("dropout", 0.0, 0.3)}, _lr(trial))


def _ridge(trial: optuna.Trial) -> tuple[dict[str, Any], dict[str, Any]]:
    # One fixed penalty per trial instead of RidgeCV's own leave-one-out choice.
    return {"alphas": (trial.suggest_float("alpha", 1e-2, 1e5, log=True),)}, {}


SEARCH_SPACES: dict[str, Space] = {"lstm": _lstm, "tcn": _tcn, "mamba": _mamba, "ridge": _ridge}


@dataclass
class TuningResult:
    study: str
    storage: str
    model: str
    until: str                       # last bar a trial may read
    first_test: str                  # first bar of the outer test folds
    n_complete: int
    n_new: int                       # trials run by this call
    best_value: float | None
    best_params: dict[str, Any]
    best_model_params: dict[str, Any]
    best_train_params: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def train_args(self) -> list[str]:
        """The best trial as ``causalcast train`` arguments (``--set ridge.alphas=1014.6``):
        the one spelling that passes a tuning result back to training."""
        return train_args(self.model, self.best_model_params, self.best_train_params)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "train_args": self.train_args}



def train_args(model: str, model_params: dict[str, Any], train_params: dict[str, Any]
               ) -> list[str]:
    """``--set <model>.NAME=VALUE`` / ``--set train.NAME=VALUE`` arguments, in the spelling
    `plan.parse_set_value` reads back exactly."""
    out: list[str] = []
    for group, params in ((model, model_params), ("train", train_params)):
        for name, value in sorted(params.items()):
            out += ["--set", f"{group}.{name}={format_set_value(value)}"]
    return out


def outer_boundaries(frames: dict[str, pd.DataFrame], features: FeatureConfig,
                     split: SplitConfig, walk_forward: bool = True
                     ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(date of the last sample of the outer first training range, first outer test date)
    for the folds `run_job` would cut from these bars."""
    prepared = [prepare_symbol(s, f, features) for s, f in frames.items()]
    calendar = common_calendar(prepared)
    folds = make_folds(calendar, features, split, walk=walk_forward)
    return calendar[folds[0].train.stop - 1], calendar[folds[0].test.start]


def study_name(model: str, data: str, symbols: Any, horizons: Any, lookback: int,
               n_folds: int) -> str:
    text = json.dumps([model, data, symbols, list(horizons), lookback, n_folds], default=str)
    return f"{model}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _storage(home: Path) -> optuna.storages.RDBStorage:
    home.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's terms
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            f"sqlite:///{(home / DB_NAME).resolve()}", heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S)


def tune(model: str, data: str, home: str | Path, trials: int, *,
         symbols: tuple[str, ...] | None = None, n_folds: int = 5,
         horizons: tuple[int, ...] = DEFAULT_HORIZONS, lookback: int = 60, seed: int = 0,
         profile: str = "quick", train_params: dict[str, Any] | None = None,
         split: dict[str, Any] | None = None, threads: int = 1, name: str | None = None,
         device: str = "auto",
         on_trial: Callable[[optuna.Trial, float | None], None] | None = None
         ) -> TuningResult:
    """Run (or resume) the study for `model` on `data` until `trials` trials are complete.

    `n_folds` and `split` describe the outer walk-forward the tuned model will be evaluated
    on; trials read only bars up to the end of its first training range. `train_params` are
    fixed overrides (e.g. ``{"epochs": 5}``) under the sampled ones."""
    if model not in SEARCH_SPACES:
        raise ValueError(f"model: no search space for {model!r}; choose from "
                         f"{sorted(SEARCH_SPACES)}")
    if trials < 1:
        raise ValueError(f"trials: must be >= 1, got {trials}")
    home = Path(home)
    frames, _ = resolve_source(data, symbols)
    features = FeatureConfig(lookback=lookback, horizons=horizons)
    outer = SplitConfig(**{"n_folds": n_folds, **(split or {})})
    until, first_test = outer_boundaries(frames, features, outer, walk_forward=n_folds > 1)
    name = name or study_name(model, data, symbols, features.horizons, lookback, n_folds)
    storage = _storage(home)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                load_if_exists=True)
    recorded = study.user_attrs.get("until")
    if recorded is not None and recorded != until.isoformat():
        raise ValueError(f"study {name!r}: was run with data until {recorded}, now "
                         f"{until.isoformat()}; use another --study name")
    study.set_user_attr("until", until.isoformat())
    study.set_user_attr("first_test", first_test.isoformat())
    study.set_user_attr("model", model)
    study.set_user_attr("data", data)
    out_root = home / "tuning" / name

    executor = Executor("inline", threads=threads, device=device, progress=False)

    def objective(trial: optuna.Trial) -> float:
        model_params, sampled_train = SEARCH_SPACES[model](trial)
        spec = RunSpec(data=data, models=(model,), symbols=symbols, scopes=("global",),
                       folds=("final",), n_folds=1, horizons=features.horizons,
                       lookback=lookback, seed=seed, profile=profile,
                       model_params={model: model_params},
                       train_params={**(train_params or {}), **sampled_train},
                       split={k: v for k, v in (split or {}).items() if k != "n_folds"},
                       until=until.isoformat())
        summary = executor.run(spec, out=out_root / f"trial{trial.number}", resume=True)
        if not summary.results:
            raise RuntimeError(f"trial {trial.number}: no job ran")
        result = summary.results[0]
        if result["status"] != "ok":
            raise RuntimeError(f"trial {trial.number}: {result['error']}")
        value = result["train"].get("best_val_loss")
        if value is None or not math.isfinite(value):
            raise RuntimeError(f"trial {trial.number}: no finite validation loss")
        trial.set_user_attr("model_params", model_params)
        trial.set_user_attr("train_params", spec.train_params)
        trial.set_user_attr("job_dir", result["job_dir"])
        if on_trial:
            on_trial(trial, value)
        return float(value)

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    todo = max(trials - len(complete), 0)
    if todo:
        study.optimize(objective, n_trials=todo, catch=(RuntimeError,), gc_after_trial=True)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if complete else None
    result = TuningResult(
        study=name, storage=str((home / DB_NAME).resolve()), model=model,
        until=until.isoformat(), first_test=first_test.isoformat(), n_complete=len(complete),
        n_new=todo, best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        best_model_params=dict(best.user_attrs.get("model_params", {})) if best else {},
        best_train_params=dict(best.user_attrs.get("train_params", {})) if best else {},
        trials=[{"number": t.number, "state": t.state.name, "value": t.value,
                 "params": t.params} for t in study.trials])
    atomic_write_json(out_root / "best.json", result.to_dict())
    return result
