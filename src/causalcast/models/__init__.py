"""Forecasting models: LSTM, TCN, Mamba and closed-form baselines behind one interface.

Importing this package registers every model in `base.MODELS` (name -> class)."""

from causalcast.models import baselines, lstm, mamba, tcn  # noqa: F401  (registration)
from causalcast.models.base import (
    MODELS,
    ForecastModel,
    ModelConfig,
    build_model,
    model_class,
    model_from_dict,
    model_to_dict,
)

__all__ = ["MODELS", "ForecastModel", "ModelConfig", "build_model", "model_class",
           "model_from_dict", "model_to_dict"]
