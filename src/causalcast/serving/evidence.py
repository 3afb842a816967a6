"""The evidence a served version carries with every forecast, read once at (re)load time.

Why: a forecast without its credentials invites trust it has not earned (a P(up) of 0.57 from
a model whose Diebold-Mariano p-value was 0.50). Each forecast therefore carries what the
version's out-of-sample evaluation found, mapped from the records
`causalcast.evaluation.promotion_metrics` writes (the attached evaluation, else the version's
recorded metrics, exactly as the promotion gates read them: the evaluation wins):

* ``walk_forward``: ``accuracy``, ``ci_low``/``ci_high``, ``always_up`` (the up-rate of the
  test rows: what always saying "up" would score), ``n`` (``n_test``);
* ``significance.p_values``: ``dm_vs_naive`` (``p_dm``) and ``direction`` (``p_direction``);
* ``grade.shown``: the honest grade (``grade``).

``beats_naive`` is the registry's own verdict, the two default gates that compare with the
naive forecast (``beats_naive_baseline`` and ``significant_vs_naive``) run on those records;
and it is False whenever the version reached production by a manual override (a promotion that
skipped or failed a default gate), with a warning, so such a model is never served silently.

A field that is not recorded is null, and ``missing`` says why; nothing is invented.
"""

from __future__ import annotations

from typing import Any

from causalcast.registry.gates import default_gates

NAIVE_GATES = ("beats_naive_baseline", "significant_vs_naive")
EVIDENCE_FIELDS = ("accuracy", "ci_low", "ci_high", "always_up", "p_dm", "p_direction",
                   "grade", "n_test")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def override_of(registry, version) -> str | None:
    """Why the version's production stage was not earned through every default gate, or None.

    Reads the stage history: the latest promotion of this version to production must record
    every default gate, passed. A promotion with gates skipped (a chosen subset, or none) or
    a gate that did not pass is an override."""
    events = [e for e in registry.history(version.name)
              if e.version_id == version.version_id and e.to_stage == "production"
              and e.action == "promote"]
    if not events:
        return "no gated promotion to production is recorded for this version"
    latest = max(events, key=lambda e: e.event_id)
    passed = {g.get("gate") for g in latest.gates if g.get("passed")}
    skipped = [g for g in default_gates() if g not in passed]
    if skipped:
        return (f"promoted to production by {latest.by} at {latest.at} without passing the "
                f"default gate(s) {', '.join(skipped)} (manual override"
                + (f": {latest.reason!r})" if latest.reason else ")"))
    return None


def version_evidence(registry, version) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(evidence, warnings) for one version; see the module doc for each field's source."""
    record = registry.evaluation_record(version.version_id)
    if record is not None:
        recorded = {**version.metrics, **record.evaluation}
        source, evaluated_at = "evaluation", record.created_at
    else:
        recorded = dict(version.metrics)
        source, evaluated_at = "metrics", version.created_at
    wf = recorded.get("walk_forward") if isinstance(recorded.get("walk_forward"), dict) else {}
    sig = recorded.get("significance") if isinstance(recorded.get("significance"), dict) else {}
    p_values = sig.get("p_values") if isinstance(sig.get("p_values"), dict) else {}
    grade = recorded.get("grade") if isinstance(recorded.get("grade"), dict) else {}
    values: dict[str, Any] = {
        "accuracy": _number(wf.get("accuracy")), "ci_low": _number(wf.get("ci_low")),
        "ci_high": _number(wf.get("ci_high")), "always_up": _number(wf.get("always_up")),
        "p_dm": _number(p_values.get("dm_vs_naive")),
        "p_direction": _number(p_values.get("direction")),
        "grade": grade.get("shown") if isinstance(grade.get("shown"), str) else None,
        "n_test": int(wf["n"]) if isinstance(wf.get("n"), int) else
        (int(sig["n"]) if isinstance(sig.get("n"), int) else None),
    }
    where = {"accuracy": "walk_forward", "ci_low": "walk_forward", "ci_high": "walk_forward",
             "always_up": "walk_forward", "n_test": "walk_forward",
             "p_dm": "significance", "p_direction": "significance", "grade": "grade"}
    missing = {name: f"no {where[name]} record for this version ({source}); run "
                     "`causalcast evaluate` and attach it (evaluation.promotion_metrics)"
               for name in EVIDENCE_FIELDS if values[name] is None}
    gates = registry.check_gates(version.version_id, list(NAIVE_GATES))
    beats_naive = all(g.passed for g in gates)
    warnings: list[str] = []
    override = override_of(registry, version)
    if override is not None:
        beats_naive = False
        warnings.append(f"{version.ref}: {override}; the evidence does not support serving it "
                        "as better than the naive forecast")
    elif not beats_naive:   # possible when evidence attached after promotion contradicts it
        warnings.append(f"{version.ref}: " + "; ".join(f"{g.gate}: {g.detail}"
                                                       for g in gates if not g.passed))
    evidence = {**values, "beats_naive": beats_naive, "manual_override": override is not None,
                "naive_gates": [g.to_dict() for g in gates],
                "split": sig.get("split"), "horizon": sig.get("horizon"),
                "alpha": _number(sig.get("alpha")), "source": source,
                "evaluated_at": evaluated_at, "missing": missing}
    return evidence, tuple(warnings)
