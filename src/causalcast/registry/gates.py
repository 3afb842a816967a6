"""Promotion gates: plain functions a version must pass before it becomes production.

A gate receives a `GateContext` (the version, its run, the current production version of the
same name) and returns ``(passed, detail)``. Gates live in one registry dict, `GATES`; new ones
(e.g. Diebold–Mariano / Pesaran–Timmermann significance from the evaluation package) are added
with `register_gate` and, when ``default=True``, apply to every promotion to production without
touching the registry code. A gate that raises counts as failed: a crashing check never promotes.

Built-in gates read what the evaluation recorded: the evaluation attached to the version
(`Registry.attach_evaluation`, ``GateContext.evaluation``) and, for a key it does not hold,
the version's own metrics (`GateContext.recorded`):

* ``leakage_audit``: ``["leakage_audit"]`` of the evaluation or the version, else the audit
  recorded for its run (`Registry.record_audit`); either a bool or a mapping with ``"passed"``.
* ``beats_naive_baseline``: ``metrics["baseline_comparison"]``, one or a list of records built by
  `baseline_comparison`, all on the validation split; the model must be strictly better than
  the baseline in every one.
* ``significant_vs_naive``: ``metrics["significance"]``, a record built by `significance_record`
  (the evaluation package's `promotion_metrics` writes it from walk-forward predictions): every
  test against the naive baseline (Diebold-Mariano, direction) rejects at 5 % on
  out-of-sample rows. Being lower on one validation number can be luck; this asks for
  evidence.
* ``grade_shown`` (opt-in, ``--gate grade_shown``): ``metrics["grade"]`` says the honest grade
  shown is above F (the rubric's thresholds met, audit passed, baseline tests rejected).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from causalcast.registry.records import GateResult, ModelVersion, RegistryError, RunRecord

VALIDATION_SPLITS = ("validation", "val")
#: Splits on which a significance test may be computed: never the training rows.
OUT_OF_SAMPLE_SPLITS = (*VALIDATION_SPLITS, "test", "walk_forward_test", "out_of_sample")
SIGNIFICANCE_ALPHA = 0.05


@dataclass(frozen=True)
class GateContext:
    version: ModelVersion
    run: RunRecord | None
    production: ModelVersion | None
    evaluation: Mapping[str, Any] | None = None    # latest attached evaluation, if any

    def recorded(self, key: str) -> Any:
        """``key`` from the attached evaluation, else from the version's metrics."""
        if self.evaluation is not None and key in self.evaluation:
            return self.evaluation[key]
        return self.version.metrics.get(key)

    def where(self, key: str) -> str:
        """Where `recorded(key)` came from, for gate messages."""
        if self.evaluation is not None and key in self.evaluation:
            return "the attached evaluation"
        return "version metrics"


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
    sources = [(ctx.where("leakage_audit"), ctx.recorded("leakage_audit"))]
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
    recorded = ctx.recorded("baseline_comparison")
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


def significance_record(p_values: Mapping[str, float | None], *, split: str = "walk_forward_test",
                        horizon: int = 1, alpha: float = SIGNIFICANCE_ALPHA, n: int | None = None,
                        baseline_name: str = "naive") -> dict[str, Any]:
    """The record ``significant_vs_naive`` reads; store it as ``metrics["significance"]``.
    `p_values` maps test name -> one-sided p-value for "the model beats the baseline"."""
    if not p_values:
        raise RegistryError("significance_record.p_values: at least one test is required")
    clean: dict[str, float | None] = {}
    for name, p in p_values.items():
        if p is not None and not (isinstance(p, int | float) and 0.0 <= float(p) <= 1.0):
            raise RegistryError(f"significance_record.p_values[{name!r}]: expected a p-value "
                                f"in [0, 1] or None, got {p!r}")
        clean[str(name)] = None if p is None else float(p)
    return {"split": split, "horizon": int(horizon), "alpha": float(alpha), "n": n,
            "baseline_name": baseline_name, "p_values": clean}


@register_gate("significant_vs_naive",
               description="tests against the naive baseline reject at 5 % out of sample")
def significant_vs_naive_gate(ctx: GateContext) -> tuple[bool, str]:
    rec = ctx.recorded("significance")
    if rec is None:
        return False, ("no significance record in metrics['significance'] (build it with "
                       "causalcast.evaluation.promotion_metrics)")
    if not isinstance(rec, Mapping) or not isinstance(rec.get("p_values"), Mapping):
        return False, f"malformed significance record {rec!r}"
    split = rec.get("split")
    if split not in OUT_OF_SAMPLE_SPLITS:
        return False, (f"significance computed on {split!r}; the gate needs out-of-sample rows "
                       f"({', '.join(OUT_OF_SAMPLE_SPLITS)})")
    if not rec["p_values"]:
        return False, "significance record holds no test"
    details, ok = [], True
    for name, p in rec["p_values"].items():
        rejects = isinstance(p, int | float) and math.isfinite(p) and p < SIGNIFICANCE_ALPHA
        ok = ok and rejects
        shown = "missing" if p is None else f"{float(p):.4g}"
        details.append(f"{name} p = {shown} {'<' if rejects else '>='} {SIGNIFICANCE_ALPHA:g}")
    verdict = "beats" if ok else "does not beat"
    return ok, (f"{verdict} the {rec.get('baseline_name', 'naive')} baseline on {split} "
                f"(h={rec.get('horizon', '?')}): " + "; ".join(details))


@register_gate("grade_shown", default=False,
               description="the honest grade shown is above F")
def grade_shown_gate(ctx: GateContext) -> tuple[bool, str]:
    grade = ctx.recorded("grade")
    if not isinstance(grade, Mapping) or "shown" not in grade:
        return False, "no honest grade in metrics['grade']"
    shown, computed = grade.get("shown"), grade.get("computed")
    if shown in (None, "F"):
        reasons = "; ".join(grade.get("reasons") or []) or "the rubric gives F"
        return False, f"grade shown F (rubric {computed}): {reasons}"
    return True, f"grade {shown} shown"
