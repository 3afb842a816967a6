"""Size of the Diebold-Mariano test under the null, by long-run variance rule.

The loss differential of optimal h-step forecasts is MA(h-1). This simulates 4000 such series
with mean zero (the null holds) for several n and h and reports how often each variant of
`diebold_mariano` rejects at 5 %: the rectangular ("uniform") kernel used by default and the
Newey-West (Bartlett) kernel, each with and without the HLN correction. It is the evidence
behind the default kernel (docs/evaluation.md, Scoring a forecast > Significance).

Run: ``python -m benchmarks.eval_dm_size`` (about 10 s); writes
benchmarks/results/eval_dm_size.json. Deterministic for a given seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from causalcast.evaluation import diebold_mariano, rejection_rate
from causalcast.io import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "eval_dm_size.json"
VARIANTS = (("uniform", True), ("uniform", False), ("bartlett", True), ("bartlett", False))


def ma_differential(n: int, h: int, k: int, rng: np.random.Generator) -> np.ndarray:
    e = rng.standard_normal((n + h - 1, k))
    return np.lib.stride_tricks.sliding_window_view(e, h, axis=0).sum(axis=-1)[:n]


def run(series: int = 4000, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for n in (100, 250, 1000):
        for h in (1, 2, 5, 10, 20):
            d = ma_differential(n, h, series, rng)
            zero = np.zeros_like(d)
            row = {"n": n, "h": h}
            for kernel, hln in VARIANTS:
                p = diebold_mariano(d, zero, h, kernel=kernel, hln=hln).p_value
                row[f"{kernel}{'+hln' if hln else ''}"] = rejection_rate(p, 0.05)
            rows.append(row)
    return rows


def main() -> None:
    rows = run()
    names = [f"{k}{'+hln' if h else ''}" for k, h in VARIANTS]
    table = Table(title="DM rejection rate at 5 % under the null (4000 MA(h-1) series)")
    for col in ("n", "h", *names):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["n"]), str(r["h"]), *(f"{r[c]:.3f}" for c in names))
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps({"rows": rows, "series": 4000, "seed": 0}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
