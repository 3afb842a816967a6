"""American options: the linear-complementarity condition, bounds, and a pricing shortcut.

An American put V (per unit strike, m = S/K) satisfies, with 𝓛V = V_τ − ½σ²m²V_mm − (r−q)mV_m + rV,

    𝓛V ≥ 0,   V − (1 − m)⁺ ≥ 0,   (𝓛V)·(V − (1 − m)⁺) = 0,

equivalently min(𝓛V, V − payoff) = 0: in the continuation region the Black–Scholes PDE holds,
in the exercise region the price equals the payoff. `lcp_residual` is that quantity (scaled by
τ to price units) and is the physics loss of the American network. Calls with dividends follow
from the put–call symmetry C(S, K, r, q) = P(K, S, q, r), so only the put is learned.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from causalcast.options.inputs import as_inputs


def bsm_operator(v: torch.Tensor, m: torch.Tensor, tau: torch.Tensor, sigma: torch.Tensor,
                 rate: torch.Tensor, div: torch.Tensor) -> torch.Tensor:
    """𝓛V per unit strike by autograd; ``m`` and ``tau`` must require grad."""
    v_m, v_t = torch.autograd.grad(v.sum(), (m, tau), create_graph=True)
    v_mm = torch.autograd.grad(v_m.sum(), m, create_graph=True)[0]
    return v_t - 0.5 * sigma**2 * m**2 * v_mm - (rate - div) * m * v_m + rate * v


def lcp_residual(put: torch.Tensor, m: torch.Tensor, tau: torch.Tensor, sigma: torch.Tensor,
                 rate: torch.Tensor, div: torch.Tensor) -> torch.Tensor:
    """min(τ·𝓛V, V − (1 − m)⁺) for an American put per unit strike; zero for the true price."""
    gap = put - torch.clamp(1.0 - m, min=0.0)
    return torch.minimum(bsm_operator(put, m, tau, sigma, rate, div) * tau, gap)


def premium_bound(spot: Any, strike: Any, tau: Any, rate: Any = 0.0, div: Any = 0.0,
                  kind: str = "put") -> np.ndarray:
    """Upper bound of the early-exercise premium: K(1 − e^{−rτ}) for puts, S(1 − e^{−qτ}) for
    calls (zero when early exercise never pays: puts at r = 0, calls at q = 0)."""
    x = as_inputs(spot, strike, tau, 1.0, rate, div)
    if kind == "put":
        return -x.strike * np.expm1(-x.rate * x.tau)
    return -x.spot * np.expm1(-x.div * x.tau)


def american_price(spot: Any, strike: Any, tau: Any, sigma: Any, rate: Any = 0.0,
                   div: Any = 0.0, kind: Any = "put", method: str = "pinn") -> np.ndarray:
    """American price (no Greeks): 'pinn' (shipped network) or 'quantlib' (CRR, 2000 steps)."""
    from causalcast.options.pricer import price_options

    return price_options(spot, strike, tau, sigma, rate, div, kind, "american", method,
                         greeks=False)["price"]
