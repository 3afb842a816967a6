"""An ensemble of forecasters whose weights are fitted on validation rows only.

For every walk-forward fold and horizon the weights are fitted on that fold's validation
predictions (which precede its test range, purged) and applied to its test predictions, so
the ensemble is exactly as out-of-sample as its members. Two rules:

* ``"stacking"`` (default): the weights on the simplex (w >= 0, sum w = 1) that minimise the
  squared error of the combined mean forecast, solved with SLSQP. Validation losses of daily
  return forecasts differ in the fourth decimal, so inverse-loss weights are nearly uniform
  whatever the models' quality; constrained least squares can give a useless model zero.
* ``"inverse_mse"``: weights proportional to 1 / validation MSE.

The combined distribution is moment-matched: mean ``sum w_i m_i`` and variance
``sum w_i (v_i + m_i^2) - mean^2`` (the mixture's), expressed in the members' likelihood
when they share one (Student-t with their df), else as a Gaussian.

Invariant 2 is enforced where the data is read: `fit_weights` receives validation rows and
refuses a table holding any other split, and `audit.check_fit_isolation` (run by
`walkforward.evaluate_predictions`) proves on the data at hand that poisoning every test row
leaves the weights bit-identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize

from causalcast.evaluation._validate import EvaluationInputError
from causalcast.evaluation.loading import KEY, ModelPredictions

Method = Literal["stacking", "inverse_mse"]
BASELINES = ("naive", "drift")
NAME = "ensemble"


def default_candidates(models: Mapping[str, ModelPredictions]) -> list[str]:
    """Every model except the baselines and an existing ensemble."""
    return [m for m in models if m not in (*BASELINES, NAME)]


def fit_weights(y: np.ndarray, forecasts: np.ndarray, method: Method = "stacking") -> np.ndarray:
    """Weights of the columns of `forecasts` (n, k) for the target `y` (n,)."""
    y = np.asarray(y, dtype=float)
    f = np.asarray(forecasts, dtype=float)
    if f.ndim != 2 or len(f) != len(y) or len(y) < 2:
        raise EvaluationInputError(f"forecasts/y: need (n, k) and (n,) with n >= 2, got "
                                   f"{f.shape} and {y.shape}")
    if not (np.isfinite(f).all() and np.isfinite(y).all()):
        raise EvaluationInputError("forecasts/y: validation rows contain NaN or inf")
    k = f.shape[1]
    if method == "inverse_mse":
        mse = np.mean((f - y[:, None]) ** 2, axis=0)
        inv = 1.0 / np.maximum(mse, 1e-300)
        return inv / inv.sum()
    if method != "stacking":
        raise EvaluationInputError(f"method: must be 'stacking' or 'inverse_mse', got {method!r}")
    scale = float(np.std(y)) or 1.0          # conditioning: returns are ~1e-2
    fs, ys = f / scale, y / scale
    gram, cross = fs.T @ fs / len(y), fs.T @ ys / len(y)

    def loss(w: np.ndarray) -> float:
        return float(w @ gram @ w - 2 * w @ cross)

    def grad(w: np.ndarray) -> np.ndarray:
        return 2 * (gram @ w - cross)

    res = optimize.minimize(loss, np.full(k, 1.0 / k), jac=grad, method="SLSQP",
                            bounds=[(0.0, 1.0)] * k,
                            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                          "jac": lambda w: np.ones_like(w)}],
                            options={"ftol": 1e-12, "maxiter": 200})
    w = np.clip(res.x, 0.0, None)
    return w / w.sum() if w.sum() > 0 else np.full(k, 1.0 / k)


def wide_table(models: Mapping[str, ModelPredictions], candidates: Sequence[str],
               horizons: Sequence[int]) -> pd.DataFrame:
    """Rows every candidate predicted, side by side: KEY, position, close, y_h and
    ``mean_h@model`` / ``scale_h@model``."""
    wide = None
    for name in candidates:
        t = models[name].table
        cols = {f"{c}_{h}": f"{c}_{h}@{name}" for h in horizons for c in ("mean", "scale")}
        part = t[[*KEY, *cols]].rename(columns=cols)
        if wide is None:
            base = [*KEY, "position", "close", *[f"y_{h}" for h in horizons]]
            wide = t[base].merge(part, on=KEY)
        else:
            wide = wide.merge(part, on=KEY)
    if wide is None or wide.empty:
        raise EvaluationInputError(f"ensemble: the candidates {list(candidates)} share no rows")
    return wide.sort_values(KEY).reset_index(drop=True)


def fold_weights(val_rows: pd.DataFrame, candidates: Sequence[str], h: int,
                 method: Method = "stacking") -> dict[str, float]:
    """Fit one fold's weights for horizon h from its validation rows (and nothing else)."""
    splits = set(val_rows["split"].unique())
    if splits - {"val"}:
        raise EvaluationInputError(f"ensemble: weights may be fitted on validation rows only, "
                                   f"got split(s) {sorted(splits)}")
    f = val_rows[[f"mean_{h}@{m}" for m in candidates]].to_numpy(dtype=float)
    w = fit_weights(val_rows[f"y_{h}"].to_numpy(dtype=float), f, method)
    return {m: float(x) for m, x in zip(candidates, w, strict=True)}


def _variance(scale: np.ndarray, likelihood: str, df: float | None) -> np.ndarray:
    if likelihood == "student_t" and df is not None:
        return scale**2 * df / (df - 2)
    return scale**2


def fit_ensemble_weights(models: Mapping[str, ModelPredictions],
                         candidates: Sequence[str] | None = None,
                         method: Method = "stacking") -> dict[int, dict[int, dict[str, float]]]:
    """fold -> horizon -> model -> weight, each fitted on that fold's validation rows. Only
    validation rows are ever passed on to the fitting."""
    candidates = list(candidates or default_candidates(models))
    horizons = _common_horizons(models, candidates)
    out: dict[int, dict[int, dict[str, float]]] = {}
    val_only = {m: _only(models[m], "val") for m in candidates}
    wide = wide_table(val_only, candidates, horizons)
    for fold, rows in wide.groupby("fold", sort=True):
        out[int(fold)] = {h: fold_weights(rows, candidates, h, method) for h in horizons}
    return out


def _only(pred: ModelPredictions, split: str) -> ModelPredictions:
    return ModelPredictions(model=pred.model, table=pred.split(split), likelihood=pred.likelihood,
                            df=pred.df, horizons=pred.horizons, files=pred.files)


def _common_horizons(models: Mapping[str, ModelPredictions], candidates: Sequence[str]
                     ) -> list[int]:
    if len(candidates) < 2:
        raise EvaluationInputError(f"ensemble: needs at least two candidate models, got "
                                   f"{list(candidates)}")
    missing = [m for m in candidates if m not in models]
    if missing:
        raise EvaluationInputError(f"ensemble: unknown candidate(s) {missing}; have "
                                   f"{sorted(models)}")
    common = set(models[candidates[0]].horizons)
    for m in candidates[1:]:
        common &= set(models[m].horizons)
    if not common:
        raise EvaluationInputError(f"ensemble: candidates {list(candidates)} share no horizon")
    return sorted(common)


def build_ensemble(models: Mapping[str, ModelPredictions],
                   candidates: Sequence[str] | None = None, method: Method = "stacking"
                   ) -> tuple[ModelPredictions, dict]:
    """The ensemble's test predictions (weights from each fold's validation rows) and a
    record of the weights."""
    candidates = list(candidates or default_candidates(models))
    horizons = _common_horizons(models, candidates)
    weights = fit_ensemble_weights(models, candidates, method)
    test = wide_table({m: _only(models[m], "test") for m in candidates}, candidates, horizons)
    test = test[test["fold"].isin(list(weights))]
    if test.empty:
        raise EvaluationInputError("ensemble: no test rows in folds that have validation rows")
    likelihoods = {(models[m].likelihood, models[m].df) for m in candidates}
    likelihood, df = next(iter(likelihoods)) if len(likelihoods) == 1 else ("gaussian", None)
    out = test[[*KEY, "position", "close", *[f"y_{h}" for h in horizons]]].copy()
    for h in horizons:
        w = np.array([[weights[int(f)][h][m] for m in candidates] for f in test["fold"]])
        means = test[[f"mean_{h}@{m}" for m in candidates]].to_numpy(dtype=float)
        var = np.column_stack([
            _variance(test[f"scale_{h}@{m}"].to_numpy(dtype=float), models[m].likelihood,
                      models[m].df) for m in candidates])
        mean = (w * means).sum(axis=1)
        mix_var = np.maximum((w * (var + means**2)).sum(axis=1) - mean**2, 1e-300)
        scale = np.sqrt(mix_var * (df - 2) / df) if likelihood == "student_t" else \
            np.sqrt(mix_var)
        out[f"mean_{h}"] = mean
        out[f"scale_{h}"] = scale
    pred = ModelPredictions(model=NAME, table=out.reset_index(drop=True), likelihood=likelihood,
                            df=df, horizons=tuple(horizons), files=[])
    record = {"method": method, "candidates": candidates, "horizons": horizons,
              "likelihood": likelihood, "df": df,
              "weights": {str(f): {str(h): w for h, w in by_h.items()}
                          for f, by_h in weights.items()}}
    return pred, record


def poison_test_rows(models: Mapping[str, ModelPredictions]) -> dict[str, ModelPredictions]:
    """Copies whose test rows hold NaN targets and prices and absurd forecasts: what a fit
    restricted to validation rows must not notice (`audit.check_fit_isolation`)."""
    out = {}
    for name, pred in models.items():
        table = pred.table.copy()
        test = table["split"] == "test"
        for h in pred.horizons:
            table.loc[test, f"y_{h}"] = np.nan
            table.loc[test, f"mean_{h}"] = 1e6
            table.loc[test, f"scale_{h}"] = 1e-9
        table.loc[test, "close"] = np.nan
        out[name] = ModelPredictions(model=pred.model, table=table, likelihood=pred.likelihood,
                                     df=pred.df, horizons=pred.horizons, files=pred.files)
    return out
