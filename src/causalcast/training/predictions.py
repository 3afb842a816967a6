"""Out-of-sample predictions of one job, the contract between training and evaluation.

Every job writes ``predictions.parquet`` beside its bundle: one row per (symbol, bar) of the
fold's validation and test ranges, with the as-of close, the realised forward log return per
horizon and the forecast distribution's location and scale per horizon. Evaluation reads only
these files, so it never needs a model, and the split column lets ensembles and promotion
gates fit on validation rows while reports score test rows (invariant 2).

Columns: ``symbol, date, split, position, close, y_<h>, mean_<h>, scale_<h>`` for every horizon
h; file metadata: ``likelihood``, ``df``, ``model``, ``horizons``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from causalcast.io import atomic_write_bytes
from causalcast.models.bundle import TrainedModel
from causalcast.training.data import TrainingData

FILE = "predictions.parquet"
SPLITS = ("val", "test")


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
                   "horizons": list(bundle.horizons)}
    return table


def save_predictions(table: pd.DataFrame, path: str | Path) -> Path:
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    meta[b"causalcast"] = json.dumps(table.attrs).encode()
    buffer = io.BytesIO()
    pq.write_table(arrow.replace_schema_metadata(meta), buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_predictions(path: str | Path) -> pd.DataFrame:
    arrow = pq.read_table(path)
    table = arrow.to_pandas()
    raw = (arrow.schema.metadata or {}).get(b"causalcast")
    table.attrs = json.loads(raw) if raw else {}
    return table
