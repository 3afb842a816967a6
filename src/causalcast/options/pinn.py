"""The option-pricing networks: configuration and modules, nothing else.

Coordinates (why the networks are small and accurate). With forward moneyness f = S e^{(r−q)τ}/K,
total volatility v = σ√τ and x = ln f / v, the undiscounted European call per unit strike is a
function of (x, v) alone. The network therefore sees (x, v), and its output is only the part of
the price that is hard:

    C/K = e^{−rτ} [ I_call(x, v) + v² φ(x) g_call(x, v) ]
    P/K = e^{−rτ} [ I_put(x, v)  + v² φ(x) g_put(x, v) ]
    I_call = (f − 1) Φ(x) + v φ(x),   I_put = (1 − f) Φ(−x) + v φ(x)

I is a *smooth* intrinsic term: it tends to the payoff (f − 1)⁺ as v → 0 (so the terminal
condition holds by construction and delta has no kink) and to the forward intrinsic value far
from the money (so do the boundary conditions). Its leading error is v² x φ(x)/2, hence the
factor v² φ(x) in front of the network, which leaves g a bounded, smooth function (g ≈ x/2 for
small v). Call and put have their own heads on a shared trunk; parity between them is learned,
not imposed, so it is a real check.

American options add an early-exercise premium on top of the European network:

    P_am/K = P_eu/K + (1 − e^{−rτ}) · sigmoid(h(ln m, v, rτ, qτ, x))

(1 − e^{−rτ}) K is a hard upper bound of the put premium (and the premium is zero when r = 0),
so the sigmoid keeps the premium inside [0, bound]. American calls use the put–call symmetry
C(S, K, r, q) = P(K, S, q, r): the same premium network evaluated at (1/m, q, r), scaled by m.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
V_MAX = math.sqrt(2.0)  # largest total volatility in the trained domain (σ = 1, τ = 2)


@dataclass(frozen=True)
class PinnConfig:
    """Architecture of one network. ``kind`` is 'european' (2 inputs, call and put heads) or
    'american' (5 features, one put-premium output; calls through symmetry)."""

    kind: str = "european"
    width: int = 64
    depth: int = 3
    activation: str = "tanh"
    domain: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PinnConfig:
        known = {k: data[k] for k in ("kind", "width", "depth", "activation", "domain")
                 if k in data}
        cfg = cls(**known)
        if cfg.kind not in ("european", "american"):
            raise ValueError(f"kind: expected 'european' or 'american', got {cfg.kind!r}")
        if cfg.activation not in _ACTIVATIONS:
            raise ValueError(f"activation: expected one of {list(_ACTIVATIONS)}")
        return cfg


_ACTIVATIONS = {"tanh": nn.Tanh, "silu": nn.SiLU}


def _mlp(n_in: int, n_out: int, cfg: PinnConfig) -> nn.Sequential:
    act = _ACTIVATIONS[cfg.activation]
    layers: list[nn.Module] = [nn.Linear(n_in, cfg.width), act()]
    for _ in range(cfg.depth - 1):
        layers += [nn.Linear(cfg.width, cfg.width), act()]
    layers.append(nn.Linear(cfg.width, n_out))
    return nn.Sequential(*layers)


def _phi(x: torch.Tensor) -> torch.Tensor:
    return _INV_SQRT_2PI * torch.exp(-0.5 * x * x)


def _cdf(x: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtr(x)


def bs_coordinates(m: torch.Tensor, tau: torch.Tensor, sigma: torch.Tensor, rate: torch.Tensor,
                   div: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f, v, x): forward moneyness, total volatility, ln f / v (all float64, differentiable)."""
    v = sigma * torch.sqrt(tau)
    log_f = torch.log(m) + (rate - div) * tau
    return torch.exp(log_f), v, log_f / v


class EuropeanPINN(nn.Module):
    """Call and put per unit strike from one forward pass of a (x, v) → (g_call, g_put) MLP."""

    def __init__(self, cfg: PinnConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or PinnConfig(kind="european")
        self.net = _mlp(2, 2, self.cfg)

    def correction(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """g(x, v), shape (n, 2); features scaled to about [−1, 1] on the trained domain."""
        feats = torch.stack([x / 4.0, 2.0 * v / V_MAX - 1.0], dim=-1)
        dtype = self.net[0].weight.dtype
        return self.net(feats.to(dtype)).to(x.dtype)

    def forward(self, m: torch.Tensor, tau: torch.Tensor, sigma: torch.Tensor,
                rate: torch.Tensor, div: torch.Tensor) -> torch.Tensor:
        """Discounted prices per unit strike, shape (n, 2): column 0 call, column 1 put."""
        f, v, x = bs_coordinates(m, tau, sigma, rate, div)
        g = self.correction(x, v)
        pdf, cdf = _phi(x), _cdf(x)
        common = v * pdf
        scale = v * v * pdf
        disc = torch.exp(-rate * tau)
        call = (f - 1.0) * cdf + common + scale * g[:, 0]
        put = (1.0 - f) * (1.0 - cdf) + common + scale * g[:, 1]
        return disc.unsqueeze(-1) * torch.stack([call, put], dim=-1)


class AmericanPremium(nn.Module):
    """Early-exercise premium of the put per unit strike, as a fraction of its bound."""

    def __init__(self, cfg: PinnConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or PinnConfig(kind="american")
        self.net = _mlp(5, 1, self.cfg)

    def forward(self, m: torch.Tensor, tau: torch.Tensor, sigma: torch.Tensor,
                rate: torch.Tensor, div: torch.Tensor) -> torch.Tensor:
        v = sigma * torch.sqrt(tau)
        log_m = torch.log(m)
        feats = torch.stack([
            log_m / 0.7,
            2.0 * v / V_MAX - 1.0,
            20.0 * rate * tau - 1.0,
            20.0 * div * tau - 1.0,
            torch.tanh(log_m / (2.0 * v)),
        ], dim=-1)
        dtype = self.net[0].weight.dtype
        h = self.net(feats.to(dtype)).to(m.dtype)[:, 0]
        return -torch.expm1(-rate * tau) * torch.sigmoid(h)


MODELS: dict[str, type[nn.Module]] = {"european": EuropeanPINN, "american": AmericanPremium}


def build(cfg: PinnConfig) -> nn.Module:
    return MODELS[cfg.kind](cfg)
