"""The predictions file: the contract between training and evaluation."""

from __future__ import annotations

import numpy as np

from causalcast.data.resolve import resolve_source
from causalcast.training.job import JobSpec, run_job
from causalcast.training.predictions import load_predictions


def test_job_writes_val_and_test_predictions_that_match_the_bars(tmp_path):
    result = run_job(JobSpec(model="ridge", data="synthetic:2,700,0.325,3",
                             out_dir=str(tmp_path), horizons=(1, 5), lookback=20))
    assert result.status == "ok", result.error
    table = load_predictions(result.predictions)
    assert table.attrs["horizons"] == [1, 5] and table.attrs["likelihood"] in (
        "student_t", "gaussian")
    assert set(table["split"]) == {"val", "test"}
    frames, _ = resolve_source("synthetic:2,700,0.325,3")
    for symbol, part in table.groupby("symbol"):
        close = frames[symbol]["close"].to_numpy()
        pos = part["position"].to_numpy()
        assert (frames[symbol].index[pos] == part["date"].to_numpy()).all()
        np.testing.assert_allclose(part["close"], close[pos])
        np.testing.assert_allclose(part["y_5"], np.log(close[pos + 5] / close[pos]), rtol=1e-5)
        assert (part["scale_1"] > 0).all()
    # Validation comes strictly before test for every symbol (purged).
    val_end = table[table.split == "val"].groupby("symbol")["position"].max()
    test_start = table[table.split == "test"].groupby("symbol")["position"].min()
    assert ((test_start - val_end) > 5).all()
