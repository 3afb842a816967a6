"""Significance tests against reference values and in simulation.

References used:
* DM: the expected values in the test suite of the independent pure-Python package
  `dieboldmariano` (github.com/edoannunziata/dieboldmariano, tests/dieboldmarianotest.py),
  which implements R ``forecast::dm.test`` (rectangular long-run variance, HLN correction,
  t(n-1)); statsmodels OLS of the loss differential on a constant with HAC standard errors
  (both kernels); scipy's one-sample t-test (exactly HLN-DM for h = 1).
* PT: the literal formulas of PT (1992) eq. (6)-(8) written out here, and the identity
  ``S^2 (n-1)/n = Pearson chi-square of the 2x2 direction table`` checked against scipy.
* Size: under the null, 5 % tests reject about 5 % of many independent series.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from causalcast.evaluation._validate import EvaluationInputError
from causalcast.evaluation.significance import (
    binomial_test,
    diebold_mariano,
    long_run_variance,
    pairwise_diebold_mariano,
    pesaran_timmermann,
    rejection_rate,
)

# --------------------------------------------------------------------------- DM references


def test_dm_matches_published_value_squared_loss_h1():
    # dieboldmariano test_diebold_mariano_1: actual 0, forecasts P1 and P2, squared loss
    actual = np.zeros(6)
    p1 = np.arange(6.0)
    p2 = np.array([0.0, 2, 3, 3, 5, 6])
    r = diebold_mariano((actual - p1) ** 2, (actual - p2) ** 2, h=1)
    assert r.statistic == pytest.approx(-2.4905, abs=5e-5)
    assert r.p_value == pytest.approx(0.05513, abs=5e-6)


P1 = [0.3675225224615024, 0.5450608127223211, 0.22044990720021074, 0.8688743471040006,
      0.6072512228948467, 0.8582283746501538, 0.41662295816718187, 0.3812100211114714,
      0.7185133356116706, 0.30827323290318875, 0.4297093624074402, 0.8615974488577858,
      0.7240514514808826, 0.3450839595261038, 0.19675301374013598]
P2 = [0.12794132529988733, 0.3679643204341153, 0.768715420996091, 0.09972248964114683,
      0.27197653636654284, 0.28797629010039505, 0.9160213458582482, 0.6112628048698798,
      0.5452873235576241, 0.06785907231746158, 0.6072666485541124, 0.6241575753989782,
      0.39998026828867217, 0.19895665605941748, 0.8094941215215619]


def test_dm_matches_published_value_absolute_loss_h3_one_sided():
    # dieboldmariano test_diebold_mariano_2: actual 0, absolute loss, h=3, one-sided ("less":
    # forecast 1 more accurate), stat 1.2109, p 0.877
    r = diebold_mariano(np.abs(P1), np.abs(P2), h=3)
    assert r.statistic == pytest.approx(1.2109, abs=5e-5)
    assert r.p_a_better == pytest.approx(0.877, abs=5e-4)
    assert r.p_a_better + r.p_b_better == pytest.approx(1.0)
    assert not r.fallback


def _serially_dependent(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n + 8)
    return 0.2 + e[8:] + 0.6 * e[7:-1] + 0.3 * e[6:-2] + 0.1 * np.cumsum(e)[8:] / 10


@pytest.mark.parametrize("h", [1, 2, 3, 6, 12])
@pytest.mark.parametrize("kernel", ["uniform", "bartlett"])
def test_dm_equals_statsmodels_hac_t_value(h, kernel):
    d = _serially_dependent(400, seed=h)
    ols = sm.OLS(d, np.ones_like(d)).fit(
        cov_type="HAC", cov_kwds={"maxlags": h - 1, "kernel": kernel, "use_correction": False})
    raw = diebold_mariano(d, np.zeros_like(d), h, kernel=kernel, hln=False)
    assert not raw.fallback
    assert raw.statistic == pytest.approx(float(ols.tvalues[0]), rel=1e-10)
    assert raw.p_value == pytest.approx(2 * stats.norm.sf(abs(ols.tvalues[0])), rel=1e-9)
    n = len(d)
    k = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    adj = diebold_mariano(d, np.zeros_like(d), h, kernel=kernel)
    assert adj.statistic == pytest.approx(float(ols.tvalues[0]) * k, rel=1e-10)
    assert adj.p_value == pytest.approx(2 * stats.t.sf(abs(ols.tvalues[0] * k), n - 1),
                                        rel=1e-9)
    assert adj.distribution == f"t({n - 1})"


def test_hln_dm_at_h1_is_the_one_sample_t_test():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 1, 80) ** 2, rng.normal(0.9, 1, 80) ** 2
    t = stats.ttest_1samp(a - b, 0.0)
    r = diebold_mariano(a, b)
    assert r.statistic == pytest.approx(t.statistic, rel=1e-12)
    assert r.p_value == pytest.approx(t.pvalue, rel=1e-10)


def test_dm_is_vectorised_over_columns():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((120, 5)) ** 2, rng.standard_normal((120, 5)) ** 2
    r = diebold_mariano(a, b, h=4)
    for j in range(5):
        rj = diebold_mariano(a[:, j], b[:, j], h=4)
        assert r.statistic[j] == pytest.approx(rj.statistic, rel=1e-12)
        assert r.p_value[j] == pytest.approx(rj.p_value, rel=1e-12)


def test_dm_falls_back_to_bartlett_when_the_rectangular_variance_is_not_positive():
    # strongly negatively autocorrelated differential: rectangular long-run variance < 0
    d = np.tile([1.0, -1.0], 20) + np.linspace(0, 0.01, 40)
    assert long_run_variance(d, 1, "uniform")[0] <= 0
    r = diebold_mariano(d, np.zeros_like(d), h=2)
    assert r.fallback
    raw = diebold_mariano(d, np.zeros_like(d), h=2, kernel="bartlett", hln=False)
    assert r.statistic == pytest.approx(raw.statistic * math.sqrt((41 - 4 + 2 / 40) / 40))


def test_dm_degenerate_differentials():
    x = np.linspace(0, 1, 30)
    same = diebold_mariano(x, x)
    assert (same.statistic, same.p_value) == (0.0, 1.0)
    shifted = diebold_mariano(x, x + 1.0)
    assert shifted.statistic == -math.inf and shifted.p_a_better == 0.0


def test_dm_detects_a_better_model_and_pairwise_orders_pairs():
    rng = np.random.default_rng(7)
    y = rng.standard_normal(500)
    good = y + 0.5 * rng.standard_normal(500)
    naive = np.zeros(500)
    losses = {"good": (y - good) ** 2, "naive": (y - naive) ** 2,
              "noise": (y - rng.standard_normal(500)) ** 2}
    res = pairwise_diebold_mariano(losses, h=1)
    assert list(res) == [("good", "naive"), ("good", "noise"), ("naive", "noise")]
    assert res[("good", "naive")].p_a_better < 1e-6
    assert res[("good", "naive")].statistic < 0
    assert res[("naive", "noise")].p_b_better > 0.99
    assert isinstance(res[("good", "naive")].to_dict()["p_value"], float)


# --------------------------------------------------------------------------- DM size


def _ma_differential(n: int, h: int, k: int, seed: int) -> np.ndarray:
    """k independent series of an MA(h-1) loss differential with mean zero (the null)."""
    e = np.random.default_rng(seed).standard_normal((n + h - 1, k))
    return np.lib.stride_tricks.sliding_window_view(e, h, axis=0).sum(axis=-1)[:n]


def test_dm_size_iid_losses_is_nominal():
    rng = np.random.default_rng(8)
    n, k = 250, 4000
    loss_a = rng.standard_normal((n, k)) ** 2
    loss_b = rng.standard_normal((n, k)) ** 2
    r = diebold_mariano(loss_a, loss_b, h=1)
    assert 0.035 < rejection_rate(r.p_value) < 0.065
    assert 0.035 < rejection_rate(r.p_a_better) < 0.065
    assert 0.035 < rejection_rate(r.p_b_better) < 0.065


@pytest.mark.parametrize(("n", "h"), [(250, 2), (500, 5)])
def test_dm_size_for_multi_step_horizons_and_why_the_default_kernel(n, h):
    d = _ma_differential(n, h, 4000, seed=h)
    zero = np.zeros_like(d)
    uniform = rejection_rate(diebold_mariano(d, zero, h).p_value)
    bartlett = rejection_rate(diebold_mariano(d, zero, h, kernel="bartlett").p_value)
    assert 0.03 < uniform < 0.075
    assert bartlett > 0.08          # Newey-West weights understate an MA(h-1) variance


# --------------------------------------------------------------------------- PT


def _pt_literal(y: np.ndarray, x: np.ndarray) -> float:
    """PT (1992) eq. (6)-(8) exactly as printed."""
    n = len(y)
    yu, xu = y > 0, x > 0
    p = np.mean(yu == xu)
    py, px = yu.mean(), xu.mean()
    p_star = py * px + (1 - py) * (1 - px)
    v_p = p_star * (1 - p_star) / n
    v_ps = ((2 * py - 1) ** 2 * px * (1 - px) / n + (2 * px - 1) ** 2 * py * (1 - py) / n
            + 4 * py * px * (1 - py) * (1 - px) / n**2)
    return (p - p_star) / math.sqrt(v_p - v_ps)


@pytest.mark.parametrize(("n", "up_y", "up_x", "agree"), [
    (12, 0.5, 0.5, 0.6), (50, 0.55, 0.7, 0.5), (400, 0.9, 0.2, 0.55), (2000, 0.52, 0.5, 0.51)])
def test_pt_matches_the_papers_formula_and_the_chi_square_identity(n, up_y, up_x, agree):
    rng = np.random.default_rng(n)
    y = np.where(rng.uniform(size=n) < up_y, 1.0, -1.0) * rng.uniform(0.1, 1, n)
    x = np.where(rng.uniform(size=n) < agree, y, np.where(rng.uniform(size=n) < up_x, 1, -1))
    r = pesaran_timmermann(y, x)
    assert r.statistic == pytest.approx(_pt_literal(y, x), rel=1e-9)
    table = np.array([[np.sum((y > 0) & (x > 0)), np.sum((y > 0) & (x <= 0))],
                      [np.sum((y <= 0) & (x > 0)), np.sum((y <= 0) & (x <= 0))]])
    chi2 = stats.chi2_contingency(table, correction=False).statistic
    assert r.statistic**2 * (n - 1) / n == pytest.approx(chi2, rel=1e-9)
    assert r.p_value == pytest.approx(stats.norm.sf(r.statistic))


def test_pt_hand_example():
    # 10 bars: realised up 6, predicted up 5, 4 up-up, 3 down-down -> P = 0.7
    y = np.array([1, 1, 1, 1, 1, 1, -1, -1, -1, -1.0])
    x = np.array([1, 1, 1, 1, -1, -1, 1, -1, -1, -1.0])
    r = pesaran_timmermann(y, x)
    assert r.hit_rate == pytest.approx(0.7)
    assert r.expected_hit_rate == pytest.approx(0.6 * 0.5 + 0.4 * 0.5)
    # den = 4 * .5*.5 * .6*.4 * 9/100 = 0.0216
    assert r.statistic == pytest.approx(0.2 / math.sqrt(0.0216))


def test_pt_size_accounts_for_unbalanced_frequencies_where_binomial_does_not():
    rng = np.random.default_rng(9)
    n, k = 500, 4000
    y = np.where(rng.uniform(size=(n, k)) < 0.55, 1.0, -1.0)      # market up 55 %
    x = np.where(rng.uniform(size=(n, k)) < 0.70, 1.0, -1.0)      # says "up" 70 %, no skill
    pt = pesaran_timmermann(y, x)
    assert 0.035 < rejection_rate(pt.p_value) < 0.065
    hits = ((y > 0) == (x > 0)).sum(axis=0)
    binom_p = [binomial_test(int(h), n, 0.5).p_value for h in hits[:1000]]
    assert rejection_rate(binom_p) > 0.15      # vs 0.5, chance accuracy 0.52 looks like skill


def test_pt_has_power_and_uses_non_overlapping_observations_for_h():
    rng = np.random.default_rng(10)
    y = rng.standard_normal(600)
    x = np.where(rng.uniform(size=600) < 0.6, y, -y)
    assert pesaran_timmermann(y, x).p_value < 1e-4
    r3 = pesaran_timmermann(y, x, h=3)
    assert r3.n == 200
    assert r3.statistic == pytest.approx(pesaran_timmermann(y[::3], x[::3]).statistic)


def test_pt_constant_forecast_cannot_reject():
    r = pesaran_timmermann([0.1, -0.2, 0.3, -0.1], [1.0, 1.0, 1.0, 1.0])
    assert math.isnan(r.statistic) and r.p_value == 1.0
    assert r.to_dict()["statistic"] is None


# --------------------------------------------------------------------------- binomial


def test_binomial_test_reference_values():
    r = binomial_test(60, 100, 0.5)
    assert r.p_value == pytest.approx(stats.binom.sf(59, 100, 0.5))
    assert binomial_test(5, 10, 0.5, alternative="two-sided").p_value == pytest.approx(1.0)
    assert r.ci_low < 0.6 < r.ci_high


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("call", "match"), [
    (lambda: diebold_mariano([1, 2, 3.0], [1, 2, 3.0], h=0), "h: must be an integer >= 1"),
    (lambda: diebold_mariano([1, 2, 3.0], [1, 2, 3.0], h=1.5), "h: must be an integer"),
    (lambda: diebold_mariano([1, 2, 3.0], [1, 2.0]), "length mismatch: loss_a=3, loss_b=2"),
    (lambda: diebold_mariano([1, np.nan, 3.0], [1, 2, 3.0]), "loss_a: contains 1 NaN"),
    (lambda: diebold_mariano([1, 2.0], [1, 2.0], h=2), "n > 2h - 1"),
    (lambda: diebold_mariano([1, 2, 3.0], [1, 2, 3.0], lag=3), "lag"),
    (lambda: diebold_mariano([1, 2, 3.0], [1, 2, 3.0], h=2, kernel="parzen"), "kernel"),
    (lambda: diebold_mariano(np.ones((3, 2)), np.ones((3, 3))), "shapes differ"),
    (lambda: pesaran_timmermann([1, 2.0], [1.0, 2, 3]), "length mismatch"),
    (lambda: pesaran_timmermann([1, 2.0, 3], [1.0, 2, 3], h=3), "leaves 1"),
    (lambda: binomial_test(11, 10), "successes/n"),
    (lambda: binomial_test(5, 10, p0=1.0), "p0"),
    (lambda: binomial_test(5, 10, alternative="bigger"), "alternative"),
])
def test_bad_inputs_fail_with_the_argument_named(call, match):
    with pytest.raises(EvaluationInputError, match=match):
        call()
