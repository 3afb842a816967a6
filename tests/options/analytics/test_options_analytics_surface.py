"""Surface: SVI recovery from a synthetic chain with bid–ask noise, planted butterfly and
calendar arbitrage reported, densities that integrate to 1 and reprice the calls."""

from __future__ import annotations

import numpy as np
import pytest

from causalcast.options.analytics.chain import validate_chain
from causalcast.options.analytics.density import surface_density, svi_density
from causalcast.options.analytics.surface import fit_surface
from causalcast.options.analytics.svi import SVIParams, check_grid, fit_slice
from causalcast.options.analytics.synthetic import DEFAULT_SLICES, synthetic_chain
from causalcast.options.black_scholes import bsm_greeks


@pytest.fixture(scope="module")
def fitted():
    chain = validate_chain(synthetic_chain(rate=0.04, div=0.01, seed=7))
    return chain, fit_surface(chain, rate=0.04)


def test_fit_recovers_total_variance_within_the_noise(fitted) -> None:
    chain, surf = fitted
    assert len(surf.slices) == len(DEFAULT_SLICES)
    for s, true in zip(surf.slices, DEFAULT_SLICES.values(), strict=True):
        quotes = chain.usable[chain.usable["expiry"] == s.expiry]
        k = np.log(quotes["strike"].to_numpy() / s.forward)
        # the noise: half the bid–ask spread, in total variance (price spread / vega · 2σ√τ·√τ)
        vol = np.sqrt(true.w(k) / s.tau)
        vega = bsm_greeks(100, quotes["strike"], s.tau, vol, 0.04, 0.01)["vega"]
        half = 0.5 * (quotes["ask"] - quotes["bid"]).to_numpy()
        noise_w = half / vega * 2 * vol * s.tau
        assert np.all(np.abs(s.fit.params.w(k) - true.w(k)) <= noise_w)
        assert s.fit.butterfly_free and not s.fit.butterfly_in_quotes
        assert s.rmse_vol_points < 0.2
    assert surf.calendar == []
    report = surf.report()
    assert {"rmse_vol_points", "quotes_used", "butterfly_free"} <= set(report["expiries"][0])
    assert all("reason" in e for e in report["excluded"])


def test_interpolated_total_variance_never_decreases_in_maturity(fitted) -> None:
    _, surf = fitted
    k = np.linspace(-0.8, 0.8, 41)
    taus = np.linspace(0.01, 1.5, 60)
    w = np.array([surf.total_variance(k, t) for t in taus])
    assert np.all(np.diff(w, axis=0) >= -1e-15)


@pytest.mark.slow
def test_planted_butterfly_arbitrage_is_reported_and_removed() -> None:
    bad = SVIParams(-0.0410, 0.1331, 0.3060, 0.3586, 0.4153)   # Axel Vogt's example
    k = np.linspace(-1.5, 1.5, 40)
    assert bad.g(check_grid(k)).min() < 0
    fit = fit_slice(k, bad.w(k), np.ones_like(k))
    assert fit.butterfly_in_quotes and fit.butterfly_free


def test_planted_calendar_arbitrage_is_reported() -> None:
    slices = dict(DEFAULT_SLICES)
    slices[182] = SVIParams(0.004, 0.04, -0.45, 0.02, 0.12)   # far less variance than at 91d
    surf = fit_surface(validate_chain(synthetic_chain(slices=slices)), rate=0.04)
    found = surf.calendar
    assert len(found) >= 1
    assert any(c["expiries"][1].startswith(str(surf.slices[2].expiry)[:10]) for c in found)
    assert found[0]["max_total_variance_deficit"] > 0


def test_densities_integrate_to_one_and_reprice_calls_within_bid_ask(fitted) -> None:
    chain, surf = fitted
    for s in surf.slices:
        dens = svi_density(s.fit.params, s.forward, s.tau, 0.04)
        assert dens.pdf.min() >= 0 and dens.mass == pytest.approx(1.0, abs=1e-3)
        calls = chain.usable[(chain.usable["expiry"] == s.expiry)
                             & (chain.usable["type"] == "call")]
        model = dens.call_prices(calls["strike"].to_numpy())
        assert np.all(model >= calls["bid"].to_numpy()) and np.all(model <= calls["ask"])
    between = surface_density(surf, 0.3)
    assert between.mass == pytest.approx(1.0, abs=1e-3)
