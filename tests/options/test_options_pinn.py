"""The shipped networks: verified loading, acceptance figures on a smaller sample, the batched
pricer API, domain handling, probabilities and reproducible training."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.options.accuracy import american_accuracy, european_accuracy
from causalcast.options.american import premium_bound
from causalcast.options.black_scholes import bsm_greeks, bsm_price
from causalcast.options.inputs import OptionInputError, OutOfDomainError
from causalcast.options.pricer import WEIGHTS_DIR, load_models, price_options
from causalcast.options.probability import (
    LognormalForecast,
    SampleForecast,
    compare_probabilities,
    pinn_prob_above,
    risk_neutral_prob_above,
)
from causalcast.options.training import TrainConfig, train_european
from causalcast.weights import WeightsError


@pytest.fixture(scope="module")
def models():
    return load_models()


def test_shipped_weights_are_verified_and_cached(models) -> None:
    assert load_models() is models  # one load per process
    assert set(models.sha256) == {"european", "american"}
    for name in ("european", "american"):
        assert (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size < 200_000
        assert models.meta[name]["train_seconds"] > 0


def test_corrupt_weights_are_refused(tmp_path) -> None:
    for f in WEIGHTS_DIR.glob("*.safetensors"):
        shutil.copy(f, tmp_path / f.name)
    for f in WEIGHTS_DIR.glob("*.json"):
        shutil.copy(f, tmp_path / f.name)
    data = bytearray((tmp_path / "european.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "european.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_models(tmp_path)


def test_european_acceptance_on_a_sample(models) -> None:
    """Acceptance figures (issue 5) on 20k fixed random points; the benchmark runs 100k."""
    acc = european_accuracy(models, n=20_000, seed=99)
    assert acc["price_max_abs_over_K"] <= 2e-3
    assert acc["price_mean_abs_over_K"] <= 2e-4
    assert acc["parity_max_abs_over_K"] <= 2e-3
    assert acc["delta_max_abs"] <= 0.01
    assert acc["gamma_max_rel"] <= 0.05
    assert acc["gamma_points"] > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["put", "call"])
def test_american_against_quantlib(models, kind) -> None:
    pytest.importorskip("QuantLib")
    acc = american_accuracy(models, "small", kind, steps=2000)
    assert acc["n_points"] == 108
    assert acc["max_abs_over_K"] <= 5e-3, acc


def test_american_respects_no_arbitrage_bounds(models) -> None:
    rng = np.random.default_rng(5)
    n = 5000
    s, tau = rng.uniform(50, 200, n), rng.uniform(1 / 365, 2, n)
    sig, r, q = rng.uniform(0.05, 1, n), rng.uniform(0, 0.1, n), rng.uniform(0, 0.05, n)
    for kind in ("put", "call"):
        am = price_options(s, 100.0, tau, sig, r, q, kind, "american", greeks=False)["price"]
        eu = bsm_price(s, 100.0, tau, sig, r, q, kind)
        payoff = np.maximum(s - 100, 0) if kind == "call" else np.maximum(100 - s, 0)
        assert (am >= payoff - 1e-9).all()
        assert (am >= eu - 2e-3 * 100).all()
        bound = premium_bound(s, 100.0, tau, r, q, kind)
        assert (am - eu <= bound + 2e-3 * 100).all()
    # deep in the exercise region the put is worth its payoff and its delta is -1
    deep = price_options(60.0, 100.0, 0.5, 0.1, 0.08, 0.0, "put", "american")
    assert float(deep["price"]) == pytest.approx(40.0, abs=1e-9)
    assert float(deep["delta"]) == pytest.approx(-1.0, abs=1e-9)
    # no early exercise for calls without dividends: American = European (the exact closed
    # form, which is the American path's European part)
    am = price_options(s, 100.0, tau, sig, r, 0.0, "call", "american", greeks=False)["price"]
    eu = bsm_price(s, 100.0, tau, sig, r, 0.0, "call")
    np.testing.assert_allclose(am, eu, atol=1e-9)


def test_both_kinds_come_from_one_forward_pass(models, monkeypatch) -> None:
    from causalcast.options.pricer import LoadedModels

    # Its own jet, never tabulated: the shared one may have been tabulated by an earlier test
    # (serving warms the table at start-up), and then no network pass is made at all.
    models = LoadedModels(models.european, models.american, {}, {})
    calls = []
    jet = models.european_jet
    forward = jet.correction
    monkeypatch.setattr(jet, "correction", lambda *a, **k: calls.append(1) or forward(*a, **k))
    res = price_options([90.0, 100.0, 110.0], 100.0, 0.5, 0.2, 0.03, 0.01, "both",
                        models=models)
    assert len(calls) == 1
    assert res["price"].shape == (2, 3)
    ref_c = bsm_greeks([90.0, 100.0, 110.0], 100.0, 0.5, 0.2, 0.03, 0.01, "call")
    ref_p = bsm_greeks([90.0, 100.0, 110.0], 100.0, 0.5, 0.2, 0.03, 0.01, "put")
    for key in ("price", "delta", "gamma", "vega", "theta", "rho"):
        scale = {"price": 0.2, "delta": 0.01, "gamma": 5e-4, "vega": 1.0, "theta": 0.5,
                 "rho": 1.0}[key]
        np.testing.assert_allclose(res[key][0], ref_c[key], atol=scale)
        np.testing.assert_allclose(res[key][1], ref_p[key], atol=scale)


@pytest.mark.parametrize("greeks", [True, False])
@pytest.mark.parametrize("style", ["european", "american"])
@pytest.mark.parametrize("tabulated", [False, True])
def test_served_greeks_equal_autograd(models, style, greeks, tabulated) -> None:
    """The served Greeks (European: forward-mode jets of the network, or its interpolation
    table, with a hand-derived chain rule; American: those plus the premium's forward-mode
    jets) equal autograd through the torch networks end to end at 4000 points across the whole
    domain, per kind and for both kinds at once."""
    from causalcast.options.inputs import as_inputs
    from causalcast.options.pricer import LoadedModels, pinn_greeks, pinn_greeks_autograd
    from causalcast.options.sampling import uniform_box

    models = LoadedModels(models.european, models.american, {}, {})   # its own jet and table
    if tabulated:
        models.european_jet.tabulate()

    rng = np.random.default_rng(11)
    pts = uniform_box(4000, rng)
    strike = rng.uniform(1.0, 1e3, 4000)
    x = as_inputs(pts["m"] * strike, strike, pts["tau"], pts["sigma"], pts["rate"], pts["div"])
    for is_call in (rng.random(4000) < 0.5, None):
        jet = pinn_greeks(models, x, is_call, style, greeks)
        ref = pinn_greeks_autograd(models, x, is_call, style, greeks)
        assert set(jet) == set(ref) == ({"price", "delta", "gamma", "vega", "theta", "rho"}
                                        if greeks else {"price"})
        for key in ref:
            assert jet[key].shape == ref[key].shape
            # float32 network: agreement to float32 rounding, relative to each Greek's scale.
            scale = np.abs(ref[key]).max()
            np.testing.assert_allclose(jet[key], ref[key], rtol=1e-4, atol=1e-5 * scale,
                                       err_msg=key)


def test_domain_refused_or_flagged_and_bad_inputs_named(models) -> None:
    with pytest.raises(OutOfDomainError, match="sigma"):
        price_options(100.0, 100.0, 1.0, 1.5, models=models)
    res = price_options([100.0, 100.0], 100.0, [1.0, 5.0], 0.2, on_out_of_domain="flag",
                        models=models)
    assert res["in_domain"].tolist() == [True, False]
    assert np.isfinite(res["price"][0]) and np.isnan(res["price"][1])
    closed = price_options(100.0, 100.0, 5.0, 0.2, method="closed")  # no domain for closed
    assert closed["price"] > 0
    with pytest.raises(OptionInputError, match="tau: must be > 0"):
        price_options(100.0, 100.0, 0.0, 0.2, models=models)
    with pytest.raises(OptionInputError, match="spot: must be a finite number"):
        price_options(float("nan"), 100.0, 1.0, 0.2, models=models)
    with pytest.raises(OptionInputError, match="method"):
        price_options(100.0, 100.0, 1.0, 0.2, style="american", method="closed")


def test_probabilities_and_forecast_hook() -> None:
    strikes = np.array([80.0, 100.0, 120.0])
    rn = risk_neutral_prob_above(100.0, strikes, 0.5, 0.25, 0.04, 0.01)
    np.testing.assert_allclose(pinn_prob_above(100.0, strikes, 0.5, 0.25, 0.04, 0.01), rn,
                               atol=0.01)
    # a forecast whose drift is the risk-neutral one agrees with N(d2)
    same = LognormalForecast(spot=100.0, mu=0.03, sigma=0.25)
    out = compare_probabilities(100.0, strikes, 0.5, 0.25, 0.04, 0.01, forecast=same)
    np.testing.assert_allclose(out["forecast_minus_risk_neutral"], 0.0, atol=1e-12)
    bullish = LognormalForecast(spot=100.0, mu=0.3, sigma=0.25)
    out = compare_probabilities(100.0, strikes, 0.5, 0.25, 0.04, 0.01, forecast=bullish)
    assert (out["forecast_minus_risk_neutral"] > 0).all()
    rng = np.random.default_rng(0)
    z = rng.standard_normal(200_000)
    samples = 100 * np.exp((0.03 - 0.5 * 0.25**2) * 0.5 + 0.25 * np.sqrt(0.5) * z)
    emp = SampleForecast(samples, 0.5).prob_above(strikes, np.full(3, 0.5))
    np.testing.assert_allclose(emp, rn, atol=0.005)


def test_training_is_reproducible() -> None:
    cfg = TrainConfig(seed=3, width=8, depth=2, pretrain_steps=4, adam_steps=3, batch=64,
                      physics_batch=32, lbfgs_iters=2, lbfgs_points=64)
    a, meta_a = train_european(cfg, log=lambda s: None)
    b, _ = train_european(cfg, log=lambda s: None)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert {"data", "pde", "parity", "terminal", "boundary"} <= set(meta_a["history"][-1])


@settings(max_examples=100, deadline=None)
@given(st.floats(0.5, 2.0), st.floats(7 / 365, 2.0), st.floats(0.05, 1.0), st.floats(0.0, 0.1),
       st.floats(0.0, 0.05), st.floats(1.0, 1e4))
def test_pinn_matches_closed_form_anywhere_in_the_domain(m, tau, sig, r, q, strike) -> None:
    """Property: any in-domain point at any strike scale (prices are homogeneous in K)."""
    res = price_options(m * strike, strike, tau, sig, r, q, "both", greeks=True)
    for i, kind in enumerate(("call", "put")):
        ref = bsm_greeks(m * strike, strike, tau, sig, r, q, kind)
        assert abs(float(res["price"][i]) - float(ref["price"])) <= 2e-3 * strike
        assert abs(float(res["delta"][i]) - float(ref["delta"])) <= 0.01
    am = price_options(m * strike, strike, tau, sig, r, q, "both", "american", greeks=False)
    assert (am["price"] >= res["price"] - 2e-3 * strike).all()
