"""The American early-exercise premium network and its Greeks in numpy forward mode, no autograd.

Why this exists: the served American price is the European value plus this premium, and its
Greeks were autograd derivatives through torch (about 6 ms per thousand options on two shared
cores, mostly graph bookkeeping and a double backward for gamma). American implied volatility
(`options.analytics.american_iv`) runs Newton on the premium and its vega for a whole chain,
some thirty passes. The same MLP as numpy matmuls carrying forward-mode tangents costs a
fraction of that. `pricer._premium_terms` (torch) stays the reference: tests check that both
agree to float32 rounding for the shipped weights and to ~1e-10 for a float64 copy.

Network (see `pinn.AmericanPremium`): with L = ln m, v = σ√τ, the features are
f₀ = L/0.7, f₁ = 2v/V_MAX − 1, f₂ = 20rτ − 1, f₃ = 20qτ − 1, f₄ = tanh(L/(2v)), and the output
is p = B·s(h), B = −expm1(−rτ), s = sigmoid. The derivatives the Greeks need are ∂/∂m to second
order and ∂/∂τ, ∂/∂σ, ∂/∂(rate slot) to first order. Forward over reverse: the value and the
tangent along m go forward (two rows per option, one stacked matmul per layer); one reverse
pass gives the adjoint of every layer and so ∂h/∂features, from which each first-order
tangent is a dot product with its feature tangent (the features are 5, the tangents 4: one
reverse row instead of four forward ones); the second derivative along m is
h_mm = J·f_mm + Σ_k λ_k·(a''(z_k) ⊙ ż_k²), λ_k the adjoint of layer k's activation, ż_k
its forward tangent. Three rows of matmuls per option and hidden layer instead of six; the
activation's jets come from `options.jets._activation_jets` (one jet algebra for both
networks).

The "rate slot" tangent is chosen per row: ∂/∂r for puts, ∂/∂q for rows evaluated at put
coordinates on behalf of calls (put–call symmetry C(S, K, r, q) = P(K, S, q, r) maps the call's
rate into the put's dividend slot).

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

# order of the tangents carried through the network, after the value
TANGENTS = ("m", "mm", "tau", "sigma", "rate_slot")


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


class PremiumJet:
    """A frozen copy of a trained `AmericanPremium`: put premium per unit strike and its jets."""

    def __init__(self, model: AmericanPremium) -> None:
        from causalcast.options.pinn import V_MAX

        linears = [m for m in model.net if hasattr(m, "weight")]
        self.layers = [_Layer(lin.weight.detach().cpu().numpy().T.copy(),
                              lin.bias.detach().cpu().numpy().copy()) for lin in linears]
        self.dtype = self.layers[0].weight_t.dtype
        self.activation = model.cfg.activation
        self.v_max = V_MAX

    @staticmethod
    def _features(m: np.ndarray, tau: np.ndarray, sigma: np.ndarray, rate: np.ndarray,
                  div: np.ndarray, v_max: float) -> tuple[np.ndarray, ...]:
        """(features (n, 5), L, v, ratio = f₄) of `pinn.AmericanPremium`."""
        v = sigma * np.sqrt(tau)
        log_m = np.log(m)
        ratio = np.tanh(log_m / (2.0 * v))
        feats = np.stack([log_m / 0.7, 2.0 * v / v_max - 1.0, 20.0 * rate * tau - 1.0,
                          20.0 * div * tau - 1.0, ratio], axis=1)
        return feats, log_m, v, ratio

    def put_premium(self, m: np.ndarray, tau: np.ndarray, sigma: np.ndarray, rate: np.ndarray,
                    div: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(premium, ∂premium/∂σ) per unit strike of the American put at m = S/K, float64."""
        sq = np.sqrt(tau)
        feats, log_m, v, ratio = self._features(m, tau, sigma, rate, div, self.v_max)
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

    def put_premium_jets(self, m: np.ndarray, tau: np.ndarray, sigma: np.ndarray,
                         rate: np.ndarray, div: np.ndarray,
                         rate_slot_is_div: np.ndarray | bool = False) -> tuple[np.ndarray, ...]:
        """(p, p_m, p_mm, p_τ, p_σ, p_slot) per unit strike of the American put premium at
        m = S/K, float64; p_slot is ∂p/∂rate, or ∂p/∂div where ``rate_slot_is_div``."""
        n = len(m)
        feats, log_m, v, ratio = self._features(m, tau, sigma, rate, div, self.v_max)
        slot_div = np.broadcast_to(np.asarray(rate_slot_is_div, dtype=bool), (n,))
        # feature tangents (n, 5) per direction; f₄ = tanh(y), y = L/(2v)
        y_m = 1.0 / (2.0 * v * m)
        y_v = -log_m / (2.0 * v * v)
        sech2 = 1.0 - ratio * ratio
        v_tau = v / (2.0 * tau)
        v_sigma = np.sqrt(tau)
        zero = np.zeros(n)
        f_m = np.stack([1.0 / (0.7 * m), zero, zero, zero, sech2 * y_m], axis=1)
        f_mm = np.stack([-1.0 / (0.7 * m * m), zero, zero, zero,
                         sech2 * (-2.0 * ratio * y_m * y_m - y_m / m)], axis=1)
        f_tau = np.stack([zero, 2.0 * v_tau / self.v_max, 20.0 * rate, 20.0 * div,
                          sech2 * y_v * v_tau], axis=1)
        f_sigma = np.stack([zero, 2.0 * v_sigma / self.v_max, zero, zero,
                            sech2 * y_v * v_sigma], axis=1)
        f_slot = np.stack([zero, zero, np.where(slot_div, 0.0, 20.0 * tau),
                           np.where(slot_div, 20.0 * tau, 0.0), zero], axis=1)
        first, *rest = self.layers
        with _blas().limit(limits=1, user_api="blas"):
            # forward: the value and the tangent along m (the one direction needing a second
            # derivative), stacked into one matmul per layer; the first layer is linear
            both = np.concatenate([feats, f_m]).astype(self.dtype) @ first.weight_t
            z, z_m = both[:n] + first.bias, both[n:]
            saved = []
            for layer in rest:
                a, d1, d2 = _activation_jets(self.activation, z)
                saved.append((d1, d2, z_m))
                both = np.concatenate([a, d1 * z_m]) @ layer.weight_t
                z, z_m = both[:n] + layer.bias, both[n:]
            # reverse: the adjoint of each activation (one output), and along the way the
            # second-order terms of h_mm = J·f_mm + Σ_k λ_k·(a''(z_k) ż_k²)
            lam = np.broadcast_to(rest[-1].weight_t[:, 0], (n, rest[-1].weight_t.shape[0]))
            curvature = np.zeros(n, dtype=self.dtype)
            for k in range(len(rest) - 1, -1, -1):
                d1, d2, zk_m = saved[k]
                curvature += np.einsum("ij,ij->i", lam, d2 * zk_m * zk_m)
                below = rest[k - 1] if k else first
                lam = (lam * d1) @ below.weight_t.T
        jac = lam.astype(np.float64)                      # ∂h/∂features, (n, 5)
        h = np.asarray(z[:, 0], dtype=np.float64)
        h_m = np.asarray(z_m[:, 0], dtype=np.float64)

        def along(tangent: np.ndarray) -> np.ndarray:
            return np.einsum("ij,ij->i", jac, tangent)

        h_mm = along(f_mm) + curvature.astype(np.float64)
        h_tau, h_sigma, h_slot = along(f_tau), along(f_sigma), along(f_slot)
        s = 1.0 / (1.0 + np.exp(-h))
        s1 = s * (1.0 - s)
        s2 = s1 * (1.0 - 2.0 * s)
        growth = np.exp(-rate * tau)
        bound = -np.expm1(-rate * tau)
        p = bound * s
        p_m = bound * s1 * h_m
        p_mm = bound * (s2 * h_m * h_m + s1 * h_mm)
        p_tau = rate * growth * s + bound * s1 * h_tau
        p_sigma = bound * s1 * h_sigma
        # B = −expm1(−rτ) moves with the rate slot only when it is the rate
        p_slot = np.where(slot_div, 0.0, tau * growth * s) + bound * s1 * h_slot
        return p, p_m, p_mm, p_tau, p_sigma, p_slot
