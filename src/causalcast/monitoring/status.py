"""A served version's live report: its scored forecasts' metrics next to its walk-forward
figures, the drift detectors, and the verdict ok / watch / degraded with the reasons.

Input drift compares each feature's values at the bars the version forecast from (live)
with its values over the history before the version's first logged forecast (at most the
last `REFERENCE_BARS` bars): the range the final fit was trained and validated on, plus the
walk-forward test range before it went live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from causalcast.monitoring.drift import (
    MIN_LIVE_INPUTS,
    coverage_drift,
    feature_drift,
    judge,
    loss_cusum,
)
from causalcast.monitoring.scoring import (
    FrameLoader,
    bar_time,
    below_walk_forward,
    live_metrics,
    scored_table,
)
from causalcast.registry.records import ModelVersion, PredictionRecord

REFERENCE_BARS = 2000
MIN_SCORED = 10     # scored forecasts before calibration and the loss test are judged


def input_drift(predictions: Sequence[PredictionRecord], names: Sequence[str],
                frames: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, float]] | None:
    """PSI / KS per feature, pooled over symbols; None until `MIN_LIVE_INPUTS` live bars."""
    from causalcast.features.indicators import build_features

    refs, lives = [], []
    for symbol in sorted({p.symbol for p in predictions}):
        frame = frames.get(symbol)
        if frame is None:
            continue
        as_of = sorted({bar_time(p.as_of) for p in predictions if p.symbol == symbol})
        feats = build_features(frame, list(names))
        first = as_of[0]
        ref = feats.loc[feats.index <= first].tail(REFERENCE_BARS).dropna()
        live = feats.reindex(pd.DatetimeIndex([t for t in as_of if t > first])).dropna()
        refs.append(ref.to_numpy())
        lives.append(live.to_numpy())
    if not refs:
        return None
    ref_all, live_all = np.concatenate(refs), np.concatenate(lives)
    if len(live_all) < MIN_LIVE_INPUTS or len(ref_all) < 50:
        return None
    return feature_drift(ref_all, live_all, list(names))


def version_report(version: ModelVersion, predictions: Sequence[PredictionRecord],
                   evaluation: dict[str, Any] | None,
                   frames: Mapping[str, pd.DataFrame] | None = None, *,
                   alpha: float = 0.05) -> dict[str, Any]:
    """Everything `monitor status` shows for one version (JSON-ready)."""
    table = scored_table(predictions)
    live = live_metrics(predictions, alpha=alpha)
    walk_forward = (evaluation or {}).get("walk_forward")
    drift: dict[str, Any] = {"inputs": None, "coverage": [], "loss_vs_naive": None}
    below = None
    if len(table):
        h = int(table["horizon"].min())
        rows = table[table["horizon"] == h].sort_values(["date", "symbol"])
        df = rows["df"].dropna()
        dfv = float(df.iloc[0]) if len(df) else None
        if len(rows) >= MIN_SCORED:
            drift["coverage"] = coverage_drift(rows["y"].to_numpy(), rows["mean"].to_numpy(),
                                               rows["scale"].to_numpy(), dfv)
            drift["loss_vs_naive"] = loss_cusum(rows["y"].to_numpy(), rows["mean"].to_numpy())
        direction = live.get(str(h), {}).get("direction")
        if direction and walk_forward and int(walk_forward.get("horizon", h)) == h:
            below = below_walk_forward(direction["hits"], direction["n"],
                                       walk_forward.get("accuracy"), alpha)
        drift["horizon"] = h
    names = version.config.get("feature_names") or []
    if frames is not None and names and predictions:
        drift["inputs"] = input_drift(predictions, names, frames)
    status, reasons = judge(inputs=drift["inputs"], coverage=drift["coverage"],
                            cusum=drift["loss_vs_naive"], below=below)
    if not len(table) and drift["inputs"] is None:
        status, reasons = "unknown", ["no scored forecasts yet"]
    drift["coverage"] = [c.to_dict() for c in drift["coverage"]]
    if drift["loss_vs_naive"] is not None:
        drift["loss_vs_naive"] = drift["loss_vs_naive"].to_dict()
    return {"version": version.ref, "version_id": version.version_id, "name": version.name,
            "status": status, "reasons": reasons, "logged": len(predictions),
            "scored": int(sum(p.realised is not None for p in predictions)),
            "distinct_scored": len(table), "live": live, "walk_forward": walk_forward,
            "live_below_walk_forward": below, "drift": drift}


def monitor_reports(registry: Any, load_frames: FrameLoader | None = None,
                    versions: Sequence[ModelVersion] | None = None) -> list[dict[str, Any]]:
    """A report per version (default: every production version)."""
    out = []
    for version in versions if versions is not None else \
            registry.versions(stage="production"):
        preds = registry.meta.predictions(version.version_id)
        frames = None
        if load_frames is not None and preds:
            frames = load_frames(version, sorted({p.symbol for p in preds}))
        out.append(version_report(version, preds, registry.evaluation(version.version_id),
                                  frames))
    return out
