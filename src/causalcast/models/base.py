"""What every forecaster shares: its configuration, its output, and a name -> class registry.

A model maps a batch of scaled lookback windows x (B, L, F) to the parameters of a predictive
distribution for every horizon at once: ``loc`` and ``scale``, each (B, H), in *standardised
target units* (each horizon's forward log return minus its training-range mean, divided by
its training-range std; `bundle.TrainedModel` undoes this). See `heads.py` for the likelihood.

Configuration is a keyword-only dataclass per model (fields = hyper-parameters, nothing
computed later), so a model is rebuilt from JSON alone: `model_to_dict` / `model_from_dict`.
Every parameter and buffer exists after ``__init__``; nothing is built lazily on the first
batch, which is what lets `causalcast.weights.check_state_dict` refuse a mismatched file
before any forward pass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn


@dataclass(kw_only=True)
class ModelConfig:
    """Fields every model needs; subclasses add their hyper-parameters (with defaults)."""

    n_features: int
    n_horizons: int
    lookback: int
    likelihood: Literal["student_t", "gaussian"] = "student_t"
    df: float = 5.0            # Student-t degrees of freedom (fixed; > 2 so the variance exists)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("n_features", "n_horizons", "lookback"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.likelihood not in ("student_t", "gaussian"):
            raise ValueError(f"likelihood: 'student_t' or 'gaussian', got {self.likelihood!r}")
        if not self.df > 2:
            raise ValueError(f"df: must be > 2 (finite variance), got {self.df}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: must be in [0, 1), got {self.dropout}")


class ForecastModel(nn.Module):
    """Base class: stores the config; subclasses build every layer in ``__init__``.

    ``forward(x) -> (loc, scale)``. Closed-form baselines set ``trainable = False`` and
    implement ``fit_closed_form``; the trainer then skips gradient descent."""

    name: ClassVar[str]
    config_cls: ClassVar[type[ModelConfig]]
    trainable: ClassVar[bool] = True

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, self.config_cls):
            raise TypeError(f"{type(self).__name__} needs a {self.config_cls.__name__}, "
                            f"got {type(config).__name__}")
        self.config = config

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def fit_closed_form(self, x_last: np.ndarray, y: np.ndarray,
                        zero_point: np.ndarray) -> None:  # pragma: no cover - baselines only
        """Fit without gradients: x_last (N, F) features at each sample's bar, y (N, H)
        standardised targets, zero_point (H,) = a zero raw return in standardised units."""
        raise NotImplementedError(f"{self.name} is trained by gradient descent")


MODELS: dict[str, type[ForecastModel]] = {}


def register(cls: type[ForecastModel]) -> type[ForecastModel]:
    """Class decorator: add a model to `MODELS` under ``cls.name``."""
    if cls.name in MODELS and MODELS[cls.name] is not cls:
        raise ValueError(f"model {cls.name!r} registered twice")
    MODELS[cls.name] = cls
    return cls


def model_class(name: str) -> type[ForecastModel]:
    import causalcast.models  # noqa: F401  (importing the package registers every model)

    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"model: unknown name {name!r}; choose from {sorted(MODELS)}") from None


def build_model(name: str, **config: Any) -> ForecastModel:
    """``build_model("lstm", n_features=31, n_horizons=4, lookback=60, hidden=32)``."""
    cls = model_class(name)
    known = {f.name for f in dataclasses.fields(cls.config_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{name}: unknown config fields {unknown}; known: {sorted(known)}")
    try:
        cfg = cls.config_cls(**config)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"{name}: {exc}") from None
    return cls(cfg)


def model_to_dict(model: ForecastModel) -> dict[str, Any]:
    """JSON-able description from which `model_from_dict` rebuilds the same architecture."""
    return {"name": model.name, "config": asdict(model.config)}


def model_from_dict(spec: dict[str, Any]) -> ForecastModel:
    if not isinstance(spec, dict) or "name" not in spec or "config" not in spec:
        raise ValueError("model config: expected {'name': ..., 'config': {...}}")
    return build_model(spec["name"], **spec["config"])
