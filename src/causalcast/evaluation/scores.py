"""Scores of one job's predictions table: the only place a trained job is scored.

Training writes predictions (`causalcast.evaluation.predictions`) and nothing else numeric;
what its result and its registry version report comes from here:

* `job_scores`: the test range in raw units (directional accuracy per horizon, share of up
  moves, MAE, coverage of the 80 % / 95 % intervals), the NLL in the training rows'
  standardised units, a one-sided binomial p-value against 0.5 for the first horizon and, with
  a synthetic universe, the exact Bayes ceiling on these very bars;
* `validation_vs_naive` / `beats_naive_record`: **the one definition of "beats naive"** (see
  docs/evaluation.md): on the validation rows, the mean squared error of the forecast's
  location (within `TIE` scales of zero counted as zero) against that of the naive forecast,
  a log return of exactly zero, at the first horizon; lower is better. Validation only: the
  test range never decides a promotion.

A forecast within `TIE` scales of zero counts as "not up", so the zero-return baseline's
float32 rounding does not decide its direction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from causalcast.evaluation._validate import EvaluationInputError
from causalcast.evaluation.metrics import central_interval, gaussian_nll, student_t_nll
from causalcast.evaluation.significance import binomial_test

TIE = 1e-6
VALIDATION = "val"


def called(mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The forecast with values within `TIE` scales of zero set to exactly zero."""
    return np.where(np.abs(mean) <= TIE * scale, 0.0, mean)


def _df(attrs: dict[str, Any]) -> float | None:
    """Student-t degrees of freedom of the file, None for a Gaussian one (as `loading`)."""
    return float(attrs["df"]) if attrs.get("likelihood", "gaussian") == "student_t" else None


def _nll(y: np.ndarray, mean: np.ndarray, scale: np.ndarray, df: float | None) -> np.ndarray:
    return gaussian_nll(y, mean, scale) if df is None else student_t_nll(y, mean, scale, df)


def validation_vs_naive(table: pd.DataFrame, h: int) -> dict[str, Any] | None:
    """Validation MSE of the forecast and of the naive zero-return forecast on the same rows
    (horizon `h`), or None without validation rows."""
    val = table[table["split"] == VALIDATION]
    if val.empty:
        return None
    y = val[f"y_{h}"].to_numpy(dtype=float)
    f = called(val[f"mean_{h}"].to_numpy(dtype=float), val[f"scale_{h}"].to_numpy(dtype=float))
    return {"h": int(h), "n": len(val), "mse": float(np.mean((y - f) ** 2)),
            "naive_mse": float(np.mean(y ** 2))}


def beats_naive_record(block: dict[str, Any] | None) -> dict[str, Any] | None:
    """`validation_vs_naive` as the registry's ``baseline_comparison`` record (the one the
    ``beats_naive_baseline`` gate reads), or None when it cannot be computed."""
    from causalcast.registry.gates import baseline_comparison

    if block is None or not (np.isfinite(block["mse"]) and np.isfinite(block["naive_mse"])):
        return None
    return baseline_comparison(f"val_mse_h{block['h']}", block["mse"], block["naive_mse"],
                               lower_is_better=True, baseline_name="naive",
                               split="validation")


def job_scores(table: pd.DataFrame, universe: Any = None, split: str = "test"
                ) -> dict[str, Any]:
    """Scores of the `split` rows of one job's predictions table (see module doc).

    `universe`: a synthetic universe (anything with ``ceiling(symbols, positions)``) for the
    exact h = 1 ceiling on these bars."""
    attrs = table.attrs
    horizons = [int(h) for h in attrs.get("horizons", [])]
    if not horizons:
        raise EvaluationInputError("predictions: no 'horizons' in the file metadata")
    rows = table[table["split"] == split]
    if rows.empty:
        raise EvaluationInputError(f"predictions: no {split!r} rows")
    df = _df(attrs)
    mean_t = np.asarray(attrs.get("target_mean", [0.0] * len(horizons)), dtype=np.float64)
    std_t = np.asarray(attrs.get("target_std", [1.0] * len(horizons)), dtype=np.float64)
    per_h, nll, hits = {}, [], 0
    for j, h in enumerate(horizons):
        y = rows[f"y_{h}"].to_numpy(dtype=float)
        loc = rows[f"mean_{h}"].to_numpy(dtype=float)
        scale = rows[f"scale_{h}"].to_numpy(dtype=float)
        nll.append(_nll((y - mean_t[j]) / std_t[j], (loc - mean_t[j]) / std_t[j],
                        scale / std_t[j], df))
        up = loc > TIE * scale
        if j == 0:
            hits = int((up == (y > 0)).sum())
        lo80, hi80 = central_interval(loc, scale, 0.8, df)
        lo95, hi95 = central_interval(loc, scale, 0.95, df)
        per_h[str(h)] = {
            "dir_acc": float((up == (y > 0)).mean()), "up_fraction": float((y > 0).mean()),
            "mae": float(np.abs(loc - y).mean()),
            "coverage_80": float(((y >= lo80) & (y <= hi80)).mean()),
            "coverage_95": float(((y >= lo95) & (y <= hi95)).mean()),
        }
    h0 = horizons[0]
    out: dict[str, Any] = {"split": split, "n": len(rows), "nll": float(np.mean(nll)),
                           "horizons": per_h, "dir_acc": per_h[str(h0)]["dir_acc"],
                           "binom_p": binomial_test(hits, len(rows), 0.5).p_value}
    if universe is not None and h0 == 1:
        total, weight = 0.0, 0
        for symbol, part in rows.groupby("symbol", sort=False):
            positions = part["position"].to_numpy()
            total += universe.ceiling([symbol], positions) * len(positions)
            weight += len(positions)
        out["ceiling"] = total / weight
        out["ceiling_ratio"] = out["dir_acc"] / out["ceiling"]
    return out
