"""On a pure random walk no model is significant more often than the test's size allows.

Eight seeds of a driftless random-walk universe (strength 0, no drift, no drift dispersion:
the naive zero-return forecast is the Bayes-optimal one), walk-forward over 5 folds with ridge
and drift. Each test against the naive baseline (DM, date-clustered direction test) and the
promotion criterion (both reject) may reject at 5 % in at most 2 of the 8 seeds per model and
horizon: under a correct 5 % test, P(>= 3 of 8) = 0.6 %. The seeds are fixed, so the test is
deterministic; `python -m benchmarks.eval_random_walk` runs the same study over more seeds.
"""

from __future__ import annotations

import pytest

from causalcast.data.sources import write_ohlcv
from causalcast.data.synthetic import make_universe
from causalcast.evaluation.walkforward import evaluate_predictions
from causalcast.training.job import JobSpec, run_job

SEEDS = range(100, 108)
MODELS = ("ridge", "drift")
HORIZONS = (1, 5)
MAX_REJECTIONS = 2


def _random_walk_result(seed: int, root) -> dict:
    universe = make_universe(4, 1000, strength=0.0, seed=seed, annual_drift=0.0,
                             drift_dispersion=0.0, mc_states=5, mc_paths=5)
    data = root / "data"
    write_ohlcv(universe.frames, data, fmt="parquet")
    for model in MODELS:
        for fold in range(5):
            r = run_job(JobSpec(model=model, data=str(data), out_dir=str(root / "out"),
                                n_folds=5, fold=fold, horizons=HORIZONS, lookback=12,
                                seed=seed, threads=1))
            assert r.status == "ok", r.traceback
    return evaluate_predictions(root / "out", universe.frames, audit_passed=True,
                                ceiling=universe, ensemble=None)


@pytest.mark.slow
def test_no_model_is_significant_on_a_random_walk_beyond_the_tests_size(tmp_path):
    counts: dict[tuple[str, str, int], int] = {}
    for seed in SEEDS:
        result = _random_walk_result(seed, tmp_path / str(seed))
        for model in MODELS:
            m = result["models"][model]
            assert m["metrics"]["1"]["ceiling"]["accuracy"] < 0.505  # nothing to find
            for h in HORIZONS:
                hm = m["metrics"][str(h)]
                rejected = {"dm": hm["dm_vs_naive"]["p_a_better"] < 0.05,
                            "direction": hm["direction_test"]["p_value"] < 0.05}
                rejected["both"] = rejected["dm"] and rejected["direction"]
                for test, flag in rejected.items():
                    counts[(model, test, h)] = counts.get((model, test, h), 0) + int(flag)
            assert m["grade"]["shown"] == "F"
    assert counts and max(counts.values()) <= MAX_REJECTIONS, counts
