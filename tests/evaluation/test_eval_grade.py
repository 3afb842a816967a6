"""The rubric and its gate: no grade above F without a passed audit and a rejected baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.audit import AuditReport, Check
from causalcast.evaluation._validate import EvaluationInputError
from causalcast.evaluation.grade import RUBRIC, honest_grade, rubric_grade
from causalcast.evaluation.significance import diebold_mariano, pesaran_timmermann


@pytest.mark.parametrize(("acc", "sharpe", "want"), [
    (0.71, 3.01, "A"),
    (0.70, 3.50, "B"),      # 70 % is not > 70 %
    (0.71, 3.00, "B"),      # Sharpe 3 is not > 3
    (0.66, 2.51, "B"),
    (0.61, 2.01, "C"),
    (0.56, 1.51, "D"),
    (0.55, 9.00, "F"),
    (0.99, 1.50, "F"),
    (0.99, -2.0, "F"),
    (0.80, math.nan, "F"),
    (0.80, math.inf, "A"),
])
def test_rubric_boundaries_are_strict(acc, sharpe, want):
    assert rubric_grade(acc, sharpe) == want


ORDER = {"A": 4, "B": 3, "C": 2, "D": 1, "F": 0}


@given(acc=st.floats(0, 1), sharpe=st.floats(-5, 10), d_acc=st.floats(0, 0.5),
       d_sharpe=st.floats(0, 5))
@settings(max_examples=200, deadline=None)
def test_rubric_is_monotone(acc, sharpe, d_acc, d_sharpe):
    better = rubric_grade(min(acc + d_acc, 1.0), sharpe + d_sharpe)
    assert ORDER[better] >= ORDER[rubric_grade(acc, sharpe)]


def test_rubric_table_is_the_reviewed_one():
    assert RUBRIC == (("A", 0.70, 3.0), ("B", 0.65, 2.5), ("C", 0.60, 2.0), ("D", 0.55, 1.5))


def test_grade_is_shown_only_when_audit_passes_and_every_baseline_test_rejects():
    ok = honest_grade(0.68, 2.7, audit_passed=True,
                      baseline_p_values={"dm_vs_naive": 0.001, "pt": 0.01})
    assert (ok.computed, ok.shown, ok.gate_passed, ok.reasons) == ("B", "B", True, ())

    no_audit = honest_grade(0.68, 2.7, audit_passed=False,
                            baseline_p_values={"dm_vs_naive": 0.001, "pt": 0.01})
    assert (no_audit.computed, no_audit.shown) == ("B", "F")
    assert "leakage audit" in no_audit.reasons[0]

    one_fails = honest_grade(0.68, 2.7, audit_passed=True,
                             baseline_p_values={"dm_vs_naive": 0.001, "pt": 0.05})
    assert one_fails.shown == "F" and not one_fails.baseline_rejected
    assert any("pt: p = 0.05" in r for r in one_fails.reasons)

    none_given = honest_grade(0.68, 2.7, audit_passed=True, baseline_p_values={})
    assert none_given.shown == "F"
    assert "no test" in none_given.reasons[0]

    undefined = honest_grade(0.68, 2.7, audit_passed=True,
                             baseline_p_values={"dm_vs_naive": 0.001, "pt": math.nan})
    assert undefined.shown == "F"
    assert undefined.baseline_p_values["pt"] is None

    stricter = honest_grade(0.68, 2.7, audit_passed=True,
                            baseline_p_values={"dm_vs_naive": 0.02}, alpha=0.01)
    assert stricter.shown == "F"


def test_an_f_stays_f_even_with_a_passed_gate():
    g = honest_grade(0.52, 0.4, audit_passed=True, baseline_p_values={"dm": 1e-6})
    assert (g.computed, g.shown, g.gate_passed) == ("F", "F", True)


def test_gate_reads_a_real_audit_report():
    passed = AuditReport(checks=[Check("prefix", "rsi_14", "X", True)])
    failed = AuditReport(checks=[Check("prefix", "rsi_14", "X", True),
                                 Check("purge", "fold 0", "X", False, "label reaches test")])
    empty = AuditReport()       # an audit that checked nothing has not passed
    p = {"dm_vs_naive": 0.001}
    assert honest_grade(0.72, 3.2, audit_passed=passed, baseline_p_values=p).shown == "A"
    assert honest_grade(0.72, 3.2, audit_passed=failed, baseline_p_values=p).shown == "F"
    assert honest_grade(0.72, 3.2, audit_passed=empty, baseline_p_values=p).shown == "F"


def test_gate_with_real_tests_on_a_random_walk_shows_f():
    """Numbers that would earn an A on the rubric are withheld when the tests, run on a
    forecast with no skill, do not reject the naive baseline."""
    rng = np.random.default_rng(0)
    y = rng.normal(0, 0.01, 500)
    noise = rng.normal(0, 0.01, 500)
    dm = diebold_mariano((y - noise) ** 2, y**2)
    pt = pesaran_timmermann(y, noise)
    g = honest_grade(0.72, 3.2, audit_passed=True,
                     baseline_p_values={"dm_vs_naive": dm.p_a_better, "pt": pt.p_value})
    assert g.computed == "A" and g.shown == "F"
    assert g.to_dict()["shown"] == "F"


@pytest.mark.parametrize(("call", "match"), [
    (lambda: rubric_grade(70, 3.5), "directional_accuracy: must be a fraction"),
    (lambda: rubric_grade(math.nan, 3.5), "directional_accuracy"),
    (lambda: rubric_grade("high", 3.5), "must be numbers"),
    (lambda: honest_grade(0.7, 3, audit_passed="yes", baseline_p_values={}), "audit_passed"),
    (lambda: honest_grade(0.7, 3, audit_passed=True, baseline_p_values={"dm": 1.5}),
     r"baseline_p_values\['dm'\]"),
    (lambda: honest_grade(0.7, 3, audit_passed=True, baseline_p_values=[0.01]),
     "baseline_p_values: must map"),
    (lambda: honest_grade(0.7, 3, audit_passed=True, baseline_p_values={}, alpha=0),
     "alpha"),
])
def test_bad_inputs_fail_with_the_argument_named(call, match):
    with pytest.raises(EvaluationInputError, match=match):
        call()
