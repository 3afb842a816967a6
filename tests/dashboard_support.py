"""A small registry shaped like the main job's (`causalcast run`), for the dashboard tests:
the real stages on a tiny synthetic universe - parallel walk-forward training of naive, drift
and ridge, evaluation with significance tests, evaluated versions promoted through the gates,
and the HTML/JSON report - so every page has real numbers to show."""

from __future__ import annotations

from pathlib import Path

from causalcast.audit import run_audit
from causalcast.config import load_settings
from causalcast.data.resolve import resolve_source
from causalcast.evaluation.report import write_report
from causalcast.pipeline import Dataset, evaluate_dataset, promote_evaluated, train_dataset

DATA = "synthetic:3,900,0.45,11"
MODELS = ("naive", "drift", "ridge")


def build_home(home: Path, workers: int = 2) -> list[dict]:
    """Train, evaluate, promote and report into `home`; returns the promotion rows."""
    frames, universe = resolve_source(DATA)
    settings = load_settings(overrides={"features": {"lookback": 12, "horizons": (1, 5)}},
                             environ={})
    ds = Dataset("synthetic", DATA, frames, run_audit(frames, settings, n_cuts=3), universe)
    train_dataset(ds, home=home, models=MODELS, n_folds=3, horizons=(1, 5), lookback=12,
                  seed=0, profile="quick", workers=workers)
    evaluate_dataset(ds)
    rows = promote_evaluated(ds, home)
    write_report([ds.evaluation], home / "report.html")
    return rows
