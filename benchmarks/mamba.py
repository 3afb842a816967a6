"""causalcast's Mamba block vs mambapy, forward + backward, over a grid of shapes, quiet and
under load (issue 18 item 3).

    python -m benchmarks.mamba [--quick] [--threads 2] [--conditions quiet,loaded] [--tune]

Grid: B in {8, 16, 32}, d_model in {16, 32, 48, 64}, N in {8, 16}, L in {64, 128, 256, 512,
1024}, one residual block each side (expand 2, d_conv 4), the same input. Each shape: one
warm-up per side, then up to `--reps` interleaved pairs (ours, mambapy, ours, ...) while the
shape's time budget lasts, and the ratio of medians (mambapy time / ours; > 1 means ours is
faster). "loaded" starts one CPU-bound process (a busy Python loop) from this benchmark for
the duration of that grid and stops it afterwards. Prints one grid per condition and writes
benchmarks/results/mamba.json with the environment and the load average before and after.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse
import itertools
import statistics
import subprocess
import sys
import time

import torch
from rich.console import Console

from benchmarks.common import RESULTS, environment
from causalcast.cli.common import table
from causalcast.io import atomic_write_json
from causalcast.models.mamba import MambaConfig, ResidualBlock
from causalcast.models.scan import tune_selective_scan
from causalcast.models.scan_plan import plan_for

BATCHES = (8, 16, 32)
D_MODELS = (16, 32, 48, 64)
STATES = (8, 16)
LENGTHS = (64, 128, 256, 512, 1024)
QUICK = {"batches": (8, 32), "d_models": (16, 64), "states": (16,), "lengths": (64, 256, 1024)}
BUDGET_S = 1.0          # per shape and side, after the warm-up: keeps the full grid short
console = Console()


def _spinner() -> subprocess.Popen:
    """One competing CPU-bound process (pure Python busy loop, one core)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _step(model: torch.nn.Module, x: torch.Tensor) -> float:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    model(x).square().mean().backward()
    return time.perf_counter() - start


def measure(batch: int, d_model: int, state: int, length: int, reps: int,
            tune: bool) -> dict:
    """Interleaved fwd+bwd timings of one block each; medians and their ratio."""
    from mambapy.mamba import Mamba
    from mambapy.mamba import MambaConfig as PyConfig

    torch.manual_seed(0)
    ours = ResidualBlock(MambaConfig(n_features=1, n_horizons=1, lookback=length,
                                     d_model=d_model, n_layers=1, d_state=state, expand=2,
                                     d_conv=4))
    theirs = Mamba(PyConfig(d_model=d_model, n_layers=1, d_state=state, expand_factor=2,
                            d_conv=4))
    x = torch.randn(batch, length, d_model)
    if tune:
        tune_selective_scan(batch, length, 2 * d_model, state, reps=2)
    _step(ours, x), _step(theirs, x)                                     # warm-up
    t_ours, t_theirs = [], []
    spent = 0.0
    while len(t_ours) < reps and (len(t_ours) < 1 or spent < 2 * BUDGET_S):
        if len(t_ours) % 2:                     # alternate who goes first
            t_theirs.append(_step(theirs, x))
            t_ours.append(_step(ours, x))
        else:
            t_ours.append(_step(ours, x))
            t_theirs.append(_step(theirs, x))
        spent += t_ours[-1] + t_theirs[-1]
    ours_ms = statistics.median(t_ours) * 1e3
    theirs_ms = statistics.median(t_theirs) * 1e3
    plan = plan_for(length, batch * 2 * d_model * state, torch.float32)
    return {"batch": batch, "d_model": d_model, "d_state": state, "length": length,
            "plan": {"chunk": plan.chunk, "threads": plan.threads}, "pairs": len(t_ours),
            "ours_ms": ours_ms, "mambapy_ms": theirs_ms, "ratio": theirs_ms / ours_ms}


def run_grid(condition: str, axes: dict, reps: int, tune: bool) -> dict:
    spinner = _spinner() if condition == "loaded" else None
    load_before = os.getloadavg()
    rows = []
    try:
        if spinner is not None:
            time.sleep(0.5)                                    # let it reach the CPU
        for b, d, n in itertools.product(axes["batches"], axes["d_models"], axes["states"]):
            for length in axes["lengths"]:
                rows.append(measure(b, d, n, length, reps, tune))
            console.print(f"  {condition}: B={b} d={d} N={n} done "
                          f"(load {os.getloadavg()[0]:.1f})", highlight=False)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    ratios = [r["ratio"] for r in rows]
    cpus = os.cpu_count() or 1
    outside = load_before[0] > 0.5 * cpus
    return {"condition": condition, "competing_process": spinner is not None,
            "outside_load": (f"load average {load_before[0]:.1f} on {cpus} CPUs before this "
                             f"grid: other processes were running, not only this benchmark"
                             if outside else "none seen"),
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "rows": rows, "min_ratio": min(ratios), "median_ratio": statistics.median(ratios),
            "shapes_below_1": [f"B={r['batch']} d={r['d_model']} N={r['d_state']} "
                               f"L={r['length']}: {r['ratio']:.2f}"
                               for r in rows if r["ratio"] < 1.0]}


def print_grid(grid: dict, lengths: tuple[int, ...]) -> None:
    cells: dict[tuple[int, int, int], dict[int, float]] = {}
    for r in grid["rows"]:
        cells.setdefault((r["batch"], r["d_model"], r["d_state"]), {})[r["length"]] = r["ratio"]
    console.print(table(
        f"{grid['condition']}: mambapy / causalcast time, 1 block fwd+bwd; min "
        f"{grid['min_ratio']:.2f}, median {grid['median_ratio']:.2f}, load "
        f"{grid['load_average_before'][0]:.1f}",
        ["B", "d_model", "N", *(f"L={n}" for n in lengths)],
        [[b, d, n, *(f"{row[length]:.2f}" for length in lengths)]
         for (b, d, n), row in cells.items()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"subset {QUICK}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3, help="most interleaved pairs per shape")
    parser.add_argument("--conditions", default="quiet,loaded")
    parser.add_argument("--tune", action="store_true",
                        help="autotune and cache the scan plan of each shape first")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    axes = QUICK if args.quick else {"batches": BATCHES, "d_models": D_MODELS,
                                     "states": STATES, "lengths": LENGTHS}
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    for c in conditions:
        if c not in ("quiet", "loaded"):
            parser.error(f"--conditions: unknown condition {c!r} (quiet, loaded)")
    env = environment()
    console.print(f"torch {env['torch']}, {env['torch_threads']} threads, {env['cpu_count']} "
                  f"CPUs, load {os.getloadavg()}")
    start = time.perf_counter()
    grids = {}
    for condition in conditions:
        grids[condition] = run_grid(condition, axes, args.reps, args.tune)
        print_grid(grids[condition], axes["lengths"])
    out = {"benchmark": "mamba", "environment": env, "quick": args.quick, "tuned": args.tune,
           "axes": {k: list(v) for k, v in axes.items()}, "expand": 2, "d_conv": 4,
           "blocks": 1, "goal_ratio": 1.0,
           "summary": {c: {k: v for k, v in g.items() if k != "rows"} for c, g in grids.items()},
           **{f"{c}_rows": g["rows"] for c, g in grids.items()},
           "seconds": time.perf_counter() - start, "load_average_at_end": os.getloadavg()}
    path = RESULTS / "mamba.json"
    atomic_write_json(path, out)
    console.print(f"wrote {path} in {out['seconds']:.0f} s")


if __name__ == "__main__":
    main()
