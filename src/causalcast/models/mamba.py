"""Mamba (selective state space) forecaster: config dataclass and modules; the scan lives in
`scan.py`.

Per block (Gu & Dao 2023): x -> in_proj -> (u, z); u -> depthwise causal conv -> SiLU ->
selective SSM -> y; output = out_proj(y * SiLU(z)); blocks are pre-norm residual (RMSNorm).
The SSM is input-dependent: from u come Delta (via a low-rank projection and softplus), B and
C, and with the S4D-real matrix A = -(1, 2, ..., N) per channel:

    h_t = exp(Delta_t A) h_{t-1} + Delta_t B_t u_t,      y_t = C_t . h_t + D u_t

Initialisation follows the paper: A_log = log(1..N) (S4D-real), D = 1, and the Delta bias is
softplus^-1 of dt drawn log-uniformly in [dt_min, dt_max] (floored at dt_init_floor), so
initial memories span 1/dt_max to 1/dt_min bars.

Forecasting reads only the last bar, so the last block computes only its last output
(`scan.selective_last`, one parallel reduction, fused so the (B, L, D, N) decay tensor is
never stored) and projects only the last position; earlier blocks use the full
`scan.selective_scan` (the blocked scan with hand-written gradients, its chunk length and
threads chosen per shape by `scan_plan`). `forward(x, last_only=False)` on a block returns
the whole sequence (used by the benchmark against mambapy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from causalcast.models.base import ForecastModel, ModelConfig, register
from causalcast.models.heads import DistributionHead
from causalcast.models.scan import selective_last, selective_scan


@dataclass(kw_only=True)
class MambaConfig(ModelConfig):
    d_model: int = 32
    n_layers: int = 2
    d_state: int = 8
    expand: int = 2
    d_conv: int = 4
    dt_rank: int = 0              # 0 = ceil(d_model / 16), resolved here, stored explicitly
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    dt_init_floor: float = 1e-4
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dt_rank == 0:
            self.dt_rank = math.ceil(self.d_model / 16)
        for name in ("d_model", "n_layers", "d_state", "expand", "d_conv", "dt_rank"):
            if getattr(self, name) < 1:
                raise ValueError(f"mamba: {name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(f"mamba: need 0 < dt_min <= dt_max, got {self.dt_min}, "
                             f"{self.dt_max}")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model


class MambaBlock(nn.Module):
    """The mixer: projections, causal depthwise conv, selective SSM, gate."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        d_inner, n = cfg.d_inner, cfg.d_state
        self.d_state, self.dt_rank = n, cfg.dt_rank
        self.in_proj = nn.Linear(cfg.d_model, 2 * d_inner, bias=False)
        self.conv = nn.Conv1d(d_inner, d_inner, cfg.d_conv, groups=d_inner)
        self.conv_pad = cfg.d_conv - 1
        self.x_proj = nn.Linear(d_inner, cfg.dt_rank + 2 * n, bias=False)
        self.dt_proj = nn.Linear(cfg.dt_rank, d_inner, bias=True)
        self.out_proj = nn.Linear(d_inner, cfg.d_model, bias=False)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32))
                                  .repeat(d_inner, 1))                      # S4D-real
        self.D = nn.Parameter(torch.ones(d_inner))
        self._init_dt(cfg)

    def _init_dt(self, cfg: MambaConfig) -> None:
        std = cfg.dt_rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        log_lo, log_hi = math.log(cfg.dt_min), math.log(cfg.dt_max)
        dt = torch.exp(torch.rand(cfg.d_inner) * (log_hi - log_lo) + log_lo)
        dt = dt.clamp(min=cfg.dt_init_floor)
        with torch.no_grad():  # softplus^-1(dt) = dt + log(1 - exp(-dt))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def _causal_conv(self, u: torch.Tensor) -> torch.Tensor:
        """Depthwise convolution over time, padded on the left only: (B, L, Di) -> same."""
        return self.conv(F.pad(u.transpose(1, 2), (self.conv_pad, 0))).transpose(1, 2)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """x: (B, L, d_model) -> (B, L, d_model), or (B, 1, d_model) when `last_only`."""
        u, z = self.in_proj(x).chunk(2, dim=-1)                             # (B, L, Di) each
        u = F.silu(self._causal_conv(u))
        dt, b_in, c_in = torch.split(self.x_proj(u), [self.dt_rank, self.d_state,
                                                      self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))                                 # (B, L, Di)
        A = -torch.exp(self.A_log)                                           # (Di, N)
        if last_only:
            y = selective_last(delta, A, delta * u, b_in, c_in[:, -1]) + self.D * u[:, -1]
            y = y.unsqueeze(1) * F.silu(z[:, -1:])
        else:
            y = selective_scan(delta, A, delta * u, b_in, c_in) + self.D * u    # (B, L, Di)
            y = y * F.silu(z)
        return self.out_proj(y)


class ResidualBlock(nn.Module):
    def __init__(self, cfg: MambaConfig):
        super().__init__()
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mixer = MambaBlock(cfg)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        residual = x[:, -1:] if last_only else x
        return residual + self.mixer(self.norm(x), last_only=last_only)


@register
class MambaForecaster(ForecastModel):
    name = "mamba"
    config_cls = MambaConfig

    def __init__(self, config: MambaConfig):
        super().__init__(config)
        self.inp = nn.Linear(config.n_features, config.d_model)
        self.layers = nn.ModuleList(ResidualBlock(config) for _ in range(config.n_layers))
        self.norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.drop = nn.Dropout(config.dropout)
        self.head = DistributionHead(config.d_model, config.n_horizons)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.inp(x)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h, last_only=i == last)
        return self.head(self.drop(self.norm(h[:, -1])))
