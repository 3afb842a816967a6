"""`evaluation.scores`: the one scorer of a job's predictions and the one "beats naive"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from causalcast.evaluation import EvaluationInputError
from causalcast.evaluation.scores import beats_naive_record, job_scores, validation_vs_naive


def _table(n: int = 200, seed: int = 0, likelihood: str = "student_t") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 0.01, (n, 2))
    mean = 0.5 * y + rng.normal(0, 0.01, (n, 2))
    table = pd.DataFrame({"symbol": np.where(np.arange(n) % 2, "A", "B"),
                          "date": pd.date_range("2020-01-01", periods=n),
                          "split": np.where(np.arange(n) < n // 2, "val", "test"),
                          "position": np.arange(n), "close": 100.0,
                          "y_1": y[:, 0], "mean_1": mean[:, 0], "scale_1": 0.01,
                          "y_3": y[:, 1], "mean_3": mean[:, 1], "scale_3": 0.02})
    table.attrs = {"likelihood": likelihood, "df": 4.0, "model": "m", "horizons": [1, 3],
                   "target_mean": [0.001, 0.0], "target_std": [0.01, 0.02]}
    return table


def test_job_scores_match_an_independent_computation():
    table = _table()
    test = table[table.split == "test"]
    scores = job_scores(table)
    y, m = test.y_1.to_numpy(), test.mean_1.to_numpy()
    hits = int(((m > 1e-6 * 0.01) == (y > 0)).sum())
    assert scores["n"] == 100 and scores["dir_acc"] == hits / 100
    assert scores["binom_p"] == pytest.approx(
        stats.binomtest(hits, 100, 0.5, alternative="greater").pvalue)
    q80 = stats.t.ppf(0.9, 4.0) * 0.01
    assert scores["horizons"]["1"]["coverage_80"] == np.mean(np.abs(y - m) <= q80)
    assert scores["horizons"]["1"]["mae"] == pytest.approx(np.abs(y - m).mean())
    nll = [-stats.t.logpdf((test[f"y_{h}"] - mu) / sd, 4.0, (test[f"mean_{h}"] - mu) / sd,
                           test[f"scale_{h}"] / sd).mean()
           for h, mu, sd in ((1, 0.001, 0.01), (3, 0.0, 0.02))]
    assert scores["nll"] == pytest.approx(np.mean(nll))
    gaussian = job_scores(_table(likelihood="gaussian"))
    assert gaussian["horizons"]["1"]["coverage_80"] == np.mean(
        np.abs(y - m) <= stats.norm.ppf(0.9) * 0.01)


def test_beats_naive_is_validation_mse_against_the_zero_forecast():
    table = _table()
    val = table[table.split == "val"]
    block = validation_vs_naive(table, 1)
    assert block["n"] == 100
    assert block["mse"] == pytest.approx(((val.y_1 - val.mean_1) ** 2).mean())
    assert block["naive_mse"] == pytest.approx((val.y_1 ** 2).mean())
    record = beats_naive_record(block)
    assert record == {"metric": "val_mse_h1", "split": "validation", "model": block["mse"],
                      "baseline": block["naive_mse"], "baseline_name": "naive",
                      "lower_is_better": True}
    # a forecast of (numerically) zero is the naive forecast: it does not beat it
    table["mean_1"] = 1e-12
    tied = validation_vs_naive(table, 1)
    assert tied["mse"] == tied["naive_mse"]
    assert validation_vs_naive(table[table.split == "test"], 1) is None
    assert beats_naive_record(None) is None


def test_job_scores_refuse_a_table_without_horizons_or_rows():
    table = _table()
    with pytest.raises(EvaluationInputError, match="no 'zz' rows"):
        job_scores(table, split="zz")
    table.attrs = {}
    with pytest.raises(EvaluationInputError, match="horizons"):
        job_scores(table)
