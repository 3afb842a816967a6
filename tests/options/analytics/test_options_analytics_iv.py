"""Implied volatility: the European round trip on 100k random points, refusals with reasons,
and the American inversion against QuantLib prices (and its finite-difference fallback)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.options.analytics.american_iv import (
    AMERICAN_MIN_VEGA_SIGMA,
    NETWORK,
    american_iv,
)
from causalcast.options.analytics.iv import REASON_ABOVE, REASON_BELOW, REASON_VEGA, european_iv
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


def test_american_deep_itm_quote_without_time_value_is_refused_with_the_reason() -> None:
    """A put 1.5 standard deviations in the money priced a hair above exercise value (as a
    finite-difference reference prices it at σ = 0.27, inside its exercise region): every σ up
    to the one where the quote leaves that region reproduces it, so it is refused in the
    European solver's words, not answered with a σ; the same strike with real time value is
    answered."""
    from causalcast.options.quantlib_ref import quantlib_price

    spot, strike, tau, rate, div = 100.0, 170.0, 1.5, 0.04, 0.015
    flat = np.array([strike - spot + 1e-6, strike - spot + 1e-8])
    alive = quantlib_price(spot, strike, tau, 0.5, rate, div, "put", "american", "fd", 400)
    res = american_iv(np.append(flat, alive), spot, np.full(3, strike), tau, rate, div, "put")
    want = REASON_VEGA.format(AMERICAN_MIN_VEGA_SIGMA)
    assert list(res.reason[:2]) == [want, want]
    assert np.isnan(res.iv[:2]).all() and np.isnan(res.vega[:2]).all()
    assert (res.method[:2] == "").all()
    assert res.ok[2] and abs(res.iv[2] - 0.5) < 1e-3
    assert res.vega[2] * res.iv[2] > AMERICAN_MIN_VEGA_SIGMA * strike


@pytest.mark.slow
def test_american_fallback_quotes_recover_sigma_to_1e_4_against_quantlib() -> None:
    """Quotes the network cannot answer (maturity, moneyness or σ outside the trained box)
    go to the finite-difference fallback, which recovers σ to 1e-4 from QuantLib's prices."""
    from causalcast.options.quantlib_ref import quantlib_price, quantlib_tau

    tau = quantlib_tau(np.array([3.0, 3.0, 0.5, 1.0, 0.3]))
    strike = np.array([100.0, 90.0, 100.0, 45.0, 100.0])
    sigma = np.array([0.3, 0.25, 1.4, 0.4, 0.03])
    rate, div = np.array([0.03, 0.02, 0.05, 0.04, 0.04]), np.array([0.0, 0.04, 0.0, 0.0, 0.0])
    kind = np.array(["put", "call", "put", "put", "call"])
    price = quantlib_price(100, strike, tau, sigma, rate, div, kind, "american", "fd", 800)
    res = american_iv(price, 100, strike, tau, rate, div, kind)
    assert res.ok.all() and all(m.startswith("fd (") for m in res.method)
    assert np.max(np.abs(res.iv - sigma)) < 1e-4


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(st.floats(2.1, 4.0), st.floats(0.1, 0.8), st.floats(-1.5, 1.5), st.booleans(),
       st.floats(0.0, 0.08), st.floats(0.0, 0.05))
def test_american_fallback_round_trip_property(tau: float, sigma: float, z: float, call: bool,
                                               rate: float, div: float) -> None:
    """Beyond the trained maturities, prices from a converged finite-difference grid are
    either inverted to within the accurate grid's price error over vega (and 1e-4), or refused
    for negligible vega or no time value — never answered wrongly."""
    from causalcast.options.analytics.american_iv import REASON_EXERCISE
    from causalcast.options.fd import FDGrid, fd_price

    strike = 100 * np.exp(z * sigma * np.sqrt(tau))
    price = strike * fd_price(100 / strike, tau, sigma, rate, div, call, True,
                              FDGrid(n_x=2001, n_t=800)).item()
    res = american_iv(price, 100, strike, tau, rate, div, "call" if call else "put")
    if res.ok.item():
        assert res.method.item().startswith("fd (outside the trained domain:")
        # the accurate grid's price error: ~1e-6·K near the money, up to ~1e-5·K far from it
        bound = max(1e-4, 2e-5 * strike / res.vega.item())
        assert abs(res.iv.item() - sigma) < bound
    else:
        assert res.reason.item() in (REASON_VEGA.format(AMERICAN_MIN_VEGA_SIGMA),
                                     REASON_EXERCISE)


def test_the_fallback_solves_split_over_threads_give_the_serial_prices(monkeypatch):
    """The finite-difference fallback prices its quotes on several threads; each PDE solve is
    independent, so the prices are bit-for-bit those of one call on one thread."""
    import causalcast.options.analytics.american_iv as module
    from causalcast.options.fd import fd_price
    from causalcast.options.inputs import as_inputs

    rng = np.random.default_rng(3)
    n = 11
    x = as_inputs(100.0, rng.uniform(70, 140, n), rng.uniform(0.05, 1.5, n), 0.3, 0.04, 0.01)
    calls = rng.random(n) < 0.5
    idx = np.array([0, 3, 3, 7, 10, 1, 2, 5, 9, 4, 6, 8])         # repeats allowed
    sigma = rng.uniform(0.1, 0.6, idx.size)
    serial = x.strike[idx] * fd_price(x.moneyness[idx], x.tau[idx], sigma, x.rate[idx],
                                      x.div[idx], calls[idx], True, module.FD_SEARCH_GRID)
    monkeypatch.setattr(module, "FD_THREADS", 3)
    module._solver_pool.cache_clear()
    try:
        threaded = module._fd_at(x, calls, idx, sigma, module.FD_SEARCH_GRID)
    finally:
        module._solver_pool().shutdown()            # this test's pool of 3, stopped
        module._solver_pool.cache_clear()
    assert threaded.tobytes() == serial.tobytes()
