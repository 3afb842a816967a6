"""The reviewed system's letter grade, computed as it was, shown only when it has been earned.

The rubric (A: directional accuracy > 70 % and Sharpe > 3; B: > 65 % and > 2.5; C: > 60 %
and > 2; D: > 55 % and > 1.5; else F) rewards numbers that on daily equity data are far more
likely a leak or luck than skill. So `honest_grade` computes it but shows F unless

1. the leakage audit passed, and
2. every test supplied against the naive baseline rejects it at `alpha` (5 %).

All supplied tests must reject (not just one): picking the one that happened to reject would
be a multiple-testing leak of its own. The caller chooses the tests, typically the DM test of
the model's loss against the naive forecast's (`DMResult.p_a_better`) and the PT test of its
directions (`PTResult.p_value`). A missing or NaN p-value counts as not rejected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from causalcast.evaluation._validate import EvaluationInputError, check_alpha

# (grade, accuracy strictly above, Sharpe strictly above), best first
RUBRIC: tuple[tuple[str, float, float], ...] = (
    ("A", 0.70, 3.0),
    ("B", 0.65, 2.5),
    ("C", 0.60, 2.0),
    ("D", 0.55, 1.5),
)


def rubric_grade(directional_accuracy: float, sharpe: float) -> str:
    """The rubric's letter for an accuracy (fraction in [0, 1]) and an annualised Sharpe
    ratio; both thresholds are strict. A NaN Sharpe (no variation, no trades) earns F."""
    try:
        acc = float(directional_accuracy)
        sr = float(sharpe)
    except (TypeError, ValueError):
        raise EvaluationInputError(
            f"directional_accuracy/sharpe: must be numbers, got {directional_accuracy!r}, "
            f"{sharpe!r}") from None
    if not (math.isfinite(acc) and 0.0 <= acc <= 1.0):
        raise EvaluationInputError(
            f"directional_accuracy: must be a fraction in [0, 1], got {directional_accuracy!r}")
    if math.isnan(sr):
        return "F"
    for letter, min_acc, min_sharpe in RUBRIC:
        if acc > min_acc and sr > min_sharpe:
            return letter
    return "F"


@dataclass(frozen=True)
class Grade:
    """`computed` is what the rubric says; `shown` is what may be displayed (F unless the
    gate passed); `reasons` says why a better grade is withheld (empty when it is not)."""

    computed: str
    shown: str
    gate_passed: bool
    audit_passed: bool
    baseline_rejected: bool
    baseline_p_values: dict[str, float | None]
    alpha: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"computed": self.computed, "shown": self.shown,
                "gate_passed": self.gate_passed, "audit_passed": self.audit_passed,
                "baseline_rejected": self.baseline_rejected,
                "baseline_p_values": dict(self.baseline_p_values), "alpha": self.alpha,
                "reasons": list(self.reasons)}


def _audit_flag(audit_passed: Any) -> bool:
    """A bool, or anything with a boolean `passed` attribute (e.g. `audit.AuditReport`)."""
    flag = getattr(audit_passed, "passed", audit_passed)
    if not isinstance(flag, bool):
        raise EvaluationInputError(
            f"audit_passed: must be a bool or an audit report with .passed, got {audit_passed!r}")
    return flag


def honest_grade(directional_accuracy: float, sharpe: float, *, audit_passed: Any,
                 baseline_p_values: Mapping[str, float | None], alpha: float = 0.05) -> Grade:
    """The rubric grade, gated: shown only if the audit passed and every test against the
    naive baseline in `baseline_p_values` (name -> p-value) rejects at `alpha`."""
    alpha = check_alpha(alpha)
    computed = rubric_grade(directional_accuracy, sharpe)
    audit = _audit_flag(audit_passed)
    if not isinstance(baseline_p_values, Mapping):
        raise EvaluationInputError(
            f"baseline_p_values: must map test name -> p-value, got {baseline_p_values!r}")
    pvals: dict[str, float | None] = {}
    for name, p in baseline_p_values.items():
        if p is None or (isinstance(p, float) and math.isnan(p)):
            pvals[str(name)] = None
            continue
        try:
            value = float(p)
        except (TypeError, ValueError):
            raise EvaluationInputError(
                f"baseline_p_values[{name!r}]: must be a number or None, got {p!r}") from None
        if not 0.0 <= value <= 1.0:
            raise EvaluationInputError(
                f"baseline_p_values[{name!r}]: a p-value must be in [0, 1], got {p!r}")
        pvals[str(name)] = value

    reasons = []
    if not audit:
        reasons.append("the leakage audit did not pass")
    if not pvals:
        reasons.append("no test against the naive baseline was supplied")
    for name, p in pvals.items():
        if p is None:
            reasons.append(f"{name}: no p-value (test not run or undefined)")
        elif p >= alpha:
            reasons.append(f"{name}: p = {p:.4g} does not reject the naive baseline at "
                           f"{alpha:g}")
    rejected = bool(pvals) and all(p is not None and p < alpha for p in pvals.values())
    gate = audit and rejected
    return Grade(computed=computed, shown=computed if gate else "F", gate_passed=gate,
                 audit_passed=audit, baseline_rejected=rejected, baseline_p_values=pvals,
                 alpha=alpha, reasons=tuple(reasons))
