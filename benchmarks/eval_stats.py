"""Speed of the evaluation core: vectorised backtest (vs backtesting.py on the same signal)
and the significance tests over many series at once.

Run: ``python -m benchmarks.eval_stats``. Prints a table and writes
benchmarks/results/eval_stats.json with the environment (CPU count, threads, MALLOC_*/OMP_*).
Figures measured on a shared machine are provisional; re-run on an idle one.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.common import environment as common_environment
from causalcast.evaluation import backtest, diebold_mariano, pesaran_timmermann, sign_positions
from causalcast.io import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "eval_stats.json"


def best_of(fn, repeat: int = 5) -> float:
    """Best wall time in seconds over `repeat` runs (least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def environment() -> dict:
    return {**common_environment(), "load_avg": os.getloadavg()}


def _market(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    signal = sign_positions(rng.standard_normal(n))
    return open_, close, signal


def run() -> list[dict]:
    rows = []
    for n in (2_520, 252_000):
        o, c, s = _market(n)
        t = best_of(lambda o=o, c=c, s=s: backtest(s, c, o, cost_bps=5, benchmark=False))
        rows.append({"case": f"backtest, {n} bars, flip-heavy sign signal", "seconds": t,
                     "per_bar_us": 1e6 * t / n})
    try:
        import backtesting as bt
        from backtesting.test import GOOG
    except ImportError:
        bt = None
    if bt is not None:
        sig = np.sign(np.random.default_rng(1).standard_normal(len(GOOG)))
        sig[0] = 0

        class Follow(bt.Strategy):
            def init(self):
                pass

            def next(self):
                target = sig[len(self.data) - 1]
                if target != np.sign(self.position.size):
                    self.buy() if target > 0 else self.sell()

        def run_bt():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bt.Backtest(GOOG, Follow, cash=1e15, commission=5e-4,
                            exclusive_orders=True).run()

        t_bt = best_of(run_bt, repeat=3)
        t_ours = best_of(lambda: backtest(sig, GOOG["Close"].to_numpy(),
                                          GOOG["Open"].to_numpy(), cost_bps=5))
        rows.append({"case": f"backtesting.py, GOOG {len(GOOG)} bars, same kind of signal",
                     "seconds": t_bt, "per_bar_us": 1e6 * t_bt / len(GOOG)})
        rows.append({"case": f"ours, GOOG {len(GOOG)} bars (+ buy-and-hold benchmark)",
                     "seconds": t_ours, "per_bar_us": 1e6 * t_ours / len(GOOG)})
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2_520, 1_000)) ** 2, rng.standard_normal((2_520, 1_000)) ** 2
    t = best_of(lambda: diebold_mariano(a, b, h=5))
    rows.append({"case": "diebold_mariano h=5, 1000 series x 2520 obs", "seconds": t,
                 "per_bar_us": 1e6 * t / a.size})
    t = best_of(lambda: pesaran_timmermann(a - 1, b - 1))
    rows.append({"case": "pesaran_timmermann, 1000 series x 2520 obs", "seconds": t,
                 "per_bar_us": 1e6 * t / a.size})
    return rows


def main() -> None:
    rows = run()
    table = Table(title="evaluation core (best of repeats; provisional on a shared machine)")
    for col in ("case", "seconds", "µs per bar/obs"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["case"], f"{r['seconds']:.4f}", f"{r['per_bar_us']:.3f}")
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps({"rows": rows, "environment": environment()},
                                          indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
