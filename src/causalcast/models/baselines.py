"""Baselines every learned model must beat, fitted in closed form on the training range.

* ``naive``: a zero log return at every horizon (random-walk forecast);
* ``drift``: the training range's mean return per horizon;
* ``ridge``: ridge regression of each horizon's standardised return on the causal features
  at the window's last bar, penalty chosen by scikit-learn's efficient leave-one-out
  (generalised cross-validation) on the training rows.

Their scale is set by moment matching: the t (or Gaussian) scale whose variance equals the
training residual variance. Parameters live in buffers, so baselines save, load and predict
through the same bundle as the deep models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import RidgeCV

from causalcast.models.base import ForecastModel, ModelConfig, register


@dataclass(kw_only=True)
class BaselineConfig(ModelConfig):
    pass


@dataclass(kw_only=True)
class RidgeConfig(ModelConfig):
    alphas: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 4, 13))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.alphas = tuple(float(a) for a in self.alphas)
        if not self.alphas or min(self.alphas) <= 0:
            raise ValueError(f"ridge: alphas must be positive, got {self.alphas}")


class _ClosedForm(ForecastModel):
    trainable = False

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        h, f = config.n_horizons, config.n_features
        self.register_buffer("coef", torch.zeros(h, f))
        self.register_buffer("intercept", torch.zeros(h))
        self.register_buffer("scale", torch.ones(h))

    def _moment_scale(self, residuals: np.ndarray) -> np.ndarray:
        std = np.sqrt(np.mean(residuals ** 2, axis=0))
        if self.config.likelihood == "student_t":
            std = std * math.sqrt((self.config.df - 2) / self.config.df)
        return np.maximum(std, 1e-3)

    def _store(self, coef: np.ndarray, intercept: np.ndarray, residuals: np.ndarray) -> None:
        with torch.no_grad():
            self.coef.copy_(torch.as_tensor(coef, dtype=torch.float32))
            self.intercept.copy_(torch.as_tensor(intercept, dtype=torch.float32))
            self.scale.copy_(torch.as_tensor(self._moment_scale(residuals), dtype=torch.float32))

    def _store_level(self, level: np.ndarray, y: np.ndarray) -> None:
        """A constant forecast: no weight on the inputs, ``level`` per horizon."""
        self._store(np.zeros(tuple(self.coef.shape)), level, y - level)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last = x[:, -1]
        loc = last @ self.coef.T + self.intercept
        return loc, self.scale.expand_as(loc)


@register
class NaiveForecaster(_ClosedForm):
    name = "naive"
    config_cls = BaselineConfig

    def fit_closed_form(self, x_last: np.ndarray, y: np.ndarray,
                        zero_point: np.ndarray) -> None:
        self._store_level(np.asarray(zero_point, dtype=np.float64), y)


@register
class DriftForecaster(_ClosedForm):
    name = "drift"
    config_cls = BaselineConfig

    def fit_closed_form(self, x_last: np.ndarray, y: np.ndarray,
                        zero_point: np.ndarray) -> None:
        self._store_level(y.mean(axis=0), y)


@register
class RidgeForecaster(_ClosedForm):
    name = "ridge"
    config_cls = RidgeConfig

    def fit_closed_form(self, x_last: np.ndarray, y: np.ndarray,
                        zero_point: np.ndarray) -> None:
        x = np.asarray(x_last, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        # An array, not the config's tuple: scikit-learn writes into a one-element `alphas`.
        alphas = np.asarray(self.config.alphas, dtype=np.float64)
        reg = RidgeCV(alphas=alphas, alpha_per_target=True).fit(x, y)
        h = y.shape[1]   # scikit-learn drops the target axis when there is one horizon
        self._store(np.reshape(reg.coef_, (h, x.shape[1])), np.reshape(reg.intercept_, (h,)),
                    y - np.reshape(reg.predict(x), y.shape))
