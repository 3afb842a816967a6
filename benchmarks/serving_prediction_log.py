"""What the prediction log (docs/monitoring.md) costs the forecast routes: the four forecast
scenarios of `benchmarks.serving` (cached and uncached, each with the log on and off in the
same run, so both see the same machine load) and nothing else. Results go to
`benchmarks/results/serving_prediction_log.json`, leaving the full serving results as they
are. Takes the options of `benchmarks.serving` (`--seconds`, `--connections`, `--workers`,
`--home`). Needs `wrk`."""

from __future__ import annotations

import sys

from benchmarks.serving import main

if __name__ == "__main__":
    main(sys.argv[1:], name="serving_prediction_log", only="forecast")
