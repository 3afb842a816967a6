"""A trained bundle's validation and test forecasts on its own fold, as the predictions table.

The schema, writer and reader live in `causalcast.evaluation.predictions` (torch-free, so
evaluation never needs a model); this module only fills the table from a bundle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalcast.evaluation.predictions import FILE, SPLITS, load_predictions, save_predictions
from causalcast.models.bundle import TrainedModel
from causalcast.training.data import TrainingData

__all__ = ["FILE", "SPLITS", "job_predictions", "load_predictions", "save_predictions"]


def job_predictions(bundle: TrainedModel, data: TrainingData,
                    frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Validation and test predictions of a trained bundle on its own fold."""
    parts = []
    for split in SPLITS:
        rows = data.rows(split)
        if not len(rows):
            continue
        loc, scale = bundle.raw_params(data.x(rows))
        y = data.windows.targets[rows].astype(np.float64)
        sid = data.windows.symbol_of_row[rows]
        for k, symbol in enumerate(data.windows.symbols):
            mine = sid == k
            if not mine.any():
                continue
            positions = rows[mine] - data.windows.offsets[symbol]
            frame = frames[symbol]
            part = {"symbol": symbol, "date": frame.index[positions], "split": split,
                    "position": positions,
                    "close": frame["close"].to_numpy(dtype=float)[positions]}
            for j, h in enumerate(bundle.horizons):
                part[f"y_{h}"] = y[mine, j]
                part[f"mean_{h}"] = loc[mine, j]
                part[f"scale_{h}"] = scale[mine, j]
            parts.append(pd.DataFrame(part))
    table = pd.concat(parts, ignore_index=True)
    cfg = bundle.model.config
    table.attrs = {"likelihood": cfg.likelihood, "df": float(cfg.df), "model": bundle.name,
                   "horizons": list(bundle.horizons),
                   "target_mean": [float(v) for v in data.target_mean],
                   "target_std": [float(v) for v in data.target_std]}
    return table
