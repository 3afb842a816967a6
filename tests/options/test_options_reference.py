"""Closed form, implied volatility, input checks and the FD solver against QuantLib."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.options.black_scholes import (
    bsm_greeks,
    bsm_price,
    implied_volatility,
    parity_residual,
)
from causalcast.options.fd import FDGrid, fd_price, solve_put_surface
from causalcast.options.inputs import (
    OptionInputError,
    OutOfDomainError,
    as_inputs,
    check_domain,
    in_domain,
    parse_kind,
)

ql = pytest.importorskip("QuantLib")
from causalcast.options.quantlib_ref import quantlib_price, quantlib_tau  # noqa: E402

finite = dict(allow_nan=False, allow_infinity=False)
spot_s = st.floats(20.0, 300.0, **finite)
tau_s = st.floats(0.02, 3.0, **finite)
sigma_s = st.floats(0.05, 1.2, **finite)
rate_s = st.floats(-0.01, 0.12, **finite)
div_s = st.floats(0.0, 0.08, **finite)


def test_closed_form_matches_quantlib_analytic() -> None:
    rng = np.random.default_rng(1)
    n = 200
    s, tau = rng.uniform(50, 200, n), quantlib_tau(rng.uniform(0.02, 2, n))
    sig, r, q = rng.uniform(0.05, 1, n), rng.uniform(0, 0.1, n), rng.uniform(0, 0.05, n)
    kind = np.where(rng.random(n) < 0.5, "call", "put")
    ours = bsm_price(s, 100.0, tau, sig, r, q, kind)
    theirs = quantlib_price(s, 100.0, tau, sig, r, q, kind, "european", "analytic")
    assert np.max(np.abs(ours - theirs)) < 1e-9


@settings(max_examples=60, deadline=None)
@given(spot_s, tau_s, sigma_s, rate_s, div_s, st.sampled_from(["call", "put"]))
def test_greeks_are_derivatives_of_the_price(s, tau, sig, r, q, kind) -> None:
    g = bsm_greeks(s, 100.0, tau, sig, r, q, kind)

    def p(**kw):
        args = {"spot": s, "strike": 100.0, "tau": tau, "sigma": sig, "rate": r, "div": q}
        args.update(kw)
        return float(bsm_price(kind=kind, **args))

    v = sig * np.sqrt(tau)
    hs, tol = 1e-3 * v * s, 1e-6 * s  # bumps scaled to where the price changes
    assert g["delta"] == pytest.approx((p(spot=s + hs) - p(spot=s - hs)) / (2 * hs), abs=1e-6)
    gamma_fd = (p(spot=s + hs) - 2 * p() + p(spot=s - hs)) / hs**2
    assert g["gamma"] == pytest.approx(gamma_fd, rel=1e-3, abs=1e-6 / s + 1e-13 * s / hs**2)
    h = 1e-5 * sig
    assert g["vega"] == pytest.approx((p(sigma=sig + h) - p(sigma=sig - h)) / (2 * h), rel=1e-5,
                                      abs=tol)
    assert g["rho"] == pytest.approx((p(rate=r + 1e-5) - p(rate=r - 1e-5)) / 2e-5, rel=1e-5,
                                     abs=tol)
    ht = 1e-5 * tau
    theta_fd = -(p(tau=tau + ht) - p(tau=tau - ht)) / (2 * ht)
    assert g["theta"] == pytest.approx(theta_fd, rel=1e-4, abs=tol)


@settings(max_examples=80, deadline=None)
@given(spot_s, tau_s, sigma_s, rate_s, div_s)
def test_put_call_parity_and_bounds(s, tau, sig, r, q) -> None:
    c = bsm_price(s, 100.0, tau, sig, r, q, "call")
    p = bsm_price(s, 100.0, tau, sig, r, q, "put")
    assert abs(float(parity_residual(c, p, s, 100.0, tau, r, q))) < 1e-9 * max(s, 100.0)
    assert c >= max(s * np.exp(-q * tau) - 100 * np.exp(-r * tau), 0) - 1e-9
    assert p <= 100 * np.exp(-r * tau) + 1e-9


@settings(max_examples=80, deadline=None)
@given(spot_s, tau_s, sigma_s, rate_s, div_s, st.sampled_from(["call", "put"]))
def test_implied_volatility_round_trip(s, tau, sig, r, q, kind) -> None:
    price = bsm_price(s, 100.0, tau, sig, r, q, kind)
    vega = bsm_greeks(s, 100.0, tau, sig, r, q, kind)["vega"]
    lower = max((s * np.exp(-q * tau) - 100 * np.exp(-r * tau)) * (1 if kind == "call" else -1),
                0.0)
    if vega < 1e-6 or price - lower < 1e-9 * 100:  # sigma not identifiable from the price
        return
    iv = implied_volatility(price, s, 100.0, tau, r, q, kind)
    assert float(iv) == pytest.approx(sig, rel=1e-6)


def test_implied_volatility_vectorised_and_refuses_arbitrage() -> None:
    sig = np.array([0.1, 0.3, 0.8])
    prices = bsm_price(100.0, [90.0, 100.0, 120.0], 0.5, sig, 0.03, 0.01, "put")
    np.testing.assert_allclose(implied_volatility(prices, 100.0, [90.0, 100.0, 120.0], 0.5, 0.03,
                                                  0.01, "put"), sig, rtol=1e-8)
    with pytest.raises(OptionInputError, match="lower bound"):
        implied_volatility(1.0, 150.0, 100.0, 1.0, 0.0, 0.0, "call")  # below S - K
    with pytest.raises(OptionInputError, match="upper bound"):
        implied_volatility(101.0, 100.0, 100.0, 1.0, 0.0, 0.0, "call")  # above S


@pytest.mark.parametrize("field,value,msg", [
    ("spot", float("nan"), "spot: must be a finite number"),
    ("strike", 0.0, "strike: must be > 0"),
    ("tau", -1.0, "tau: must be > 0"),
    ("sigma", 0.0, "sigma: must be > 0"),
    ("rate", float("inf"), "rate: must be a finite number"),
    ("div", "abc", "div: not a number"),
])
def test_bad_inputs_name_the_field(field, value, msg) -> None:
    args = {"spot": 100.0, "strike": 100.0, "tau": 1.0, "sigma": 0.2, "rate": 0.01, "div": 0.0}
    args[field] = value
    with pytest.raises(OptionInputError, match=msg):
        bsm_price(**args)


def test_bad_position_is_reported_and_kind_is_checked() -> None:
    with pytest.raises(OptionInputError,
                       match=r"sigma: must be > 0, got -0.1 \(first at index 2\)"):
        as_inputs(100.0, 100.0, 1.0, [0.2, 0.3, -0.1])
    with pytest.raises(OptionInputError, match="kind: expected 'call' or 'put'"):
        parse_kind(["call", "straddle"], (2,))
    assert parse_kind(["C", " put "], (2,)).tolist() == [True, False]


def test_domain_flags_and_refuses() -> None:
    x = as_inputs([100.0, 100.0, 300.0], 100.0, [1 / 365, 0.5, 0.5], [0.05, 1.0, 0.2],
                  [0.0, 0.1, 0.05], [0.05, 0.0, 0.0])
    assert in_domain(x).tolist() == [True, True, False]
    with pytest.raises(OutOfDomainError, match=r"moneyness \(spot/strike\).*\[0.5, 2\]"):
        check_domain(x)
    with pytest.raises(OutOfDomainError, match="sigma"):
        check_domain(as_inputs(100.0, 100.0, 1.0, 1.5))


def test_fd_american_put_and_call_match_quantlib() -> None:
    """Our FD reference (used to train the American network) against QuantLib CRR(2000)."""
    rng = np.random.default_rng(3)
    n = 16
    m = rng.uniform(0.5, 2.0, n)
    tau = quantlib_tau(0.75)
    sig, r, q = rng.uniform(0.05, 1.0, n), rng.uniform(0, 0.1, n), rng.uniform(0, 0.05, n)
    is_call = np.arange(n) % 2 == 0
    grid = FDGrid(n_x=601, n_t=200)
    ours = fd_price(m, tau, sig, r, q, is_call, american=True, grid=grid)
    kind = np.where(is_call, "call", "put")
    ref = quantlib_price(m * 100, 100.0, tau, sig, r, q, kind, "american", "crr", 2000) / 100
    assert np.max(np.abs(ours - ref)) < 5e-4
    eu = fd_price(m, tau, sig, r, q, is_call, american=False, grid=grid)
    assert np.max(np.abs(eu - bsm_price(m, 1.0, tau, sig, r, q, kind))) < 3e-4
    assert (ours >= eu - 1e-12).all()


def test_fd_surface_respects_the_exercise_floor() -> None:
    surf = solve_put_surface(np.array([0.3]), np.array([0.08]), np.array([0.0]), tau_max=1.0,
                             grid=FDGrid(n_x=201, n_t=50))
    payoff = np.maximum(1 - np.exp(surf.x), 0)
    assert (surf.american >= payoff[:, None, :] - 1e-12).all()
    assert (surf.american >= surf.european - 1e-12).all()
