"""causalcast: causal market forecasting and option pricing whose numbers can be audited.

The public entry points are re-exported here so that notebooks and scripts need one import.
Heavy modules (torch models, serving) are imported lazily by their own subpackages.
"""

from causalcast.config import Settings, load_settings
from causalcast.data.quality import DataReport, DataValidationError, validate_ohlcv
from causalcast.data.sources import load_ohlcv, load_sample
from causalcast.data.synthetic import SyntheticUniverse, make_universe
from causalcast.features.indicators import INDICATORS, build_features
from causalcast.features.targets import make_targets
from causalcast.splits import Fold, temporal_split, walk_forward

__version__ = "0.1.0"

__all__ = [
    "INDICATORS",
    "DataReport",
    "DataValidationError",
    "Fold",
    "Settings",
    "SyntheticUniverse",
    "__version__",
    "build_features",
    "load_ohlcv",
    "load_sample",
    "load_settings",
    "make_targets",
    "make_universe",
    "temporal_split",
    "validate_ohlcv",
    "walk_forward",
]
