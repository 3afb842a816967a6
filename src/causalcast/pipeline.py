"""The main job (`causalcast run`, `make run`) as plain functions, one per stage.

data imported into the run's market data store → read back from ``store:`` strings →
validation → features → leakage audit → parallel walk-forward training and final fits
→ walk-forward evaluation with significance → the evaluation attached to each final fit's
version, promoted through the gates → HTML report. Each stage is also its own command; this
module only chains them and keeps the numbers honest: nothing is promoted or graded without a
passed audit, and a model that does not beat the naive baseline is reported as such and stays
a candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from causalcast.audit import AuditReport
from causalcast.registry import GateRefused, Registry
from causalcast.training.plan import FINAL_FOLD, RunSpec
from causalcast.training.runner import Executor, RunSummary

ALL_MODELS = ("naive", "drift", "ridge", "lstm", "tcn", "mamba")


@dataclass
class Dataset:
    """One dataset of the main job and everything produced for it."""

    label: str
    data: str                      # job data string (store:PATH?version=N, folder, ...)
    frames: dict[str, pd.DataFrame]
    audit: AuditReport
    ceiling: Any = None            # SyntheticUniverse for synthetic data
    run: RunSummary | None = None
    evaluation: dict[str, Any] | None = None
    promotions: list[dict[str, Any]] = field(default_factory=list)
    symbols: tuple[str, ...] | None = None   # the dataset's symbols of `data` (None: all)


def import_to_store(store: Path, batches: Mapping[str, pd.DataFrame], *, revise: bool = False,
                    source: str = "import") -> Any:
    """Write `batches` into the store at `store` (one all-or-nothing commit; bars already
    stored unchanged add nothing, so a rerun on the same home writes nothing new). Returns the
    store's `WriteResult`. `revise`: the caller regenerated these bars and they replace what
    an earlier run stored, as a new table version (earlier versions stay readable)."""
    from causalcast.store import BarStore

    return BarStore(store).write(batches, "1d", revise=revise, source=source)


def store_data_string(store: Path, version: int | None) -> str:
    """The job data string for the store pinned to `version`: workers, the registry's
    lineage and later re-runs read exactly the bars this run trained on, whatever is
    written to the store afterwards."""
    pinned = "" if version is None else f"?version={version}"
    return f"store:{Path(store).resolve()}{pinned}"


def train_dataset(ds: Dataset, *, home: Path, models: tuple[str, ...], n_folds: int,
                  horizons: tuple[int, ...], lookback: int, seed: int, profile: str,
                  workers: int | None, train_params: dict[str, Any] | None = None,
                  model_params: dict[str, dict[str, Any]] | None = None,
                  audit: bool = True, device: str = "auto") -> RunSummary:
    """Walk-forward folds (for evaluation) and the final fit (for serving) of every model, one
    global model across the dataset's symbols, on the process pool (`Executor`). The
    dataset's audit is recorded with the run (``audit=False``: none)."""
    spec = RunSpec(data=ds.data, symbols=ds.symbols, models=models, scopes=("global",),
                   folds=(*range(n_folds), "final"), n_folds=n_folds, horizons=horizons,
                   lookback=lookback, seed=seed, profile=profile,
                   model_params=dict(model_params or {}),
                   train_params=dict(train_params or {}))
    executor = Executor("pool", workers, device=device)
    ds.run = executor.run(spec, home=home, audit=ds.audit.to_dict() if audit else False,
                          name=f"make-run-{ds.label}")
    return ds.run


def evaluate_dataset(ds: Dataset, cost_bps: float = 5.0) -> dict[str, Any]:
    from causalcast.evaluation.walkforward import evaluate_predictions

    assert ds.run is not None
    ds.evaluation = evaluate_predictions(Path(ds.run.out_dir) / "walk", ds.frames,
                                         audit_passed=ds.audit, ceiling=ds.ceiling,
                                         cost_bps=cost_bps, label=ds.label)
    return ds.evaluation


def attach_to_final_fits(registry: Registry, run_id: str, evaluation: dict[str, Any],
                         label: str = "") -> dict[str, str]:
    """Attach `evaluation`'s record of each model (`promotion_metrics`) to the final fit that
    run `run_id` registered for it; returns model -> version reference. Models the
    evaluation does not cover are left as they are."""
    from causalcast.evaluation.promotion import promotion_metrics

    attached = {}
    for version in registry.versions(run_id=run_id):
        model = version.lineage.get("model")
        if version.lineage.get("fold") != FINAL_FOLD or model not in evaluation.get("models",
                                                                                    {}):
            continue
        registry.attach_evaluation(version.version_id, {
            **promotion_metrics(evaluation, model), "evaluation_run": run_id,
            "dataset": label or evaluation.get("label", "")})
        attached[model] = version.ref
    return attached


def promote_evaluated(ds: Dataset, home: Path, reason: str = "make run") -> list[dict]:
    """Attach each final fit's walk-forward evaluation to its registered version and try to
    promote that version: one registration per final fit, its scores beside it.

    The final fit is registered when it is trained, before its model's walk-forward
    evaluation exists; `Registry.attach_evaluation` adds the evaluation to that same,
    immutable version, and the gates read it. A refusal is recorded with the gate's reason,
    and the model stays a candidate."""
    assert ds.run is not None and ds.evaluation is not None
    registry = Registry.open(home)
    try:
        attach_to_final_fits(registry, ds.run.run_id, ds.evaluation, ds.label)
        for job in ds.run.jobs:
            if job.fold != FINAL_FOLD or job.status != "done" or job.version_id is None:
                continue
            row = {"dataset": ds.label, "model": job.model, "candidate": job.version,
                   "version": job.version}
            if job.model not in ds.evaluation.get("models", {}):
                row.update(promoted=False, reason="no walk-forward evaluation")
                ds.promotions.append(row)
                continue
            try:
                registry.promote(job.version_id, reason=reason)
                row.update(promoted=True, reason="all gates passed")
            except GateRefused as exc:
                failed = [r.gate for r in exc.results if not r.passed]
                row.update(promoted=False, reason="refused by " + ", ".join(failed))
            ds.promotions.append(row)
    finally:
        registry.close()
    return ds.promotions


# --------------------------------------------------------------------------- live replay
#: The main job holds these last bars out of training and replays them as "new" bars.
REPLAY_BARS = {"synthetic": 200, "msft": 100}
#: Bars into the synthetic replay at which its regime changes (signal off, volatility x 3).
REGIME_CHANGE_AT = 50
REPLAY_STEP = 10


def with_regime_change(frames: dict[str, pd.DataFrame], at: int, *, seed: int
                       ) -> dict[str, pd.DataFrame]:
    """The same bars up to position ``at``; from there, bars of a universe whose planted
    signal is switched off and whose volatility is three times as high, spliced on (prices
    rescaled to continue from the bar before ``at``, dates kept)."""
    from causalcast.data.synthetic import make_universe

    symbols = sorted(frames)
    n = len(frames[symbols[0]])
    other = make_universe(len(symbols), n - at + 1, strength=0.0, seed=seed + 1,
                          annual_vol=0.75, mc_states=10, mc_paths=10)
    out = {}
    for symbol, twin in zip(symbols, sorted(other.frames), strict=True):
        frame, g = frames[symbol], other.frames[twin]
        tail = g.iloc[1:].copy()
        price = ["open", "high", "low", "close"]
        tail[price] = tail[price] * (frame["close"].iloc[at - 1] / g["close"].iloc[0])
        tail.index = frame.index[at:]
        out[symbol] = pd.concat([frame.iloc[:at], tail])
    return out
