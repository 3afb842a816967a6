"""From a walk-forward evaluation to the records the registry's promotion gates read.

The registry decides promotion from what was recorded with a version (`registry.gates`); this
module writes those records for one evaluated model so that ``causalcast registry promote``
refuses a model the tests do not support:

* ``significance`` (gate ``significant_vs_naive``): the one-sided p-values of the
  Diebold-Mariano test against the naive forecast and of the date-clustered direction test,
  on the pooled walk-forward test rows (out of sample for every fold);
* ``baseline_comparison`` (gate ``beats_naive_baseline``): `scores.beats_naive_record`, the
  one definition of "beats naive" (validation MSE against the naive forecast's on the same
  validation rows, first horizon; docs/evaluation.md);
* ``grade`` (opt-in gate ``grade_shown``) and ``leakage_audit`` (gate ``leakage_audit``).
"""

from __future__ import annotations

from typing import Any

from causalcast.evaluation._validate import EvaluationInputError
from causalcast.evaluation.scores import beats_naive_record


def promotion_metrics(result: dict[str, Any], model: str) -> dict[str, Any]:
    """Metrics to register with `model`'s version (merge them into its metrics dict)."""
    from causalcast.registry.gates import significance_record

    models = result.get("models", {})
    if model not in models:
        raise EvaluationInputError(f"model: {model!r} is not in the evaluation (have "
                                   f"{sorted(models)})")
    m = models[model]
    h = str(m["horizons"][0])
    hm = m["metrics"][h]
    out: dict[str, Any] = {
        "significance": significance_record(
            {"dm_vs_naive": hm["dm_vs_naive"]["p_a_better"],
             "direction": hm["direction_test"]["p_value"]},
            split="walk_forward_test", horizon=int(h), alpha=result.get("alpha", 0.05),
            n=hm["n"]),
        "grade": m["grade"],
        "walk_forward": {"accuracy": hm["direction"]["accuracy"],
                         "ci_low": hm["direction"]["ci_low"],
                         "ci_high": hm["direction"]["ci_high"],
                         "always_up": hm["direction"]["up_rate"], "crps": hm.get("crps"),
                         "sharpe": m["backtest"]["stats"]["sharpe"], "folds": m["folds"],
                         "n": hm["n"]},
    }
    if result["audit"]["status"] != "not run":   # else the gate reads the run's audit
        out["leakage_audit"] = {"passed": bool(result["audit"]["passed"]),
                                "status": result["audit"]["status"]}
    comparison = beats_naive_record(m.get("validation"))
    if comparison is not None:
        out["baseline_comparison"] = comparison
    return out
