"""LSTM forecaster: the window runs through a stacked LSTM; the last hidden state feeds the
distribution head. The plain `torch.nn.LSTM` (one fused kernel per layer) is the fastest
recurrent option on a CPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from causalcast.models.base import ForecastModel, ModelConfig, register
from causalcast.models.heads import DistributionHead


@dataclass(kw_only=True)
class LSTMConfig(ModelConfig):
    hidden: int = 32
    layers: int = 1


@register
class LSTMForecaster(ForecastModel):
    name = "lstm"
    config_cls = LSTMConfig

    def __init__(self, config: LSTMConfig):
        super().__init__(config)
        self.lstm = nn.LSTM(config.n_features, config.hidden, num_layers=config.layers,
                            batch_first=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = DistributionHead(config.hidden, config.n_horizons)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, (h_n, _) = self.lstm(x)
        return self.head(self.drop(h_n[-1]))
