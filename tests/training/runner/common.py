"""The tiny run every runner test shares: 3 synthetic symbols x 400 bars, ridge and a small
LSTM (2 epochs), global and per-symbol, final fit -> 8 jobs in a few seconds each."""

from __future__ import annotations

from causalcast.registry import Registry
from causalcast.training.runner import RunSpec

TINY = RunSpec(data="synthetic:3,400,0.5,1", models=("ridge", "lstm"),
               scopes=("global", "per-symbol"), horizons=(1, 2), lookback=10, seed=3,
               model_params={"lstm": {"hidden": 8}}, train_params={"epochs": 2})
N_JOBS = 8


def contents(home, run_id: str) -> dict[tuple, tuple]:
    """What "the same registry contents" means: per job, the version name, the artifact's
    SHA-256 and the recorded metrics (timings excluded: they are not in versions)."""
    with Registry.open(home, create=False) as reg:
        return {(v.lineage["symbol"], v.lineage["model"], v.lineage["fold"]):
                (v.name, v.artifact_sha256, v.metrics, v.data_fingerprint)
                for v in reg.versions(run_id=run_id)}
