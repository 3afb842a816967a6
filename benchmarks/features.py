"""Feature throughput: all registered indicators for 50 symbols x 2520 bars (goal <= 1 s).

Measured in one process, single-threaded per symbol, best of `repeats` to keep the noise of a
shared machine out; the median is reported beside it."""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common import report
from causalcast.config import FeatureConfig
from causalcast.data.synthetic import make_universe
from causalcast.features.indicators import INDICATORS, build_features
from causalcast.features.pipeline import prepare_symbol

GOAL_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    universe = make_universe(args.symbols, args.bars, seed=0, mc_states=10, mc_paths=10)
    frames = list(universe.frames.items())
    cfg = FeatureConfig()

    def time_it(fn) -> list[float]:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return times

    indicators = time_it(lambda: [build_features(f) for _, f in frames])
    pipeline = time_it(lambda: [prepare_symbol(s, f, cfg) for s, f in frames])
    rows = []
    results = {}
    for name, times in (("indicators (build_features)", indicators),
                        ("features + targets (prepare_symbol)", pipeline)):
        best, median = min(times), statistics.median(times)
        results[name] = {"best_s": best, "median_s": median, "goal_s": GOAL_S,
                         "meets_goal": best <= GOAL_S}
        rows.append([name, f"{best:.3f}", f"{median:.3f}", f"{GOAL_S:.1f}",
                     "yes" if best <= GOAL_S else "NO"])
    report("features",
           f"Features: {args.symbols} symbols x {args.bars} bars, {len(INDICATORS)} indicators",
           ["stage", "best s", "median s", "goal s", "meets goal"], rows,
           {"symbols": args.symbols, "bars": args.bars, "indicators": len(INDICATORS),
            "results": results})


if __name__ == "__main__":
    main()
