"""One training job: (data, symbols, model, fold) -> a saved bundle, metrics and a result.

`run_job(spec)` is the one function that starts training a job: every backend of
`runner.Executor` (inline, process pool, Ray) runs it through `worker.execute_job`, whatever
the entry point. `JobSpec` is a small picklable dataclass; the job loads its own data from
the spec's data string, sets ``torch.set_num_threads(spec.threads)``, seeds everything from
``spec.seed`` and never raises for a failed fit — the failure is returned (and written to
``result.json``) with its traceback, so one bad (symbol, model) never stops the others.

A spec with one symbol trains a per-symbol model; with several (or ``symbols=None``: all of
the source), one global model across them. Output folder (`plan.plan_run` sets ``out_dir``
to ``<out>/final`` or ``<out>/walk``): ``out_dir/<model>/<SYMBOL or "global">/fold<k>/``
holding ``checkpoints/``, ``metrics.jsonl``, ``model.safetensors`` + ``model.json`` (the
bundle), ``predictions.parquet`` and ``result.json``.
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

from causalcast.config import DEFAULT_HORIZONS, AugmentConfig, FeatureConfig, SplitConfig
from causalcast.data.resolve import resolve_source
from causalcast.evaluation.scores import job_scores
from causalcast.io import atomic_write_json
from causalcast.models.base import build_model, model_to_dict
from causalcast.models.bundle import TrainedModel
from causalcast.registry.names import path_component
from causalcast.training.data import TrainingData, build_training_data
from causalcast.training.device import resolve_device
from causalcast.training.predictions import FILE as PREDICTIONS_FILE
from causalcast.training.predictions import job_predictions, save_predictions
from causalcast.training.profiles import PROFILES, check_profile
from causalcast.training.progress import ConsoleReporter, Reporter, SilentReporter
from causalcast.training.trainer import (
    TrainConfig,
    Trainer,
    TrainHooks,
    TrainingInterrupted,
)

RESULT = "result.json"
OPTIONAL_FIELDS = ("decorrelate", "until", "augment")
#: Where and how fast a job runs, not what it learns: left out of `JobSpec.identity()`.
PLACEMENT_FIELDS = ("out_dir", "threads", "resume", "verbose", "resume_hint", "device")
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
    augment: dict[str, Any] | None = None       # AugmentConfig fields; None: no augmentation
    device: str = "auto"                        # auto | cpu | cuda[:N] (device.resolve_device)

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if self.symbols is not None:
            self.symbols = tuple(self.symbols)
        self.horizons = tuple(int(h) for h in self.horizons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """What determines the trained weights (not where or how fast it runs)."""
        d = self.to_dict()
        for k in PLACEMENT_FIELDS:
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


def augment_config(spec: JobSpec) -> AugmentConfig | None:
    """The job's training-only augmentation (batch jitter and magnitude warping of training
    windows, seeded by the job's seed unless the spec gives one), or None when off."""
    if not spec.augment:
        return None
    config = AugmentConfig(**{"enabled": True, "seed": spec.seed, **spec.augment})
    if config.enabled and config.bootstrap_copies:
        raise ValueError("augment.bootstrap_copies: not used by training (see RunSpec)")
    return config if config.enabled else None


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
        augment = augment_config(spec)
        trainer = Trainer(model, data, train_cfg, job_dir, run_key=run_key, hooks=hooks,
                          reporter=reporter, label=label, resume_hint=spec.resume_hint,
                          augment=augment, device=resolve_device(spec.device))
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
                  **({"augment": augment.model_dump(mode="json")} if augment else {}),
                  **({"until": spec.until} if spec.until else {})})
        result.sha256 = bundle.save(job_dir / BUNDLE)
        result.bundle = str(job_dir / BUNDLE)
        result.train = {k: v for k, v in asdict(outcome).items() if k != "history"}
        table = job_predictions(bundle, data, frames)
        result.predictions = str(save_predictions(table, job_dir / PREDICTIONS_FILE))
        result.metrics = job_scores(table, universe)   # the evaluation package scores
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
