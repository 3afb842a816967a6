"""The American early-exercise premium network and its σ-derivative in numpy, without autograd.

Why this exists: American implied volatility (`options.analytics.american_iv`) runs Newton on
the premium and its vega for a whole chain, some thirty passes. Through torch each pass of
2,000 quotes cost ~50 ms on two shared cores (graph bookkeeping and a backward pass for one
derivative); the same MLP as float32 numpy matmuls with a first-order forward-mode tangent in σ
costs a few ms. `pricer._premium_terms` (torch) stays the reference: tests check that both agree
to float32 rounding.

The features (see `pinn.AmericanPremium`) depend on σ only through v = σ√τ:
f₁ = 2v/V_MAX − 1 and f₄ = tanh(ln m / (2v)); the output is −expm1(−rτ)·sigmoid(h), so
∂/∂σ = −expm1(−rτ)·s(1 − s)·∂h/∂σ with ∂h/∂σ carried through the layers as a tangent.

The matmuls run with one BLAS thread: (thousands × 64) @ (64 × 64) gains nothing from threads,
and on shared cores OpenBLAS's spinning threads made a chain's Newton ~5x slower (measured 0.47 s
against 0.09 s for 1,953 quotes at load 9 on two cores).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import ThreadpoolController

from causalcast.options.jets import _activation_jets, _Layer

if TYPE_CHECKING:
    from causalcast.options.pinn import AmericanPremium


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


class PremiumJet:
    """A frozen copy of a trained `AmericanPremium`: put premium per unit strike and ∂/∂σ."""

    def __init__(self, model: AmericanPremium) -> None:
        from causalcast.options.pinn import V_MAX

        linears = [m for m in model.net if hasattr(m, "weight")]
        self.layers = [_Layer(lin.weight.detach().cpu().numpy().T.copy(),
                              lin.bias.detach().cpu().numpy().copy()) for lin in linears]
        self.dtype = self.layers[0].weight_t.dtype
        self.activation = model.cfg.activation
        self.v_max = V_MAX

    def put_premium(self, m: np.ndarray, tau: np.ndarray, sigma: np.ndarray, rate: np.ndarray,
                    div: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(premium, ∂premium/∂σ) per unit strike of the American put at m = S/K, float64."""
        sq = np.sqrt(tau)
        v = sigma * sq
        log_m = np.log(m)
        ratio = np.tanh(log_m / (2.0 * v))
        feats = np.stack([log_m / 0.7, 2.0 * v / self.v_max - 1.0, 20.0 * rate * tau - 1.0,
                          20.0 * div * tau - 1.0, ratio], axis=1)
        d_feats = np.zeros_like(feats)
        d_feats[:, 1] = 2.0 * sq / self.v_max
        d_feats[:, 4] = (1.0 - ratio * ratio) * (-log_m / (2.0 * v * v)) * sq
        first, *rest = self.layers
        with _blas().limit(limits=1, user_api="blas"):
            z = feats.astype(self.dtype) @ first.weight_t + first.bias
            dz = d_feats.astype(self.dtype) @ first.weight_t
            for layer in rest:
                a, d1 = _activation_jets(self.activation, z, order=1)[:2]
                z = a @ layer.weight_t + layer.bias
                dz = (d1 * dz) @ layer.weight_t
        h = np.asarray(z[:, 0], dtype=np.float64)
        dh = np.asarray(dz[:, 0], dtype=np.float64)
        s = 1.0 / (1.0 + np.exp(-h))
        bound = -np.expm1(-rate * tau)
        return bound * s, bound * s * (1.0 - s) * dh
