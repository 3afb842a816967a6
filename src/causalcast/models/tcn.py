"""Temporal convolutional network: residual blocks of causal dilated 1-D convolutions.

Block i uses dilation 2**i; each block holds two convolutions of kernel k, so the receptive
field is 1 + 2 (k - 1) (2**n_blocks - 1) bars (61 for k = 3 and 4 blocks, covering a 60-bar
lookback). Causality: every convolution pads on the left only, so the output at bar t reads
bars <= t. Only the last bar's representation feeds the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from causalcast.models.base import ForecastModel, ModelConfig, register
from causalcast.models.heads import DistributionHead


@dataclass(kw_only=True)
class TCNConfig(ModelConfig):
    channels: int = 32
    kernel_size: int = 3
    blocks: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kernel_size < 2 or self.blocks < 1 or self.channels < 1:
            raise ValueError("tcn: kernel_size >= 2, blocks >= 1 and channels >= 1 required")


class CausalConv1d(nn.Conv1d):
    """Conv1d padded on the left by (k - 1) * dilation: output t depends on inputs <= t."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, L)
        left = (self.kernel_size[0] - 1) * self.dilation[0]
        return super().forward(F.pad(x, (left, 0)))


class TemporalBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.conv1 = CausalConv1d(channels, channels, kernel_size, dilation=dilation)
        self.conv2 = CausalConv1d(channels, channels, kernel_size, dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(F.relu(self.conv1(x)))
        y = self.drop(F.relu(self.conv2(y)))
        return F.relu(x + y)


@register
class TCNForecaster(ForecastModel):
    name = "tcn"
    config_cls = TCNConfig

    def __init__(self, config: TCNConfig):
        super().__init__(config)
        self.inp = nn.Conv1d(config.n_features, config.channels, 1)
        self.blocks = nn.Sequential(*(
            TemporalBlock(config.channels, config.kernel_size, 2 ** i, config.dropout)
            for i in range(config.blocks)))
        self.head = DistributionHead(config.channels, config.n_horizons)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(self.inp(x.transpose(1, 2)))       # (B, C, L)
        return self.head(h[:, :, -1])
