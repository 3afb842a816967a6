"""Walk-forward evaluation of a set of prediction files: every number out of sample.

`evaluate_predictions` pools the *test* rows of every fold and symbol per model and horizon
and reports, as one JSON-ready dict:

* directional accuracy with its Wilson interval beside always-up (and, on synthetic data,
  the exact Bayes-optimal ceiling on the very same bars), accuracy per fold;
* MAE / RMSE / MAPE of the implied price, NLL / CRPS and interval coverage of the forecast
  distribution (Student-t with the file's df, or Gaussian), Brier score and reliability of
  the implied P(up) (`metrics.forecast_metrics`);
* Diebold-Mariano (HLN, h - 1 HAC lags) of squared log-return errors against the naive
  zero-return forecast, and between every pair of models; a date-clustered
  Pesaran-Timmermann-type direction test (`panel`), beside the textbook PT on pooled rows;
* a backtest of the shortest horizon's forecast per symbol (decided at t, filled at the next
  bar, costs in bps) pooled into an equal-weight book, against buy-and-hold (`portfolio`);
* the rubric grade, shown above F only if the leakage audit passed and both tests against
  the naive baseline reject at `alpha` (`grade.honest_grade`);
* an ensemble fitted on validation rows only (`ensemble`), against the best single model.

The naive forecast is a log return of exactly zero, so its loss ``y^2`` is known for every
row without a naive prediction file; a run's ``naive`` model is still evaluated as a model.
A forecast within `TIE` of its scale from zero counts as zero (not "up", and flat in the
backtest), as in `scores.job_scores`: the zero-return baseline's float32 rounding
must not decide its direction.

Why the panel tests: symbols of one market move together, so pooled rows are not independent
observations; see `panel`. DM and the direction test run on per-date aggregates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from causalcast.audit import check_fit_isolation
from causalcast.evaluation import ensemble as ens
from causalcast.evaluation._validate import EvaluationInputError, check_alpha
from causalcast.evaluation.grade import honest_grade
from causalcast.evaluation.loading import ModelPredictions, load_prediction_set
from causalcast.evaluation.metrics import central_interval, directional_accuracy, forecast_metrics
from causalcast.evaluation.panel import panel_diebold_mariano, panel_direction_test
from causalcast.evaluation.portfolio import trade_forecasts
from causalcast.evaluation.scores import TIE, called, validation_vs_naive
from causalcast.evaluation.significance import pesaran_timmermann

MIN_FOLDS = 5
EXCERPT_BARS = 150
BASELINES = ens.BASELINES


# --------------------------------------------------------------------------- helpers


def jsonable(obj: Any) -> Any:
    """Plain JSON types all the way down (NaN -> None, inf -> "inf")."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        if math.isnan(x):
            return None
        return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")
    if isinstance(obj, pd.Timestamp | datetime):
        return obj.isoformat()
    return obj


def _audit_flag(audit_passed: Any) -> tuple[bool, str]:
    if audit_passed is None:
        return False, "not run"
    flag = getattr(audit_passed, "passed", audit_passed)
    if isinstance(audit_passed, Mapping):
        flag = audit_passed.get("passed")
    if not isinstance(flag, bool):
        raise EvaluationInputError(f"audit_passed: must be a bool, an audit report or a dict "
                                   f"with 'passed', got {audit_passed!r}")
    return flag, "passed" if flag else "failed"


def _ceiling_for(ceiling: Any, rows: pd.DataFrame, h: int) -> tuple[float | None, str | None]:
    """Bayes-optimal accuracy on these rows: exact for h = 1 from a synthetic universe's true
    P(up); for h > 1 the universe's Monte Carlo value over all bars (approximate)."""
    if ceiling is None:
        return None, None
    if isinstance(ceiling, Mapping):
        v = ceiling.get(h, ceiling.get(str(h)))
        return (float(v), "given") if v is not None else (None, None)
    prob_up = getattr(ceiling, "prob_up", None)
    if h == 1 and prob_up:
        values = []
        for symbol, part in rows.groupby("symbol"):
            if symbol not in prob_up:
                return None, None
            p = prob_up[symbol].reindex(pd.DatetimeIndex(part["date"])).to_numpy()
            values.append(np.maximum(p, 1 - p))
        v = np.concatenate(values)
        return float(np.nanmean(v)), "exact on these bars"
    bayes = getattr(ceiling, "bayes_accuracy", None) or {}
    if h in bayes:
        return float(bayes[h]), "Monte Carlo, all bars"
    return None, None


# --------------------------------------------------------------------------- per model


def _horizon_metrics(rows: pd.DataFrame, pred: ModelPredictions, h: int, alpha: float,
                     ceiling: Any) -> dict:
    y = rows[f"y_{h}"].to_numpy(dtype=float)
    scale = rows[f"scale_{h}"].to_numpy(dtype=float)
    f = called(rows[f"mean_{h}"].to_numpy(dtype=float), scale)
    out = forecast_metrics(rows["close"].to_numpy(dtype=float), y, f, scale=scale, df=pred.df,
                           alpha=alpha)
    dates = rows["date"].to_numpy()
    dm = panel_diebold_mariano(dates, (y - f) ** 2, y**2, h)
    out["dm_vs_naive"] = {**dm.to_dict(), "loss": "squared log-return error",
                          "aggregation": "mean over symbols per date"}
    out["direction_test"] = panel_direction_test(dates, y, f, h).to_dict()
    # Textbook PT on the pooled rows (assumes independent rows; see `panel`).
    rows = rows.assign(_called=f)   # the forecast, computed once, for the regroupings below
    ordered = rows.sort_values(["symbol", "date"])
    out["pt_pooled"] = pesaran_timmermann(ordered[f"y_{h}"].to_numpy(dtype=float),
                                          ordered["_called"].to_numpy(), h=h).to_dict()
    value, kind = _ceiling_for(ceiling, rows, h)
    if value is not None:
        out["ceiling"] = {"accuracy": value, "kind": kind,
                          "ratio": out["direction"]["accuracy"] / value}
    per_fold = {}
    for fold, part in rows.groupby("fold"):
        da = directional_accuracy(part[f"y_{h}"].to_numpy(dtype=float),
                                  part["_called"].to_numpy(), alpha=alpha)
        per_fold[str(int(fold))] = {"accuracy": da.accuracy, "ci_low": da.ci_low,
                                    "ci_high": da.ci_high, "up_rate": da.up_rate, "n": da.n,
                                    "start": str(part["date"].min().date()),
                                    "end": str(part["date"].max().date())}
    out["folds"] = per_fold
    return out


def _excerpt(rows: pd.DataFrame, pred: ModelPredictions, h: int) -> dict:
    """The last test bars of one symbol: forecast mean, 80 % / 95 % intervals, realised."""
    symbol = sorted(rows["symbol"].unique())[0]
    part = rows[rows["symbol"] == symbol].sort_values("date").tail(EXCERPT_BARS)
    mean = part[f"mean_{h}"].to_numpy(dtype=float)
    scale = part[f"scale_{h}"].to_numpy(dtype=float)
    bands = {}
    for level in (0.8, 0.95):
        lo, hi = central_interval(mean, scale, level, pred.df)
        bands[f"{int(level * 100)}%"] = [lo.tolist(), hi.tolist()]
    return {"symbol": symbol, "h": h, "dates": [str(d.date()) for d in part["date"]],
            "realised": part[f"y_{h}"].tolist(), "mean": mean.tolist(), "bands": bands}


def evaluate_model(pred: ModelPredictions, *, frames: Mapping[str, pd.DataFrame] | None,
                   audit_passed: bool, ceiling: Any = None, cost_bps: float = 5.0,
                   slippage_bps: float = 0.0, alpha: float = 0.05,
                   long_only: bool = False) -> dict:
    """Every metric, test, backtest and the gated grade of one model's test rows."""
    test = pred.split("test")
    if len(test) < 2:
        raise EvaluationInputError(f"predictions: model {pred.model!r} has {len(test)} test "
                                   f"row(s); nothing to evaluate")
    dup = test.duplicated(["symbol", "date"])
    if dup.any():
        first = test[dup].iloc[0]
        raise EvaluationInputError(
            f"predictions: model {pred.model!r} has test rows for ({first['symbol']}, "
            f"{first['date'].date()}) in more than one fold; walk-forward test ranges must "
            f"not overlap")
    horizons = {str(h): _horizon_metrics(test, pred, h, alpha, ceiling) for h in pred.horizons}
    h0 = pred.horizons[0]
    traded = test.assign(_f=called(test[f"mean_{h0}"].to_numpy(dtype=float),
                                   test[f"scale_{h0}"].to_numpy(dtype=float)))
    book = trade_forecasts(traded, "_f", frames, cost_bps=cost_bps, slippage_bps=slippage_bps,
                           long_only=long_only)
    first = horizons[str(h0)]
    p_values = {"dm_vs_naive": first["dm_vs_naive"]["p_a_better"],
                "direction": first["direction_test"]["p_value"]}
    grade = honest_grade(first["direction"]["accuracy"], _num(book.stats["sharpe"]),
                         audit_passed=audit_passed, baseline_p_values=p_values, alpha=alpha)
    return {"model": pred.model, "likelihood": pred.likelihood, "df": pred.df,
            "horizons": list(pred.horizons), "folds": pred.folds, "n_test": len(test),
            "validation": _validation_block(pred, h0),
            "symbols": sorted(test["symbol"].unique().tolist()), "files": len(pred.files),
            "metrics": horizons, "backtest": {"horizon": h0, **book.to_dict()},
            "grade": grade.to_dict(), "beats_naive": grade.baseline_rejected,
            "excerpt": _excerpt(test, pred, h0)}


def _num(x: Any) -> float:
    if x is None:
        return math.nan
    if isinstance(x, str):
        return math.inf if x == "inf" else -math.inf
    return float(x)


# --------------------------------------------------------------------------- across models


def pairwise_tests(models: Mapping[str, ModelPredictions], alpha: float = 0.05) -> dict:
    """DM (squared error, panel) between every pair of models on the test rows both have."""
    out: dict[str, list] = {}
    names = list(models)
    horizons = sorted({h for m in models.values() for h in m.horizons})
    for h in horizons:
        rows = []
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if h not in models[a].horizons or h not in models[b].horizons:
                    continue
                keys = ["symbol", "date"]
                both = models[a].split("test")[[*keys, f"y_{h}", f"mean_{h}", f"scale_{h}"]].merge(
                    models[b].split("test")[[*keys, f"mean_{h}", f"scale_{h}"]], on=keys,
                    suffixes=("_a", "_b"))
                if len(both) < 2 * h + 2:
                    continue
                y = both[f"y_{h}"].to_numpy(dtype=float)
                fa = called(both[f"mean_{h}_a"].to_numpy(), both[f"scale_{h}_a"].to_numpy())
                fb = called(both[f"mean_{h}_b"].to_numpy(), both[f"scale_{h}_b"].to_numpy())
                dm = panel_diebold_mariano(both["date"].to_numpy(), (y - fa) ** 2,
                                           (y - fb) ** 2, h)
                rows.append({"a": a, "b": b, "n": len(both), "n_dates": dm.n,
                             "statistic": dm.statistic, "p_value": dm.p_value,
                             "p_a_better": dm.p_a_better, "p_b_better": dm.p_b_better,
                             "significant": dm.p_value < alpha})
        out[str(h)] = rows
    return out


def _validation_block(pred: ModelPredictions, h: int) -> dict | None:
    """Validation MSE of the model and of the naive forecast on the same rows: what the
    registry's ``beats_naive_baseline`` gate compares (`scores.validation_vs_naive`)."""
    return validation_vs_naive(pred.table, h)


def _validation_mse(pred: ModelPredictions, h: int) -> float | None:
    if h not in pred.horizons:
        return None
    block = _validation_block(pred, h)
    return None if block is None else block["mse"]


def _ensemble_section(models: dict[str, ModelPredictions], method: ens.Method
                      ) -> tuple[ModelPredictions | None, dict]:
    candidates = ens.default_candidates(models)
    if len(candidates) < 2:
        return None, {"skipped": f"needs two or more non-baseline models, have {candidates}"}
    try:
        pred, record = ens.build_ensemble(models, candidates, method)
    except EvaluationInputError as exc:
        return None, {"skipped": str(exc)}
    h0 = pred.horizons[0]
    val_mse = {m: _validation_mse(models[m], h0) for m in candidates}
    known = {m: v for m, v in val_mse.items() if v is not None}
    best = min(known, key=known.__getitem__) if known else candidates[0]
    check = check_fit_isolation(
        lambda ms: ens.fit_ensemble_weights(ms, candidates, method),
        {m: models[m] for m in candidates}, ens.poison_test_rows,
        subject=f"ensemble ({method})")
    record.update({"best_single": best, "best_single_rule": "lowest validation MSE at "
                   f"h={h0}", "validation_mse": val_mse,
                   "isolation_check": {"passed": check.passed, "detail": check.detail}})
    return pred, record


def _vs_best_single(result_models: dict, pairwise: dict, record: dict) -> dict:
    best = record["best_single"]
    out = {}
    for h, rows in pairwise.items():
        for r in rows:
            if {r["a"], r["b"]} == {ens.NAME, best}:
                sign = 1 if r["a"] == ens.NAME else -1
                out[h] = {"statistic": r["statistic"] * sign if r["statistic"] is not None
                          else None,
                          "p_value": r["p_value"],
                          "p_ensemble_better": r["p_a_better"] if sign == 1 else r["p_b_better"],
                          "accuracy_ensemble": result_models[ens.NAME]["metrics"][h][
                              "direction"]["accuracy"],
                          "accuracy_best_single": result_models[best]["metrics"][h][
                              "direction"]["accuracy"]}
    return out


def _leaderboard(result_models: dict) -> list[dict]:
    rows = []
    for name, m in result_models.items():
        h = str(m["horizons"][0])
        hm = m["metrics"][h]
        cov90 = next((c["observed"] for c in hm.get("coverage", []) if c["nominal"] == 0.9),
                     None)
        rows.append({
            "model": name, "h": int(h), "n": hm["n"],
            "accuracy": hm["direction"]["accuracy"], "ci_low": hm["direction"]["ci_low"],
            "ci_high": hm["direction"]["ci_high"], "always_up": hm["direction"]["up_rate"],
            "ceiling": hm.get("ceiling", {}).get("accuracy"),
            "mae": hm["price"]["mae"], "rmse": hm["price"]["rmse"],
            "mape_pct": hm["price"]["mape_pct"], "crps": hm.get("crps"), "nll": hm.get("nll"),
            "coverage_90": cov90, "brier": hm.get("brier"),
            "ece": hm.get("reliability", {}).get("ece"),
            "dm_stat": hm["dm_vs_naive"]["statistic"],
            "p_dm": hm["dm_vs_naive"]["p_a_better"],
            "p_direction": hm["direction_test"]["p_value"],
            "sharpe": m["backtest"]["stats"]["sharpe"],
            "max_drawdown": m["backtest"]["stats"]["max_drawdown"],
            "grade_computed": m["grade"]["computed"], "grade_shown": m["grade"]["shown"],
            "beats_naive": m["beats_naive"],
        })

    def key(r: dict) -> float:
        s = r["dm_stat"]
        return _num(s) if s is not None else math.inf

    return sorted(rows, key=key)


def _summary(result: dict) -> list[str]:
    lines = []
    audit = result["audit"]
    if not audit["passed"]:
        lines.append(f"The leakage audit {audit['status']}: no grade above F is shown.")
    if result["data"]["n_folds"] < MIN_FOLDS:
        lines.append(f"Only {result['data']['n_folds']} fold(s): walk-forward evaluation "
                     f"asks for at least {MIN_FOLDS}; read every number with care.")
    for name, m in result["models"].items():
        h = str(m["horizons"][0])
        hm = m["metrics"][h]
        d = hm["direction"]
        p_dm, p_dir = hm["dm_vs_naive"]["p_a_better"], hm["direction_test"]["p_value"]
        tests = f"DM p {_fmt_p(p_dm)}, direction test p {_fmt_p(p_dir)}"
        acc = (f"accuracy {d['accuracy']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}] vs "
               f"always-up {d['up_rate']:.3f}")
        if "ceiling" in hm:
            acc += f", ceiling {hm['ceiling']['accuracy']:.3f}"
        if name == "naive":
            continue
        verdict = "beats" if m["beats_naive"] else "does not beat"
        lines.append(f"{name} {verdict} the naive baseline at h={h} ({tests}); {acc}; "
                     f"grade shown {m['grade']['shown']} (rubric {m['grade']['computed']}).")
    e = result.get("ensemble", {})
    if e.get("best_single") and e.get("vs_best_single"):
        h = next(iter(e["vs_best_single"]))
        v = e["vs_best_single"][h]
        better = v["p_ensemble_better"] is not None and v["p_ensemble_better"] < result["alpha"]
        lines.append(f"The ensemble ({e['method']} of {', '.join(e['candidates'])}) "
                     f"{'beats' if better else 'does not beat'} the best single model "
                     f"({e['best_single']}) at h={h} (DM p {_fmt_p(v['p_ensemble_better'])}).")
    return lines


def _fmt_p(p: Any) -> str:
    """"= 0.123", "< 0.001" or "n/a": ready to follow "p"."""
    if p is None:
        return "n/a"
    p = float(p)
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


# --------------------------------------------------------------------------- entry point


def evaluate_predictions(predictions: str | Path | Iterable[str | Path]
                         | Mapping[str, ModelPredictions],
                         frames: Mapping[str, pd.DataFrame] | None = None,
                         audit_passed: Any = None, ceiling: Any = None, *,
                         cost_bps: float = 5.0, slippage_bps: float = 0.0,
                         alpha: float = 0.05, ensemble: ens.Method | None = "stacking",
                         long_only: bool = False, label: str = "",
                         models: Sequence[str] | None = None) -> dict:
    """Evaluate a set of prediction files (files, folders searched for
    ``**/predictions.parquet``, or an already loaded set) and return a JSON-ready dict.

    `frames` (symbol -> OHLCV) lets the backtest fill at the next bar's open; without it the
    next close from the prediction files is used. `audit_passed` is a bool, an `AuditReport`
    or a dict with ``passed`` (None = not run, which caps every grade at F). `ceiling` is a
    `SyntheticUniverse` (exact h = 1 ceiling on the test bars) or a mapping horizon ->
    accuracy. `ensemble` is ``"stacking"``, ``"inverse_mse"`` or None. `models` restricts
    the evaluation to the named models."""
    alpha = check_alpha(alpha)
    loaded = dict(predictions) if isinstance(predictions, Mapping) \
        else load_prediction_set(predictions)
    if models:
        unknown = [m for m in models if m not in loaded]
        if unknown:
            raise EvaluationInputError(f"models: {unknown} not in the predictions "
                                       f"(have {sorted(loaded)})")
        loaded = {m: loaded[m] for m in models}
    if not loaded:
        raise EvaluationInputError("predictions: no model to evaluate")
    audit, audit_status = _audit_flag(audit_passed)
    warnings: list[str] = []
    record: dict = {}
    if ensemble:
        if ensemble not in ("stacking", "inverse_mse"):
            raise EvaluationInputError(f"ensemble: must be 'stacking', 'inverse_mse' or None, "
                                       f"got {ensemble!r}")
        pred, record = _ensemble_section(loaded, ensemble)
        if pred is not None:
            loaded = {**loaded, ens.NAME: pred}
            if not record["isolation_check"]["passed"]:
                warnings.append("ensemble weights changed when test rows were poisoned: "
                                + record["isolation_check"]["detail"])
    result_models = {name: evaluate_model(p, frames=frames, audit_passed=audit,
                                          ceiling=ceiling, cost_bps=cost_bps,
                                          slippage_bps=slippage_bps, alpha=alpha,
                                          long_only=long_only)
                     for name, p in loaded.items()}
    any_test = pd.concat([p.split("test")[["fold", "symbol", "date"]] for p in loaded.values()])
    folds = sorted(int(f) for f in any_test["fold"].unique())
    fills = {m["backtest"]["fill"] for m in result_models.values()}
    if "next_close" in fills:
        warnings.append("no OHLCV bars given (or some symbols missing): the backtest fills at "
                        "the next close from the prediction files")
    reference = max(loaded.values(), key=lambda p: len(p.split("test"))).split("test")
    h0 = min(h for p in loaded.values() for h in p.horizons)
    bh = None
    if f"y_{h0}" in reference:
        bh = trade_forecasts(reference.assign(_f=1.0), "_f", frames, cost_bps=cost_bps,
                             slippage_bps=slippage_bps, buy_and_hold=True).to_dict()
    pairwise = pairwise_tests(loaded, alpha) if len(loaded) > 1 else {}
    if record.get("best_single") and ens.NAME in result_models:
        record["vs_best_single"] = _vs_best_single(result_models, pairwise, record)
    result = {
        "label": label, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "alpha": alpha, "cost_bps": cost_bps, "slippage_bps": slippage_bps,
        "long_only": long_only, "tie": TIE,
        "audit": {"passed": audit, "status": audit_status},
        "data": {"symbols": sorted(any_test["symbol"].unique().tolist()), "folds": folds,
                 "n_folds": len(folds), "test_start": str(any_test["date"].min().date()),
                 "test_end": str(any_test["date"].max().date()),
                 "models": sorted(loaded), "files": sum(len(p.files) for p in loaded.values()),
                 "synthetic": ceiling is not None},
        "models": result_models, "buy_and_hold": bh, "pairwise": pairwise,
        "ensemble": record, "warnings": warnings,
    }
    result["leaderboard"] = _leaderboard(result_models)
    result["summary"] = _summary(result)
    return jsonable(result)
