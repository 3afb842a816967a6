"""Read a set of prediction files (the training -> evaluation contract) into one table per model.

Evaluation never loads a model: it reads the ``predictions.parquet`` files that jobs write
(`causalcast.evaluation.predictions`), wherever a runner put them. A set is given as files or
folders (folders are searched for ``**/predictions.parquet``). The fold of a file comes from
the ``result.json`` beside it, else from a ``fold<k>`` folder in its path, else 0.

Files of one model are concatenated (per-symbol models contribute one file per symbol and
fold) and must agree on likelihood, degrees of freedom and horizons; a (fold, symbol, date,
split) row that two files of the same model both claim is an error naming both, since pooling
it twice would count one forecast as two observations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from causalcast.evaluation._validate import EvaluationInputError
from causalcast.evaluation.predictions import FILE, load_predictions

KEY = ["fold", "symbol", "date", "split"]
_FOLD = re.compile(r"^fold(\d+)$")


@dataclass
class ModelPredictions:
    """Every validation and test row of one model, with the fold each row belongs to."""

    model: str
    table: pd.DataFrame          # fold, symbol, date, split, position, close, y_h, mean_h, scale_h
    likelihood: str
    df: float | None             # Student-t degrees of freedom; None for a Gaussian
    horizons: tuple[int, ...]
    files: list[str] = field(default_factory=list)

    @property
    def folds(self) -> list[int]:
        return sorted(int(f) for f in self.table["fold"].unique())

    def split(self, name: str) -> pd.DataFrame:
        return self.table[self.table["split"] == name]


def find_prediction_files(*sources: str | Path | Iterable[str | Path]) -> list[Path]:
    """Prediction files under the given files or folders, sorted, each listed once."""
    found: set[Path] = set()
    flat: list[str | Path] = []
    for src in sources:
        if isinstance(src, str | Path):
            flat.append(src)
        else:
            flat.extend(src)
    for src in flat:
        path = Path(src)
        if path.is_dir():
            found.update(p.resolve() for p in path.glob(f"**/{FILE}"))
        elif path.is_file():
            found.add(path.resolve())
        else:
            raise FileNotFoundError(f"predictions: {path} does not exist")
    if not found:
        raise FileNotFoundError(f"predictions: no {FILE} under {[str(s) for s in flat]}")
    return sorted(found)


def fold_of(path: Path) -> int:
    """The walk-forward fold a prediction file belongs to."""
    result = path.parent / "result.json"
    if result.exists():
        try:
            fold = json.loads(result.read_text()).get("fold")
            if isinstance(fold, int):
                return fold
        except (OSError, ValueError):
            pass
    for part in reversed(path.parent.parts):
        m = _FOLD.match(part)
        if m:
            return int(m.group(1))
    return 0


def _model_name(table: pd.DataFrame, path: Path) -> str:
    name = table.attrs.get("model")
    if isinstance(name, str) and name:
        return name
    # <out_dir>/<model>/<scope>/fold<k>/predictions.parquet
    parts = path.parent.parts
    return parts[-3] if len(parts) >= 3 else path.parent.name


def _check_columns(table: pd.DataFrame, horizons: tuple[int, ...], path: Path) -> None:
    need = {"symbol", "date", "split", "position", "close"}
    for h in horizons:
        need |= {f"y_{h}", f"mean_{h}", f"scale_{h}"}
    missing = sorted(need - set(table.columns))
    if missing:
        raise EvaluationInputError(f"predictions {path}: missing column(s) {missing}")
    bad = set(table["split"].unique()) - {"val", "test"}
    if bad:
        raise EvaluationInputError(f"predictions {path}: unknown split value(s) {sorted(bad)}")
    numeric = ["close"] + [f"{c}_{h}" for h in horizons for c in ("y", "mean", "scale")]
    values = table[numeric].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        col = numeric[int(np.argmax(~np.isfinite(values).all(axis=0)))]
        raise EvaluationInputError(f"predictions {path}: column {col!r} has NaN or inf")
    for h in horizons:
        if (table[f"scale_{h}"] <= 0).any():
            raise EvaluationInputError(f"predictions {path}: column 'scale_{h}' must be > 0")


def load_prediction_set(*sources: str | Path | Iterable[str | Path]) -> dict[str, ModelPredictions]:
    """Model name -> its pooled predictions, from files or folders of prediction files."""
    parts: dict[str, list[tuple[pd.DataFrame, Path]]] = {}
    meta: dict[str, tuple[str, float | None, tuple[int, ...], Path]] = {}
    for path in find_prediction_files(*sources):
        table = load_predictions(path)
        horizons = tuple(int(h) for h in table.attrs.get("horizons") or
                         sorted(int(c[2:]) for c in table.columns if c.startswith("y_")))
        if not horizons:
            raise EvaluationInputError(f"predictions {path}: no y_<h> columns")
        _check_columns(table, horizons, path)
        model = _model_name(table, path)
        likelihood = str(table.attrs.get("likelihood", "gaussian"))
        df = float(table.attrs["df"]) if likelihood == "student_t" else None
        here = (likelihood, df, horizons, path)
        first = meta.setdefault(model, here)
        if first[:3] != here[:3]:
            raise EvaluationInputError(
                f"predictions: files of model {model!r} disagree: {first[3]} has "
                f"likelihood/df/horizons {first[:3]}, {path} has {here[:3]}")
        table = table.copy()
        table.insert(0, "fold", fold_of(path))
        table["date"] = pd.to_datetime(table["date"])
        table["_file"] = str(path)
        parts.setdefault(model, []).append((table, path))
    out = {}
    for model, items in parts.items():
        table = pd.concat([t for t, _ in items], ignore_index=True)
        dup = table.duplicated(KEY, keep=False)
        if dup.any():
            rows = table[dup].sort_values(KEY)
            files = sorted(set(rows["_file"]))
            first = rows.iloc[0]
            raise EvaluationInputError(
                f"predictions: model {model!r} has the row (fold {first['fold']}, "
                f"{first['symbol']}, {first['date'].date()}, {first['split']}) in more than "
                f"one file: {files[:2]}; evaluate one run at a time")
        table = table.drop(columns="_file").sort_values(KEY).reset_index(drop=True)
        likelihood, df, horizons, _ = meta[model]
        out[model] = ModelPredictions(model=model, table=table, likelihood=likelihood, df=df,
                                      horizons=horizons, files=[str(p) for _, p in items])
    return out
