"""Replaying held-out bars as if they arrived live (the main job's demonstration).

For each replay step the bars of that step "arrive": every production version forecasts
each of its symbols from each new bar, the forecasts go through the prediction log (the same
writer and table as the service's), the log is scored against the bars that have arrived so
far, and each version is judged. At the end the live metrics stand next to the walk-forward
figures.

Windows are cut from features computed once over the whole replay frame: the features are
causal (the leakage audit's prefix-invariance check proves it for every run), so the window
ending at bar t is the same as the one a service would compute when bar t was the newest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from causalcast.monitoring.predlog import PredictionLog, utc_iso
from causalcast.monitoring.scoring import score_pending
from causalcast.monitoring.status import monitor_reports, version_report
from causalcast.registry.records import NewPrediction


def _windows(bundle: Any, symbol: str, frame: pd.DataFrame, positions: range
             ) -> tuple[np.ndarray, list[int]]:
    from causalcast.features.indicators import build_features

    feats = build_features(frame, bundle.feature_names).to_numpy(dtype=np.float64)
    scaler = bundle.scaler_for(symbol)
    keep, windows = [], []
    for t in positions:
        tail = feats[t - bundle.lookback + 1:t + 1]
        if len(tail) == bundle.lookback and np.isfinite(tail).all():
            windows.append(scaler.transform(tail))
            keep.append(t)
    return (np.stack(windows) if windows else np.empty((0,))), keep


def _rows(version_id: int, bundle: Any, symbol: str, frame: pd.DataFrame,
          positions: list[int], batch: Any) -> list[NewPrediction]:
    cfg = bundle.model.config
    df = None if cfg.likelihood == "gaussian" else float(cfg.df)
    now = utc_iso()
    close = frame["close"].to_numpy(dtype=float)
    out = []
    for i, t in enumerate(positions):
        for j, h in enumerate(bundle.horizons):
            row = {"horizon": int(h), "mean_log_return": float(batch.mean[i, j]),
                   "scale_log_return": float(batch.scale[i, j]),
                   "p_up": float(batch.prob_up[i, j]),
                   **{f"{side}_{int(lv * 100)}": float(getattr(batch, side)[lv][i, j])
                      for side in ("lower", "upper") for lv in (0.8, 0.95)}}
            out.append(NewPrediction(version_id, symbol, frame.index[t].isoformat(), int(h),
                                     float(close[t]), row["mean_log_return"],
                                     row["scale_log_return"], df, row, now, False, "replay"))
    return out


def replay(home: Path, frames: Mapping[str, pd.DataFrame], first_new: int, step: int,
           versions: list[Any] | None = None) -> dict[str, Any]:
    """Replay bars ``first_new`` (position in each frame) to the end in steps of ``step``
    bars for ``versions`` (default: every production version whose symbols are in
    ``frames``). Returns per version the status after each step and the final report."""
    from causalcast.models.bundle import TrainedModel
    from causalcast.registry import Registry

    registry = Registry.open(home, create=False)
    log = PredictionLog(home, flush_ms=50)
    try:
        if versions is None:
            versions = registry.versions(stage="production")
        bundles = {}
        for v in versions:
            bundle = TrainedModel.from_artifact(registry.load_artifact(v))
            symbols = [s for s in bundle.meta.get("symbols", []) if s in frames]
            if symbols:
                bundles[v.version_id] = (v, bundle, symbols)
        n = min((len(frames[s]) for _, _, syms in bundles.values() for s in syms),
                default=first_new)
        cached: dict[tuple[int, str], tuple[np.ndarray, list[int]]] = {}
        for vid, (_, bundle, symbols) in bundles.items():
            for s in symbols:
                cached[vid, s] = _windows(bundle, s, frames[s], range(first_new - 1, n))
        timeline: dict[str, list[tuple[int, str]]] = {v.ref: [] for v, _, _ in bundles.values()}
        start = first_new - 1       # the last training bar is forecast from first
        for end in range(first_new + step, n + step, step):
            end = min(end, n)
            for vid, (_, bundle, symbols) in bundles.items():
                for s in symbols:
                    windows, positions = cached[vid, s]
                    pick = [i for i, t in enumerate(positions) if start <= t < end]
                    if not pick:
                        continue
                    batch = bundle.predict_windows(windows[pick])
                    log.record(_rows(vid, bundle, s, frames[s],
                                     [positions[i] for i in pick], batch))
            start = end
            log.flush()
            arrived = {s: f.iloc[:end] for s, f in frames.items()}
            score_pending(registry, lambda v, syms, bars=arrived: bars)
            for vid, (v, _, _) in bundles.items():
                report = version_report(v, registry.meta.predictions(vid),
                                        registry.evaluation(vid))
                timeline[v.ref].append((end - first_new, report["status"]))
        reports = monitor_reports(registry, lambda v, syms: frames,
                                  [v for v, _, _ in bundles.values()])
    finally:
        log.close()
        registry.close()
    return {"timeline": timeline, "reports": reports, "bars": max(n - first_new, 0)}


def replay_run(home: Path, run_id: str, full: Mapping[str, pd.DataFrame], bars: int,
               step: int) -> dict[str, Any]:
    """Replay the last ``bars`` of ``full`` (held out of training) through the production
    versions a run registered: forecasts logged, scored as bars arrive, each version judged
    (the main job's last stage)."""
    from causalcast.registry import Registry

    registry = Registry.open(home, create=False)
    try:
        versions = registry.versions(stage="production", run_id=run_id)
    finally:
        registry.close()
    n = min(len(f) for f in full.values())
    return replay(home, full, n - bars, step, versions)
