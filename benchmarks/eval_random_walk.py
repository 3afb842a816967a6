"""Size of the walk-forward tests against the naive baseline on pure random walks.

Simulates driftless random-walk universes (strength 0, no drift, no drift dispersion: the
zero-return forecast is optimal, any "skill" is false), trains ridge and drift over 5
walk-forward folds with `run_job`, evaluates the prediction files with
`evaluate_predictions`, and reports how often each 5 % test rejects: Diebold-Mariano against
naive (one-sided), the date-clustered direction test (`evaluation.panel`), the textbook
Pesaran-Timmermann test on pooled rows, and the promotion criterion (DM and direction both).
It is the evidence behind docs/evaluation.md > "Why the tests aggregate by date".

Run: ``python -m benchmarks.eval_random_walk [SEEDS]`` (60 seeds: about 5 min on 2 shared cores);
writes benchmarks/results/eval_random_walk.json. Deterministic for given seeds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import report
from causalcast.data.sources import write_ohlcv
from causalcast.data.synthetic import make_universe
from causalcast.evaluation.walkforward import evaluate_predictions
from causalcast.training.job import JobSpec, run_job

MODELS = ("ridge", "drift")
HORIZONS = (1, 5)
TESTS = ("dm", "direction", "pt_pooled", "both")


def one_seed(seed: int, n_symbols: int = 4, n_bars: int = 1000) -> dict[tuple[str, int], dict]:
    universe = make_universe(n_symbols, n_bars, strength=0.0, seed=seed, annual_drift=0.0,
                             drift_dispersion=0.0, mc_states=5, mc_paths=5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_ohlcv(universe.frames, root / "data", fmt="parquet")
        for model in MODELS:
            for fold in range(5):
                r = run_job(JobSpec(model=model, data=str(root / "data"),
                                    out_dir=str(root / "out"), n_folds=5, fold=fold,
                                    horizons=HORIZONS, lookback=12, seed=seed, threads=1))
                if r.status != "ok":
                    raise RuntimeError(r.error)
        result = evaluate_predictions(root / "out", universe.frames, audit_passed=True,
                                      ensemble=None)
    out = {}
    for model in MODELS:
        for h in HORIZONS:
            hm = result["models"][model]["metrics"][str(h)]
            p = {"dm": hm["dm_vs_naive"]["p_a_better"],
                 "direction": hm["direction_test"]["p_value"],
                 "pt_pooled": hm["pt_pooled"]["p_value"]}
            p["both"] = max(p["dm"], p["direction"])
            out[(model, h)] = p
    return out


def main() -> None:
    n_seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    seeds = range(100, 100 + n_seeds)
    started = time.perf_counter()
    p_values: dict[tuple[str, int], dict[str, list[float]]] = {
        (m, h): {t: [] for t in TESTS} for m in MODELS for h in HORIZONS}
    for seed in seeds:
        for key, p in one_seed(seed).items():
            for t in TESTS:
                p_values[key][t].append(p[t])
    rows, payload = [], []
    for (model, h), by_test in p_values.items():
        rates = {t: float(np.mean(np.array(v) < 0.05)) for t, v in by_test.items()}
        rows.append([model, h, *(f"{100 * rates[t]:.1f} %" for t in TESTS)])
        payload.append({"model": model, "h": h, "rejection_rate_5pct": rates,
                        "p_values": by_test})
    report("eval_random_walk",
           f"5 % rejection rates on {n_seeds} random-walk universes (4 symbols x 1000 bars, "
           f"5 folds)", ["model", "h", "DM vs naive", "direction (clustered)", "PT (pooled)",
                         "DM and direction"], rows,
           {"seeds": list(seeds), "n_symbols": 4, "n_bars": 1000, "folds": 5,
            "seconds": round(time.perf_counter() - started, 1), "results": payload})


if __name__ == "__main__":
    main()
