"""Metrics: reference values from independent computations (numerical integration, textbook
formulas, scipy densities), calibration behaviour on simulated data, and input validation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from causalcast.evaluation import metrics as M
from causalcast.evaluation._validate import EvaluationInputError


def _crps_by_integration(y: float, cdf) -> float:
    """CRPS = integral of (F(x) - 1{x >= y})^2 dx, split at y where the integrand jumps."""
    f = lambda x: (cdf(x) - (x >= y)) ** 2  # noqa: E731
    kw = dict(epsabs=1e-12, epsrel=1e-12, limit=500)
    return integrate.quad(f, -np.inf, y, **kw)[0] + integrate.quad(f, y, np.inf, **kw)[0]


Y = np.array([0.3, -1.2, 2.5, 0.0])
MU = np.array([0.1, 0.0, -0.4, 0.0])
SC = np.array([0.5, 1.3, 2.0, 0.7])


# --------------------------------------------------------------------------- proportions


@pytest.mark.parametrize(("k", "n"), [(8, 10), (0, 5), (5, 5), (530, 1000)])
def test_wilson_interval_matches_the_score_formula(k, n):
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    lo, hi = M.wilson_interval(k, n, 0.05)
    assert lo == pytest.approx(centre - half, abs=1e-12)
    assert hi == pytest.approx(centre + half, abs=1e-12)


def test_wilson_interval_rejects_impossible_counts():
    with pytest.raises(EvaluationInputError, match="successes"):
        M.wilson_interval(6, 5)
    with pytest.raises(EvaluationInputError, match="alpha"):
        M.wilson_interval(1, 5, alpha=1.5)


def test_directional_accuracy_counts_zero_as_down_and_reports_always_up():
    realised = [0.1, -0.2, 0.3, 0.0, 0.5]
    predicted = [1.0, 1.0, -1.0, 0.0, 2.0]   # hits: yes, no, no, yes (0 = down), yes
    da = M.directional_accuracy(realised, predicted)
    assert (da.hits, da.n) == (3, 5)
    assert da.accuracy == pytest.approx(0.6)
    assert da.up_rate == pytest.approx(0.6)      # 0.1, 0.3, 0.5 are up; 0.0 is not
    assert da.predicted_up_rate == pytest.approx(0.6)
    assert da.edge_vs_always_up == pytest.approx(0.0)
    assert da.ci_low < 0.6 < da.ci_high


def test_always_up_forecaster_has_zero_edge():
    rng = np.random.default_rng(0)
    r = rng.normal(0.001, 0.01, 2000)
    da = M.directional_accuracy(r, np.ones_like(r))
    assert da.accuracy == da.up_rate
    assert da.edge_vs_always_up == 0.0
    assert da.majority_rate == max(da.up_rate, 1 - da.up_rate)


# --------------------------------------------------------------------------- price errors


def test_price_errors_match_hand_computation():
    close = np.array([100.0, 50.0])
    f = np.log([1.01, 0.98])      # forecast prices 101, 49
    y = np.log([1.02, 1.00])      # realised prices 102, 50
    pe = M.price_errors(close, f, y)
    assert pe.mae == pytest.approx(1.0)
    assert pe.rmse == pytest.approx(1.0)
    assert pe.mape_pct == pytest.approx(100 * (1 / 102 + 1 / 50) / 2)
    assert M.forecast_price(close, np.zeros(2)).tolist() == [100.0, 50.0]


# --------------------------------------------------------------------------- scores


def test_gaussian_crps_matches_numerical_integration():
    got = M.gaussian_crps(Y, MU, SC)
    want = [_crps_by_integration(y, stats.norm(m, s).cdf) for y, m, s in zip(Y, MU, SC,
                                                                              strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("df", [1.5, 3.0, 10.0])
def test_student_t_crps_matches_numerical_integration(df):
    got = M.student_t_crps(Y, MU, SC, df)
    want = [_crps_by_integration(y, stats.t(df, m, s).cdf) for y, m, s in zip(Y, MU, SC,
                                                                               strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10)


def test_student_t_scores_tend_to_gaussian_for_large_df():
    np.testing.assert_allclose(M.student_t_crps(Y, MU, SC, 1e7), M.gaussian_crps(Y, MU, SC),
                               rtol=1e-6)
    np.testing.assert_allclose(M.student_t_nll(Y, MU, SC, 1e7), M.gaussian_nll(Y, MU, SC),
                               rtol=1e-6)


def test_nll_matches_scipy_densities():
    np.testing.assert_allclose(M.gaussian_nll(Y, MU, SC), -stats.norm.logpdf(Y, MU, SC))
    np.testing.assert_allclose(M.student_t_nll(Y, MU, SC, 4.0),
                               -stats.t.logpdf(Y, 4.0, MU, SC))


@given(y=st.floats(-5, 5), mu=st.floats(-5, 5), s=st.floats(1e-3, 5))
@settings(max_examples=100, deadline=None)
def test_crps_is_nonnegative_and_bounded_by_the_point_error(y, mu, s):
    c = M.gaussian_crps([y], [mu], [s])[0]
    # CRPS >= 0 and CRPS <= E|X - y| <= |y - mu| + s * sqrt(2/pi)
    assert -1e-12 <= c <= abs(y - mu) + s * math.sqrt(2 / math.pi) + 1e-12


def test_crps_of_a_near_point_mass_is_the_absolute_error():
    np.testing.assert_allclose(M.gaussian_crps(Y, MU, np.full(4, 1e-9)), np.abs(Y - MU),
                               atol=1e-8)


def test_coverage_of_a_correct_gaussian_is_nominal():
    rng = np.random.default_rng(1)
    n = 20000
    mu, s = rng.normal(0, 0.01, n), rng.uniform(0.005, 0.02, n)
    y = mu + s * rng.standard_normal(n)
    for c in M.coverage_table(y, mu, s, (0.5, 0.8, 0.9, 0.95)):
        assert c.ci_low - 0.01 < c.nominal < c.ci_high + 0.01
        assert abs(c.observed - c.nominal) < 0.015
    # an overconfident model (scale halved) undercovers at every level
    for c in M.coverage_table(y, mu, s / 2):
        assert c.ci_high < c.nominal


def test_interval_coverage_is_inclusive_and_checks_order():
    assert M.interval_coverage([1.0, 2.0, 3.0], [1.0, 0.0, 3.5], [1.0, 1.0, 4.0]) == 1 / 3
    with pytest.raises(EvaluationInputError, match="lower > upper"):
        M.interval_coverage([1.0], [2.0], [1.0])


def test_prob_up_is_the_distribution_mass_above_zero():
    np.testing.assert_allclose(M.prob_up([0.0, 0.01], [0.01, 0.01]),
                               [0.5, stats.norm.cdf(1.0)])
    np.testing.assert_allclose(M.prob_up([0.01], [0.01], df=3), [stats.t.cdf(1.0, 3)])


# --------------------------------------------------------------------------- P(up) quality


def test_brier_and_log_loss_reference_values():
    assert M.brier_score([0.5, 0.5], [0, 1]) == 0.25
    assert M.brier_score([1.0, 0.0], [1, 0]) == 0.0
    assert M.brier_score([0.8, 0.3], [1, 1]) == pytest.approx((0.04 + 0.49) / 2)
    assert M.binary_log_loss([0.5, 0.5], [0, 1]) == pytest.approx(math.log(2))


def test_reliability_separates_calibrated_from_miscalibrated():
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 40000)
    calibrated = (rng.uniform(size=p.size) < p).astype(float)
    coin = (rng.uniform(size=p.size) < 0.5).astype(float)
    good = M.reliability_table(p, calibrated, 10)
    bad = M.reliability_table(p, coin, 10)
    assert good.ece < 0.02
    assert bad.ece > 0.2            # E|p - 0.5| = 0.25 for uniform p
    assert good.counts.sum() == p.size
    inside = (good.ci_low <= good.mean_predicted) & (good.mean_predicted <= good.ci_high)
    assert inside.mean() >= 0.8
    assert M.expected_calibration_error(p, calibrated) == good.ece


def test_brier_decomposition_is_exact_for_binned_forecasts():
    rng = np.random.default_rng(3)
    p = rng.choice([0.05, 0.25, 0.45, 0.65, 0.85], size=5000)   # one value per 0.2-bin
    o = (rng.uniform(size=p.size) < np.clip(p + 0.1, 0, 1)).astype(float)
    r = M.reliability_table(p, o, 5)
    assert r.brier == pytest.approx(M.brier_score(p, o))
    assert r.brier_reliability - r.brier_resolution + r.brier_uncertainty == pytest.approx(
        r.brier, abs=1e-12)


def test_reliability_bins_edges_and_empty_bins():
    r = M.reliability_table([0.0, 0.1, 1.0, 1.0], [0, 0, 1, 1], 10)
    assert r.counts[0] == 1 and r.counts[1] == 1 and r.counts[-1] == 2   # 1.0 in the last bin
    assert np.isnan(r.observed_rate[5])
    d = r.to_dict()
    assert d["observed_rate"][5] is None
    json.dumps(d)
    q = M.reliability_table(np.linspace(0.01, 0.99, 100), np.arange(100) % 2, 4,
                            strategy="quantile")
    assert q.counts.tolist() == [25, 25, 25, 25]


# --------------------------------------------------------------------------- summary


def test_forecast_metrics_is_json_ready_and_consistent():
    rng = np.random.default_rng(4)
    n = 500
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    mu = rng.normal(0, 0.005, n)
    y = mu + 0.01 * rng.standard_normal(n)
    out = M.forecast_metrics(close, y, mu, scale=np.full(n, 0.01))
    json.dumps(out)
    assert out["direction"]["n"] == n
    assert out["crps"] == pytest.approx(M.gaussian_crps(y, mu, np.full(n, 0.01)).mean())
    assert out["brier"] == pytest.approx(
        M.brier_score(M.prob_up(mu, np.full(n, 0.01)), (y > 0).astype(float)))
    assert [c["nominal"] for c in out["coverage"]] == list(M.DEFAULT_LEVELS)
    point = M.forecast_metrics(close, y, mu)
    assert "crps" not in point and "brier" not in point
    t = M.forecast_metrics(close, y, mu, scale=np.full(n, 0.01), df=5)
    assert t["distribution"] == "student_t(df=5)"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("call", "match"), [
    (lambda: M.directional_accuracy([0.1, 0.2], [0.1]), "length mismatch: realised=2"),
    (lambda: M.directional_accuracy([0.1, np.nan], [0.1, 0.2]), r"realised: contains 1 NaN"),
    (lambda: M.price_errors([100.0, -1.0], [0, 0], [0, 0]), "as_of_close: must be > 0"),
    (lambda: M.gaussian_crps([0.0], [0.0], [0.0]), "scale: must be > 0"),
    (lambda: M.student_t_crps([0.0], [0.0], [1.0], 1.0), "df > 1"),
    (lambda: M.brier_score([1.2], [1]), "p_up: probabilities"),
    (lambda: M.brier_score([0.2], [2]), "outcome: outcomes must be 0 or 1"),
    (lambda: M.reliability_table([0.2], [1], 0), "n_bins"),
    (lambda: M.reliability_table([0.2], [1], strategy="kmeans"), "strategy"),
    (lambda: M.central_interval([0.0], [1.0], 1.0), "level"),
    (lambda: M.directional_accuracy([], []), "at least 1"),
    (lambda: M.directional_accuracy([[0.1]], [[0.1]]), "must be 1-D"),
])
def test_bad_inputs_fail_with_the_argument_named(call, match):
    with pytest.raises(EvaluationInputError, match=match):
        call()
