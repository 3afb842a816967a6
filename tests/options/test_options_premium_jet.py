"""The numpy premium jet (`options.premium_jet`) against the torch network it copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causalcast.options.inputs import OptionInputs
from causalcast.options.pricer import _premium_terms, _tensors, american_premium, load_models


@pytest.fixture(scope="module")
def models():
    return load_models()


def _torch_premium(models, x: OptionInputs, calls: np.ndarray):
    t = _tensors(x, False)
    t[2] = t[2].clone().requires_grad_(True)
    with torch.enable_grad():
        prem = _premium_terms(models, t, torch.from_numpy(calls))[0]
        (d_sigma,) = torch.autograd.grad(prem.sum(), t[2])
    return x.strike * prem.detach().numpy(), x.strike * d_sigma.numpy()


def test_premium_and_its_vega_equal_autograd(models) -> None:
    """Price and ∂/∂σ agree with the torch network and autograd to float32 rounding, for calls
    (through put–call symmetry) and puts across the trained domain."""
    rng = np.random.default_rng(5)
    n = 2000
    strike = 100.0 / np.exp(rng.uniform(-0.6, 0.6, n))
    x = OptionInputs(np.full(n, 100.0), strike, rng.uniform(0.02, 2.0, n),
                     rng.uniform(0.05, 1.0, n), rng.uniform(0.0, 0.1, n), rng.uniform(0.0, 0.05, n))
    calls = rng.random(n) < 0.5
    prem, vega = american_premium(models, x, calls)
    ref_prem, ref_vega = _torch_premium(models, x, calls)
    assert np.max(np.abs(prem - ref_prem) / strike) < 1e-6
    assert np.max(np.abs(vega - ref_vega) / strike) < 1e-5
    assert np.abs(ref_vega).max() > 1e-2 * strike.min()   # the check is not vacuous
    # and the vega is the σ-derivative of the premium (central difference)
    h = 1e-4
    up = american_premium(models, OptionInputs(x.spot, x.strike, x.tau, x.sigma + h, x.rate,
                                               x.div), calls)[0]
    dn = american_premium(models, OptionInputs(x.spot, x.strike, x.tau, x.sigma - h, x.rate,
                                               x.div), calls)[0]
    assert np.max(np.abs((up - dn) / (2 * h) - vega) / strike) < 2e-3


@pytest.mark.parametrize("both", [False, True])
def test_premium_greeks_equal_autograd_in_float64(models, both) -> None:
    """The premium's forward-mode Greeks (served path) equal autograd through the torch
    network (`_premium_terms`) at 4000 random in-domain points, calls and puts, when both run
    the same weights in float64: agreement to ~1e-10, i.e. the jet algebra and the put–call
    symmetry's chain rule are exact, not merely within float32 noise."""
    import copy

    from causalcast.options.inputs import as_inputs
    from causalcast.options.pricer import LoadedModels, _autograd, american_premium_greeks
    from causalcast.options.sampling import uniform_box

    m64 = LoadedModels(copy.deepcopy(models.european).double(),
                       copy.deepcopy(models.american).double(), {}, {})
    assert m64.american_jet.dtype == np.float64
    rng = np.random.default_rng(23)
    n = 4000
    pts = uniform_box(n, rng)
    strike = rng.uniform(1.0, 1e3, n)
    x = as_inputs(pts["m"] * strike, strike, pts["tau"], pts["sigma"], pts["rate"], pts["div"])
    calls = None if both else rng.random(n) < 0.5
    got = american_premium_greeks(m64, x, calls)
    call_t = None if calls is None else torch.from_numpy(calls)
    ref = _autograd(lambda t: _premium_terms(m64, t, call_t), x, True)
    for key, want in ref.items():
        want = want if both else want[0]
        assert got[key].shape == want.shape, key
        scale = np.abs(want).max()
        assert scale > 0, key   # not vacuous
        np.testing.assert_allclose(got[key], want, rtol=1e-10, atol=1e-10 * scale, err_msg=key)
    # and the served float32 weights agree with their autograd to float32 rounding
    got32 = american_premium_greeks(models, x, calls)
    ref32 = _autograd(lambda t: _premium_terms(models, t, call_t), x, True)
    for key, want in ref32.items():
        want = want if both else want[0]
        np.testing.assert_allclose(got32[key], want, rtol=1e-3,
                                   atol=1e-5 * np.abs(want).max(), err_msg=key)
