"""Promotion gates: plain functions a version must pass before it becomes production.

A gate receives a `GateContext` (the version, its run, the current production version of the
same name) and returns ``(passed, detail)``. Gates live in one registry dict, `GATES`; new ones
(e.g. Diebold–Mariano / Pesaran–Timmermann significance from the evaluation package) are added
with `register_gate` and, when ``default=True``, apply to every promotion to production without
touching the registry code. A gate that raises counts as failed: a crashing check never promotes.

Built-in gates read what the training/evaluation code recorded:

* ``leakage_audit``: ``metrics["leakage_audit"]`` of the version, else the audit recorded for
  its run (`Registry.record_audit`); either a bool or a mapping with ``"passed"``.
* ``beats_naive_baseline``: ``metrics["baseline_comparison"]``, one or a list of records built by
  `baseline_comparison`, all on the validation split; the model must be strictly better than
  the baseline in every one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from causalcast.registry.base import GateResult, ModelVersion, RegistryError, RunRecord

VALIDATION_SPLITS = ("validation", "val")


@dataclass(frozen=True)
class GateContext:
    version: ModelVersion
    run: RunRecord | None
    production: ModelVersion | None


GateFn = Callable[[GateContext], tuple[bool, str]]


@dataclass(frozen=True)
class Gate:
    name: str
    fn: GateFn
    description: str
    default: bool


GATES: dict[str, Gate] = {}


def register_gate(name: str, *, description: str = "", default: bool = True
                  ) -> Callable[[GateFn], GateFn]:
    """Decorator: add a gate under ``name`` (replacing one of the same name)."""

    def add(fn: GateFn) -> GateFn:
        GATES[name] = Gate(name, fn, description or (fn.__doc__ or "").strip().split("\n")[0],
                           default)
        return fn

    return add


def default_gates() -> list[str]:
    return [g.name for g in GATES.values() if g.default]


def run_gates(ctx: GateContext, names: Sequence[str] | None = None) -> list[GateResult]:
    """Evaluate the named gates (default: every default gate); unknown names are an error."""
    names = default_gates() if names is None else list(names)
    unknown = [n for n in names if n not in GATES]
    if unknown:
        raise RegistryError(f"gates: unknown {unknown}; registered gates are {sorted(GATES)}")
    results = []
    for name in names:
        try:
            passed, detail = GATES[name].fn(ctx)
        except Exception as exc:  # a broken gate refuses, it never waves a model through
            passed, detail = False, f"gate raised {type(exc).__name__}: {exc}"
        results.append(GateResult(name, bool(passed), detail))
    return results


def baseline_comparison(metric: str, model: float, baseline: float, *, lower_is_better: bool,
                        baseline_name: str = "naive", split: str = "validation"
                        ) -> dict[str, Any]:
    """The record ``beats_naive_baseline`` reads; store it as ``metrics["baseline_comparison"]``
    (or a list of them)."""
    for field, value in (("model", model), ("baseline", baseline)):
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise RegistryError(f"baseline_comparison.{field}: expected a finite number, "
                                f"got {value!r}")
    return {"metric": metric, "split": split, "model": float(model),
            "baseline": float(baseline), "baseline_name": baseline_name,
            "lower_is_better": bool(lower_is_better)}


def _audit_passed(record: Any) -> bool | None:
    if isinstance(record, bool):
        return record
    if isinstance(record, Mapping) and isinstance(record.get("passed"), bool):
        return record["passed"]
    return None


@register_gate("leakage_audit", description="a recorded leakage audit passed")
def leakage_audit_gate(ctx: GateContext) -> tuple[bool, str]:
    sources = [("version metrics", ctx.version.metrics.get("leakage_audit"))]
    if ctx.run is not None:
        sources.append((f"run {ctx.run.run_id}", ctx.run.audit))
    for where, record in sources:
        if record is None:
            continue
        passed = _audit_passed(record)
        if passed is None:
            return False, f"audit in {where} has no boolean 'passed' field"
        if not passed:
            n = record.get("n_failures", "?") if isinstance(record, Mapping) else "?"
            return False, f"leakage audit in {where} FAILED ({n} failed checks)"
        return True, f"leakage audit in {where} passed"
    return False, ("no leakage audit recorded (Registry.record_audit(run_id, report) or "
                   "metrics['leakage_audit'])")


@register_gate("beats_naive_baseline",
               description="better than the naive baseline on validation")
def beats_naive_baseline_gate(ctx: GateContext) -> tuple[bool, str]:
    recorded = ctx.version.metrics.get("baseline_comparison")
    if recorded is None:
        return False, "no baseline comparison in metrics['baseline_comparison']"
    records = recorded if isinstance(recorded, list) else [recorded]
    details, ok = [], bool(records)
    for rec in records:
        try:
            metric, model, base = rec["metric"], float(rec["model"]), float(rec["baseline"])
            lower, split = bool(rec["lower_is_better"]), rec.get("split", "validation")
        except (KeyError, TypeError, ValueError) as exc:
            return False, f"malformed baseline comparison {rec!r} ({exc})"
        if split not in VALIDATION_SPLITS:
            return False, f"{metric}: compared on {split!r}, the gate needs validation"
        better = model < base if lower else model > base
        ok = ok and better
        sign = "<" if lower else ">"
        verdict = "beats" if better else "does not beat"
        details.append(f"{metric} {model:.6g} {verdict} {rec.get('baseline_name', 'naive')} "
                       f"{base:.6g} (needs {sign})")
    return ok, "; ".join(details) or "empty baseline comparison"
