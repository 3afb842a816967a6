"""One training job: (data, symbols, model, fold) -> a saved bundle, metrics and a result.

`run_job(spec)` is what the parallel runner maps over a process pool or Ray: `JobSpec` is a
small picklable dataclass, the job loads its own data from the spec's data string, sets
``torch.set_num_threads(spec.threads)``, seeds everything from ``spec.seed`` and never
raises for a failed fit — the failure is returned (and written to ``result.json``) with its
traceback, so one bad (symbol, model) never stops the others.

A spec with one symbol trains a per-symbol model; with several (or ``symbols=None``: all of
the source), one global model across them. Output folder:
``out_dir/<model>/<SYMBOL or "global">/fold<k>/`` holding ``checkpoints/``,
``metrics.jsonl``, ``model.safetensors`` + ``model.json`` (the bundle) and ``result.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from causalcast.config import DEFAULT_HORIZONS, FeatureConfig, SplitConfig
from causalcast.io import atomic_write_json
from causalcast.models.base import build_model, model_to_dict
from causalcast.models.bundle import TrainedModel
from causalcast.models.forecast import ForecastBatch
from causalcast.models.heads import negative_log_likelihood
from causalcast.registry.names import path_component
from causalcast.training.data import TrainingData, build_training_data, resolve_source
from causalcast.training.predictions import FILE as PREDICTIONS_FILE
from causalcast.training.predictions import job_predictions, save_predictions
from causalcast.training.progress import ConsoleReporter, Reporter, SilentReporter
from causalcast.training.trainer import TrainConfig, Trainer, TrainHooks, TrainingInterrupted

#: Model sizes and training budgets. quick: small models, <= 20 epochs (CI, `make run`,
#: benchmarks); full: wider models, longer patience.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "train": {"epochs": 20, "patience": 4, "batch_size": 256, "lr": 2e-3},
        "models": {"lstm": {"hidden": 32, "layers": 1},
                   "tcn": {"channels": 32, "blocks": 4, "kernel_size": 3},
                   "mamba": {"d_model": 16, "n_layers": 1, "d_state": 8, "expand": 2}},
    },
    "full": {
        "train": {"epochs": 100, "patience": 10, "batch_size": 256, "lr": 1e-3},
        "models": {"lstm": {"hidden": 64, "layers": 2, "dropout": 0.1},
                   "tcn": {"channels": 64, "blocks": 5, "kernel_size": 3, "dropout": 0.1},
                   "mamba": {"d_model": 64, "n_layers": 2, "d_state": 16, "expand": 2,
                             "dropout": 0.1}},
    },
}
RESULT = "result.json"
OPTIONAL_FIELDS = ("decorrelate", "until")
TIE = 1e-6
BUNDLE = "model"


@dataclass
class JobSpec:
    model: str
    data: str                                   # folder/file, "sample:msft", "synthetic:..."
    out_dir: str
    symbols: tuple[str, ...] | None = None      # None: every symbol of the source
    fold: int = 0
    n_folds: int = 1                            # 1: one temporal split; > 1: walk-forward
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    lookback: int = 60
    features: tuple[str, ...] | None = None     # None: every registered indicator
    seed: int = 0
    profile: str = "quick"
    threads: int = 1
    resume: bool = False
    model_params: dict[str, Any] = field(default_factory=dict)
    train_params: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)     # SplitConfig overrides
    verbose: bool = False
    resume_hint: str = "run the same command again with --resume"
    # Optional, off by default (and left out of `identity()` while off, so the keys of
    # existing jobs do not change):
    decorrelate: float | None = None            # redundancy filter |corr| threshold
    until: str | None = None                    # use only bars dated <= this (tuning)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile: choose from {list(PROFILES)}, got {self.profile!r}")
        if self.symbols is not None:
            self.symbols = tuple(self.symbols)
        self.horizons = tuple(int(h) for h in self.horizons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """What determines the trained weights (not where or how fast it runs)."""
        d = self.to_dict()
        for k in ("out_dir", "threads", "resume", "verbose", "resume_hint"):
            d.pop(k)
        for k in OPTIONAL_FIELDS:
            if d[k] is None:
                d.pop(k)
        return d

    def key(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def job_dir(self, scope: str) -> Path:
        """Where the job's bundle, checkpoints and predictions go. Model and scope pass through
        `path_component` (a symbol ``..`` must not leave the folder, and a symbol named
        ``global`` must not share the global model's folder)."""
        single = self.symbols is not None and len(self.symbols) == 1
        return (Path(self.out_dir) / path_component(self.model, "model")
                / path_component(scope, "symbol", reserved=_SCOPE_LABELS if single else _NONE)
                / f"fold{self.fold}")


@dataclass
class JobResult:
    status: str                                 # "ok" | "failed" | "interrupted"
    model: str
    scope: str                                  # symbol, or "global"
    fold: int
    job_dir: str
    bundle: str | None = None                   # stem of model.safetensors / model.json
    predictions: str | None = None              # val/test predictions (training.predictions)
    sha256: str | None = None
    spec_key: str | None = None                 # hash of JobSpec.identity()
    symbols: list[str] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: Scope labels `scope_of` uses itself; a symbol spelled like one is encoded in folder names.
_SCOPE_LABELS = frozenset({"global"})
_NONE: frozenset[str] = frozenset()


def scope_of(symbols: list[str]) -> str:
    return symbols[0] if len(symbols) == 1 else "global"


def _run_key(spec: JobSpec, model_cfg: dict, train_cfg: dict) -> str:
    text = json.dumps({"spec": spec.identity(), "model": model_cfg, "train": train_cfg},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def evaluate_test(bundle: TrainedModel, data: TrainingData, universe: Any = None,
                  split: str = "test") -> dict[str, Any]:
    """Test-range metrics in raw units: directional accuracy per horizon (a forecast within
    `TIE` scales of zero counts as "not up", so the zero-return baseline is not decided by
    rounding), share of up moves, MAE, standardised NLL, coverage of
    the 80 % / 95 % intervals; for h = horizons[0] a one-sided binomial p-value against 0.5
    and, on synthetic data, the exact Bayes ceiling on these very bars."""
    rows = data.rows(split)
    windows = data.x(rows)
    loc, scale = bundle.raw_params(windows)
    y = data.windows.targets[rows].astype(np.float64)
    cfg = bundle.model.config
    batch = ForecastBatch.from_params(loc, scale, bundle.horizons, cfg.likelihood, cfg.df)
    nll = float(negative_log_likelihood(
        torch.from_numpy((loc - data.target_mean) / data.target_std),
        torch.from_numpy(scale / data.target_std),
        torch.from_numpy((y - data.target_mean) / data.target_std), cfg.likelihood, cfg.df))
    called_up = loc > TIE * scale   # a forecast of (numerically) zero is not a call for "up"
    per_h = {}
    for j, h in enumerate(bundle.horizons):
        hit = called_up[:, j] == (y[:, j] > 0)
        per_h[str(h)] = {
            "dir_acc": float(hit.mean()), "up_fraction": float((y[:, j] > 0).mean()),
            "mae": float(np.abs(loc[:, j] - y[:, j]).mean()),
            "coverage_80": float(((y[:, j] >= batch.lower[0.8][:, j])
                                  & (y[:, j] <= batch.upper[0.8][:, j])).mean()),
            "coverage_95": float(((y[:, j] >= batch.lower[0.95][:, j])
                                  & (y[:, j] <= batch.upper[0.95][:, j])).mean()),
        }
    h0 = str(bundle.horizons[0])
    hits = int((called_up[:, 0] == (y[:, 0] > 0)).sum())
    out: dict[str, Any] = {"split": split, "n": len(rows), "nll": nll, "horizons": per_h,
                           "dir_acc": per_h[h0]["dir_acc"],
                           "binom_p": float(stats.binomtest(hits, len(rows), 0.5,
                                                            alternative="greater").pvalue)}
    if universe is not None and bundle.horizons[0] == 1:
        total, weight = 0.0, 0
        for sym in data.symbols:
            pos = data.positions(sym, split)
            total += universe.ceiling([sym], pos) * len(pos)
            weight += len(pos)
        out["ceiling"] = total / weight
        out["ceiling_ratio"] = out["dir_acc"] / out["ceiling"]
    return out


def truncate_frames(frames: dict[str, pd.DataFrame], until: str) -> dict[str, pd.DataFrame]:
    """Every symbol's bars dated on or before `until` (an ISO date): what a tuning trial may
    see, so that the outer test folds after it are never read."""
    try:
        cutoff = pd.Timestamp(until)
    except (TypeError, ValueError):
        raise ValueError(f"until: expected an ISO date, got {until!r}") from None
    out = {s: f.loc[f.index <= cutoff] for s, f in frames.items()}
    empty = [s for s, f in out.items() if f.empty]
    if empty:
        raise ValueError(f"until: no bars of {empty} are dated on or before {until}")
    return out


def _fingerprint(data: TrainingData) -> str:
    digest = hashlib.sha256()
    digest.update(data.windows.features.tobytes())
    digest.update(data.windows.targets.tobytes())
    return digest.hexdigest()


def run_job(spec: JobSpec, hooks: TrainHooks | None = None,
            reporter: Reporter | None = None) -> JobResult:
    """Train, save and evaluate one model; never raises for a failed fit (see module doc)."""
    started = time.perf_counter()
    if spec.threads > 0:
        torch.set_num_threads(spec.threads)
    scope = scope_of(list(spec.symbols)) if spec.symbols else "global"
    result = JobResult(status="failed", model=spec.model, scope=scope, fold=spec.fold,
                       spec_key=spec.key(), job_dir=str(spec.job_dir(scope)))
    try:
        frames, universe = resolve_source(spec.data, spec.symbols)
        if spec.until is not None:
            frames = truncate_frames(frames, spec.until)
        symbols = list(frames)
        result.scope = scope_of(symbols)
        job_dir = spec.job_dir(result.scope)
        result.job_dir, result.symbols = str(job_dir), symbols
        done = job_dir / RESULT
        if spec.resume and done.exists():
            previous = json.loads(done.read_text())
            if (previous.get("status") == "ok" and previous.get("spec_key") == result.spec_key
                    and (job_dir / f"{BUNDLE}.json").exists()):
                return JobResult(**previous)
        features = FeatureConfig(lookback=spec.lookback, horizons=spec.horizons)
        split = SplitConfig(**{"n_folds": spec.n_folds, **spec.split})
        data = build_training_data(frames, features, split, spec.fold,
                                   walk_forward=spec.n_folds > 1,
                                   feature_names=list(spec.features) if spec.features else None,
                                   decorrelate=spec.decorrelate)
        profile = PROFILES[spec.profile]
        seed_everything(spec.seed)
        model = build_model(spec.model, n_features=len(data.feature_names),
                            n_horizons=len(spec.horizons), lookback=spec.lookback,
                            **{**profile["models"].get(spec.model, {}), **spec.model_params})
        train_cfg = TrainConfig(**{**profile["train"], **spec.train_params, "seed": spec.seed})
        run_key = _run_key(spec, model_to_dict(model), train_cfg.to_dict())
        if reporter is None:
            reporter = ConsoleReporter() if spec.verbose else SilentReporter()
        label = f"{spec.model}/{result.scope}/fold{spec.fold}"
        trainer = Trainer(model, data, train_cfg, job_dir, run_key=run_key, hooks=hooks,
                          reporter=reporter, label=label, resume_hint=spec.resume_hint)
        outcome = trainer.fit(resume=spec.resume)
        bundle = TrainedModel(
            model=model, feature_names=data.feature_names, lookback=spec.lookback,
            horizons=spec.horizons, scalers=data.scalers, target_mean=data.target_mean,
            target_std=data.target_std,
            meta={"symbols": symbols, "data": spec.data, "data_sha256": _fingerprint(data),
                  "fold": {s: f.to_dict() for s, f in data.folds.items()},
                  "features": features.model_dump(mode="json"),
                  "split": split.model_dump(mode="json"), "seed": spec.seed,
                  "profile": spec.profile, "train": train_cfg.to_dict(),
                  "best_epoch": outcome.best_epoch, "val_loss": outcome.best_val_loss,
                  **({"selection": data.selection} if data.selection else {}),
                  **({"until": spec.until} if spec.until else {})})
        result.sha256 = bundle.save(job_dir / BUNDLE)
        result.bundle = str(job_dir / BUNDLE)
        result.train = {k: v for k, v in asdict(outcome).items() if k != "history"}
        result.metrics = evaluate_test(bundle, data, universe)
        result.predictions = str(save_predictions(job_predictions(bundle, data, frames),
                                                  job_dir / PREDICTIONS_FILE))
        result.status = "ok"
    except TrainingInterrupted as exc:
        result.status, result.error = "interrupted", str(exc)
    except Exception as exc:  # recorded, never propagated: one job must not stop the others
        result.error = f"{type(exc).__name__}: {exc}"
        result.traceback = traceback.format_exc()
    result.seconds = time.perf_counter() - started
    with contextlib.suppress(OSError):  # an unwritable folder is already in result.error
        atomic_write_json(Path(result.job_dir) / RESULT, result.to_dict())
    return result
