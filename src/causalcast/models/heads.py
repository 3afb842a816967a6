"""The probabilistic output shared by all models: a location-scale distribution per horizon.

Choice: a **Student-t with fixed degrees of freedom** (default nu = 5), Gaussian as an option.
Daily returns are fat-tailed (GARCH bursts, crashes); a Gaussian likelihood lets a handful of
crash days dominate the loss and inflates every interval, while a t with nu = 5 down-weights
them and still has a finite variance. nu is fixed rather than learned because a learned nu
drifts to extreme values on small training sets and makes the loss non-stationary for early
stopping. Quantile heads were not chosen: they need one output per level and do not give a
coherent P(up) for every horizon.

``loc`` is the median (and, for nu > 1, the mean); ``scale`` is the t scale parameter
(standard deviation = scale * sqrt(nu / (nu - 2))).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MIN_SCALE = 1e-3


class DistributionHead(nn.Module):
    """Linear map from a representation to (loc, scale) for every horizon."""

    def __init__(self, in_features: int, n_horizons: int):
        super().__init__()
        self.proj = nn.Linear(in_features, 2 * n_horizons)
        self.n_horizons = n_horizons
        with torch.no_grad():  # start near the unconditional distribution: loc 0, scale ~1
            self.proj.weight.mul_(0.1)
            self.proj.bias.zero_()
            self.proj.bias[n_horizons:] = math.log(math.e - 1)  # softplus^-1(1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.proj(h)
        loc, raw_scale = raw[:, : self.n_horizons], raw[:, self.n_horizons:]
        return loc, F.softplus(raw_scale) + MIN_SCALE


def negative_log_likelihood(loc: torch.Tensor, scale: torch.Tensor, y: torch.Tensor,
                            likelihood: str = "student_t", df: float = 5.0) -> torch.Tensor:
    """Mean NLL over the batch and horizons (standardised units)."""
    z = (y - loc) / scale
    if likelihood == "gaussian":
        per = 0.5 * z * z + torch.log(scale) + 0.5 * math.log(2 * math.pi)
    else:
        const = (math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
                 - 0.5 * math.log(df * math.pi))
        per = 0.5 * (df + 1) * torch.log1p(z * z / df) + torch.log(scale) - const
    return per.mean()
