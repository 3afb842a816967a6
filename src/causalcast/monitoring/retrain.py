"""Retraining the production models on new data, through the same executor, evaluation and
gates as every other training, and rolling back a retrained version that is worse live.

One retrain of one production version (`retrain_version`):

1. its run's `RunSpec`, narrowed to the version's model and scope, with walk-forward folds
   plus the final fit, re-run by `training.runner.Executor` on the data string as it reads
   now (a store source sees the bars `data update` / `data import` added): a registry run
   named ``retrain-<name>`` with its audit and lineage;
2. walk-forward evaluation of that run's folds (`evaluation.walkforward`), attached to the
   new final fit (`pipeline.attach_to_final_fits`);
3. `Registry.promote` through the default gates; a refusal leaves the new version a
   candidate and the old one serving. A running service picks a promotion up by itself
   (its registry poll, `serving.hub`).

`check_rollbacks`: a version promoted by a retrain that, after ``rollback_after`` distinct
scored forecasts, has a higher mean CRPS (first horizon) than the version it replaced had on
its last ``rollback_after`` scored forecasts is rolled back (`Registry.rollback`).
"""

from __future__ import annotations

import dataclasses
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from causalcast.monitoring.alerts import Alert, no_alert
from causalcast.monitoring.scoring import scored_table

RETRAIN_REASON = "retrain"


def _crps(predictions: list, last: bool, n: int) -> tuple[float, int] | None:
    from causalcast.evaluation import gaussian_crps, student_t_crps

    table = scored_table(predictions)
    if not len(table):
        return None
    rows = table[table["horizon"] == table["horizon"].min()].sort_values(["date", "symbol"])
    rows = rows.tail(n) if last else rows.head(n)
    if len(rows) < n:
        return None
    df = rows["df"].dropna()
    y, m, s = (rows[c].to_numpy(dtype=float) for c in ("y", "mean", "scale"))
    crps = gaussian_crps(y, m, s) if df.empty else student_t_crps(y, m, s, float(df.iloc[0]))
    return float(np.mean(crps)), len(rows)


def check_rollbacks(registry: Any, rollback_after: int, alert: Alert = no_alert
                    ) -> list[dict[str, Any]]:
    """Roll back each retrain-promoted production version worse live than its predecessor."""
    out = []
    for version in registry.versions(stage="production"):
        events = [e for e in registry.history(version.name)
                  if e.version_id == version.version_id and e.to_stage == "production"]
        if not events or not events[-1].reason.startswith(RETRAIN_REASON) \
                or events[-1].replaced_version_id is None:
            continue
        new = _crps(registry.meta.predictions(version.version_id), False, rollback_after)
        old = _crps(registry.meta.predictions(events[-1].replaced_version_id), True,
                    rollback_after)
        if new is None or old is None:
            continue
        row = {"name": version.name, "version": version.ref, "live_crps": new[0],
               "previous_live_crps": old[0], "n": rollback_after}
        if new[0] > old[0]:
            restored = registry.rollback(
                version.name, reason=f"{RETRAIN_REASON}: live CRPS {new[0]:.5f} worse than "
                f"{old[0]:.5f} of the replaced version over {rollback_after} forecasts")
            row["rolled_back_to"] = restored.ref
            alert("rolled_back", **row)
        out.append(row)
    return out


def retrain_version(home: Path, version: Any, *, backend: str = "pool",
                    workers: int | None = None, n_folds: int | None = None,
                    audit: bool = True, alert: Alert = no_alert) -> dict[str, Any]:
    """Retrain, evaluate, attach and try to promote one production version (see module)."""
    from causalcast.evaluation.walkforward import evaluate_predictions
    from causalcast.pipeline import attach_to_final_fits
    from causalcast.registry import GateRefused, Registry
    from causalcast.training.plan import FINAL, FINAL_FOLD, RunSpec
    from causalcast.training.runner import Executor

    row: dict[str, Any] = {"name": version.name, "previous": version.ref}
    try:
        registry = Registry.open(home, create=False)
        try:
            run = registry.get_run(version.run_id)
        finally:
            registry.close()
        spec = RunSpec.from_dict(run.config["spec"])
        extra = version.lineage.get("extra") or {}
        model = version.lineage["model"]
        scope = extra.get("scope") or version.lineage.get("symbol") or "global"
        folds = n_folds or spec.n_folds
        spec = dataclasses.replace(
            spec, models=(model,), scopes=("global",) if scope == "global" else ("per-symbol",),
            symbols=spec.symbols if scope == "global" else (scope,),
            folds=(*range(folds), FINAL), n_folds=folds)
        summary = Executor(backend, workers).run(spec, home=home, audit=audit,
                                                 name=f"{RETRAIN_REASON}-{version.name}")
        row["run_id"] = summary.run_id
        if summary.failed:
            raise RuntimeError(f"{summary.failed} training jobs failed in run {summary.run_id}")
        from causalcast.data.resolve import resolve_source

        frames, universe = resolve_source(spec.data, list(spec.symbols or ()) or None)
        evaluation = evaluate_predictions(Path(summary.out_dir) / "walk", frames,
                                          audit_passed=summary.audit_passed, ceiling=universe,
                                          label=f"{RETRAIN_REASON}-{version.name}")
        registry = Registry.open(home, create=False)
        try:
            attached = attach_to_final_fits(registry, summary.run_id, evaluation)
            candidate = next((j for j in summary.jobs if j.fold == FINAL_FOLD
                              and j.name == version.name and j.version_id is not None), None)
            if candidate is None or model not in attached:
                raise RuntimeError(f"run {summary.run_id}: no evaluated final fit of "
                                   f"{version.name}")
            row["candidate"] = candidate.version
            try:
                registry.promote(candidate.version_id,
                                 reason=f"{RETRAIN_REASON}: replaces {version.ref}")
                row.update(promoted=True, reason="all gates passed")
                alert("promoted", name=version.name, version=candidate.version,
                      replaced=version.ref, run_id=summary.run_id)
            except GateRefused as exc:
                failed = [r.to_dict() for r in exc.results if not r.passed]
                row.update(promoted=False, reason="refused by " + ", ".join(
                    g["gate"] for g in failed))
                alert("refused", name=version.name, version=candidate.version,
                      gates=failed, run_id=summary.run_id)
        finally:
            registry.close()
    except Exception as exc:
        row.update(promoted=False, reason=f"failed: {type(exc).__name__}: {exc}")
        alert("failed", name=version.name, error=f"{type(exc).__name__}: {exc}",
              traceback=traceback.format_exc(limit=5))
    return row


def retrain(home: Path, *, when: str = "always", backend: str = "pool",
            workers: int | None = None, n_folds: int | None = None, audit: bool = True,
            rollback_after: int = 100, data_source: str | None = None,
            alert: Alert = no_alert) -> dict[str, Any]:
    """One scheduled pass: score, check rollbacks, then retrain every production version
    (``when="always"``) or only the degraded ones (``when="drift"``)."""
    from causalcast.monitoring.service_loop import monitor_pass
    from causalcast.registry import Registry

    if when not in ("always", "drift"):
        raise ValueError(f"--when: expected 'always' or 'drift', got {when!r}")
    reports = monitor_pass(home, data_source)
    for r in reports:
        if r["status"] == "degraded":
            alert("degraded", name=r["name"], version=r["version"], reasons=r["reasons"])
    registry = Registry.open(home, create=False)
    try:
        rollbacks = check_rollbacks(registry, rollback_after, alert)
        production = registry.versions(stage="production")
    finally:
        registry.close()
    degraded = {r["version_id"] for r in reports if r["status"] == "degraded"}
    targets = [v for v in production if when == "always" or v.version_id in degraded]
    results = [retrain_version(home, v, backend=backend, workers=workers, n_folds=n_folds,
                               audit=audit, alert=alert) for v in targets]
    return {"when": when, "statuses": {r["version"]: r["status"] for r in reports},
            "rollbacks": rollbacks, "retrained": results}
