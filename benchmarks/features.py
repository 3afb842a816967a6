"""Feature throughput: all registered indicators for 50 symbols x 2520 bars (goal <= 0.5 s),
with a plain pandas rolling-window baseline timed in the same run.

    python -m benchmarks.features [--symbols 50] [--bars 2520] [--repeats 7]

The baseline is what the same number of columns costs the plain pandas way: per symbol, one
`close.rolling(w).mean()`, `.std()` or `.max()` per indicator (windows 5, 10, 20, 60 in turn)
collected into a DataFrame. Both are timed interleaved (ours, baseline, ours, ...), so the
ratio ours / baseline survives a loaded machine better than either time alone; best and
median are reported, and the load average before and after is recorded."""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import pandas as pd

from benchmarks.common import report
from causalcast.config import FeatureConfig
from causalcast.data.synthetic import make_universe
from causalcast.features.indicators import INDICATORS, build_features
from causalcast.features.pipeline import prepare_symbol

GOAL_S = 0.5
BASELINE_WINDOWS = (5, 10, 20, 60)


def pandas_baseline(ohlcv: pd.DataFrame, columns: int) -> pd.DataFrame:
    """`columns` plain pandas rolling-window features of the close."""
    close = ohlcv["close"].astype(float)
    kinds = itertools.cycle(("mean", "std", "max"))
    windows = itertools.cycle(BASELINE_WINDOWS)
    out = {}
    for i in range(columns):
        kind, window = next(kinds), next(windows)
        rolled = close.rolling(window)
        out[f"{kind}_{window}_{i}"] = (rolled.std(ddof=0) if kind == "std"
                                       else getattr(rolled, kind)())
    return pd.DataFrame(out, index=ohlcv.index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    universe = make_universe(args.symbols, args.bars, seed=0, mc_states=10, mc_paths=10)
    frames = list(universe.frames.items())
    cfg = FeatureConfig()
    stages = {
        "indicators (build_features)": lambda: [build_features(f) for _, f in frames],
        "features + targets (prepare_symbol)":
            lambda: [prepare_symbol(s, f, cfg) for s, f in frames],
        "pandas rolling baseline (same width)":
            lambda: [pandas_baseline(f, len(INDICATORS)) for _, f in frames],
    }
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in stages}
    for fn in stages.values():                      # warm-up: imports, caches, allocator
        fn()
    for _ in range(args.repeats):
        for name, fn in stages.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    baseline = statistics.median(times["pandas rolling baseline (same width)"])
    rows, results = [], {}
    for name, t in times.items():
        best, median = min(t), statistics.median(t)
        is_goal = name != "pandas rolling baseline (same width)"
        results[name] = {"best_s": best, "median_s": median, "times_s": t,
                         "ratio_to_baseline": median / baseline,
                         **({"goal_s": GOAL_S, "meets_goal": median <= GOAL_S} if is_goal
                            else {})}
        rows.append([name, f"{best:.3f}", f"{median:.3f}", f"{median / baseline:.2f}",
                     f"{GOAL_S:.1f}" if is_goal else "-",
                     ("yes" if median <= GOAL_S else "NO") if is_goal else "-"])
    report("features",
           f"Features: {args.symbols} symbols x {args.bars} bars, {len(INDICATORS)} indicators "
           f"(load {load_before[0]:.1f})",
           ["stage", "best s", "median s", "median / pandas baseline", "goal s", "meets goal"],
           rows,
           {"symbols": args.symbols, "bars": args.bars, "indicators": len(INDICATORS),
            "repeats": args.repeats, "load_average_before": load_before,
            "load_average_after": os.getloadavg(), "results": results})


if __name__ == "__main__":
    main()
