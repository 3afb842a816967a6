"""Out-of-sample predictions of one job: the file contract between training and evaluation.

Every training job writes ``predictions.parquet`` beside its bundle: one row per (symbol, bar)
of the fold's validation and test ranges, with the as-of close, the realised forward log return
per horizon and the forecast distribution's location and scale per horizon. Evaluation reads
only these files, so it never needs a model (nor torch), and the split column lets ensembles
and promotion gates fit on validation rows while reports score test rows.

Columns: ``symbol, date, split, position, close, y_<h>, mean_<h>, scale_<h>`` for every horizon
h; file metadata (``table.attrs``): ``likelihood``, ``df``, ``model``, ``horizons`` and, when
written by training, ``target_mean``/``target_std`` (the training rows' per-horizon target
statistics, for scores in standardised units).

This module is the schema and its reader/writer only; training fills it
(`causalcast.training.predictions.job_predictions`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from causalcast.io import atomic_write_bytes

FILE = "predictions.parquet"
SPLITS = ("val", "test")
META_KEY = b"causalcast"


def save_predictions(table: pd.DataFrame, path: str | Path) -> Path:
    """Write `table` (with its attrs as file metadata) atomically to `path`."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    meta[META_KEY] = json.dumps(table.attrs).encode()
    buffer = io.BytesIO()
    pq.write_table(arrow.replace_schema_metadata(meta), buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_predictions(path: str | Path) -> pd.DataFrame:
    """A predictions file as a DataFrame whose attrs hold the file metadata."""
    arrow = pq.read_table(path)
    table = arrow.to_pandas()
    raw = (arrow.schema.metadata or {}).get(META_KEY)
    table.attrs = json.loads(raw) if raw else {}
    return table
