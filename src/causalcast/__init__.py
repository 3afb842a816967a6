"""causalcast: causal market forecasting and option pricing whose numbers can be audited.

The public entry points are available from the package root (``from causalcast import
load_ohlcv``) but imported on first use (PEP 562), so that ``causalcast --help`` and other
light commands do not pay for pandas, scipy and torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "causalcast.config", "load_settings": "causalcast.config",
    "DataReport": "causalcast.data.quality", "DataValidationError": "causalcast.data.quality",
    "validate_ohlcv": "causalcast.data.quality",
    "load_ohlcv": "causalcast.data.sources", "load_sample": "causalcast.data.sources",
    "SyntheticUniverse": "causalcast.data.synthetic",
    "make_universe": "causalcast.data.synthetic",
    "INDICATORS": "causalcast.features.indicators",
    "build_features": "causalcast.features.indicators",
    "make_targets": "causalcast.features.targets",
    "Fold": "causalcast.splits", "temporal_split": "causalcast.splits",
    "walk_forward": "causalcast.splits",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'causalcast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
