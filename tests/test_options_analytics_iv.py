"""Implied volatility: the European round trip on 100k random points, refusals with reasons,
and the American inversion against QuantLib prices (and its finite-difference fallback)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.options.analytics.american_iv import NETWORK, american_iv
from causalcast.options.analytics.iv import REASON_ABOVE, REASON_BELOW, european_iv
from causalcast.options.black_scholes import bsm_greeks, bsm_price

EPS = np.finfo(float).eps


def _random_points(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sig = np.exp(rng.uniform(np.log(0.01), np.log(3.0), n))
    tau = np.exp(rng.uniform(np.log(1 / 365), np.log(5.0), n))
    # strikes up to ±4 total standard deviations from the spot: deep ITM and OTM included
    strike = 100.0 * np.exp(rng.uniform(-4, 4, n) * sig * np.sqrt(tau))
    return {"spot": np.full(n, 100.0), "strike": strike, "tau": tau, "sigma": sig,
            "rate": rng.uniform(0, 0.08, n), "div": rng.uniform(0, 0.04, n),
            "kind": np.where(rng.random(n) < 0.5, "call", "put")}


def test_european_round_trip_on_100k_points() -> None:
    p = _random_points(100_000, 0)
    args = (p["spot"], p["strike"], p["tau"], p["sigma"], p["rate"], p["div"], p["kind"])
    price = bsm_price(*args)
    vega = bsm_greeks(*args)["vega"]
    res = european_iv(price, *args[:3], *args[4:])
    rel = np.abs(res.iv / p["sigma"] - 1)
    pinned = vega * p["sigma"] > 1e-8 * p["strike"]
    assert pinned.mean() > 0.9 and res.ok[pinned].all()
    # σ is recovered to 1e-10 relative wherever the float64 price itself pins it that well;
    # elsewhere (deep in the money, where the price is mostly intrinsic value) to within the
    # price's own rounding: 100 ulps of max(price, strike) over vega·σ.
    conditioning = 100 * EPS * np.maximum(price, p["strike"]) / (vega * p["sigma"])
    assert (rel[pinned] <= np.maximum(1e-10, conditioning[pinned])).all()
    assert (conditioning[pinned] <= 1e-10).mean() > 0.6
    # the rest is refused, each with its reason
    assert (res.reason[~res.ok] != "").all() and np.isnan(res.iv[~res.ok]).all()


def test_refusals_state_the_reason() -> None:
    below = european_iv(0.5, 150, 100, 1.0, kind="call")
    above = european_iv(99.0, 100, 100, 1.0, 0.05, kind="put")
    flat = european_iv(float(bsm_price(100, 300, 0.01, 0.05)) + 1e-300, 100, 300, 0.01)
    assert below.reason.item() == REASON_BELOW and above.reason.item() == REASON_ABOVE
    assert "no time value" in flat.reason.item() or "vega negligible" in flat.reason.item()
    assert np.isnan(below.iv) and np.isnan(above.iv) and np.isnan(flat.iv)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.02, 2.5), st.floats(0.02, 4.0), st.floats(-2.0, 2.0), st.booleans())
def test_european_round_trip_property(sigma: float, tau: float, z: float, call: bool) -> None:
    strike = 100 * np.exp(z * sigma * np.sqrt(tau))
    kind = "call" if call else "put"
    price = float(bsm_price(100, strike, tau, sigma, 0.03, 0.01, kind))
    res = european_iv(price, 100, strike, tau, 0.03, 0.01, kind)
    assert res.ok.item()
    assert abs(res.iv.item() / sigma - 1) < 1e-9


@pytest.mark.slow
def test_american_round_trip_against_quantlib_inside_the_trained_domain() -> None:
    from causalcast.options.quantlib_ref import quantlib_price, quantlib_tau

    rng = np.random.default_rng(3)
    n = 12
    tau = quantlib_tau(np.full(n, 0.5))   # one expiry, as in a chain
    moneyness = np.exp(rng.uniform(-0.2, 0.2, n))
    strike = 100 / moneyness
    sigma = rng.uniform(0.15, 0.6, n)
    rate, div = rng.uniform(0.01, 0.08, n), rng.uniform(0.0, 0.04, n)
    kind = np.where(np.arange(n) % 2 == 0, "put", "call")
    price = quantlib_price(100, strike, tau, sigma, rate, div, kind, "american", "fd", 800)
    res = american_iv(price, 100, strike, tau, rate, div, kind, polish=True)
    assert (res.method == NETWORK).mean() >= 0.75 and res.ok.all()
    assert np.max(np.abs(res.iv - sigma)) < 1e-4
    # the finite-difference check agrees with the network's own answer to its accuracy
    assert np.nanmax(np.abs(res.fd_residual)) < 5e-3 * 100


@pytest.mark.slow
def test_american_outside_the_trained_domain_falls_back_to_fd_and_says_so() -> None:
    from causalcast.options.quantlib_ref import quantlib_price

    price = quantlib_price(100, 100, 3.0, 0.3, 0.03, 0.0, "put", "american", "fd", 800)
    res = american_iv(price, 100, 100, 3.0, 0.03, 0.0, "put")
    assert res.method.item().startswith("fd (outside the trained domain: tau")
    assert abs(res.iv.item() - 0.3) < 2e-3
