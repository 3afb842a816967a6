"""Option pricing speed: PINN vs vectorised closed form vs QuantLib, plus serving latency.

Run: ``python -m benchmarks.options [--n 100000] [--accuracy]``. Prints a table and writes
``benchmarks/results/options.json`` with the environment (threads, CPUs, MALLOC_*/OMP_* vars,
load average) because figures on shared cores move with the load.

For fast small-MLP inference on CPU set, before starting Python::

    export MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 \\
           MALLOC_TOP_PAD_=536870912 OMP_WAIT_POLICY=PASSIVE
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.common import environment as common_environment
from causalcast.io import atomic_write_json
from causalcast.options.black_scholes import bsm_greeks, bsm_price
from causalcast.options.inputs import as_inputs
from causalcast.options.pricer import load_models, price_options
from causalcast.options.sampling import uniform_box

RESULTS = Path(__file__).resolve().parent / "results" / "options.json"


def _time(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times)}


def environment() -> dict[str, Any]:
    return {**common_environment(), "load_average": os.getloadavg()}


def run(n: int, n_ql_analytic: int, n_ql_crr: int, accuracy: bool) -> dict[str, Any]:
    from causalcast.options.quantlib_ref import quantlib_price

    models = load_models()
    p = uniform_box(n, np.random.default_rng(7))
    spot, k = p["m"] * 100.0, 100.0
    args = (spot, k, p["tau"], p["sigma"], p["rate"], p["div"])
    rows: dict[str, dict[str, Any]] = {}

    def add(name: str, n_opts: int, timing: dict[str, float], note: str = "") -> None:
        rows[name] = {**timing, "options": n_opts, "options_per_s": n_opts / timing["min_s"],
                      "note": note}

    add("pinn european, price (call+put)", 2 * n, _time(lambda: price_options(
        *args, kind="both", greeks=False, models=models), 7), f"{n} rows, one batch")
    from causalcast.options.pricer import pinn_greeks_autograd

    x_all = as_inputs(*args)
    add("pinn european, price+greeks, autograd (call+put)", 2 * n, _time(
        lambda: pinn_greeks_autograd(models, x_all, None, "european"), 3),
        "torch double backward (the reference)")
    add("pinn european, price+greeks, jets (call+put)", 2 * n, _time(
        lambda: models.european_jet.network_greeks(x_all, None), 3),
        "forward-mode jets, numpy")
    started = time.perf_counter()
    models.european_jet.tabulate()
    build_s = time.perf_counter() - started
    add("pinn european, price+greeks, table (call+put)", 2 * n, _time(lambda: price_options(
        *args, kind="both", greeks=True, models=models), 5),
        f"compiled table (what the service runs; built once in {build_s:.2f} s)")
    add("pinn american, price (call+put)", 2 * n, _time(lambda: price_options(
        *args, kind="both", style="american", greeks=False, models=models), 5), "")
    add("closed form, price (call+put)", 2 * n, _time(lambda: (
        bsm_price(*args, kind="call"), bsm_price(*args, kind="put")), 7), "numpy/scipy")
    add("closed form, price+greeks (call+put)", 2 * n, _time(lambda: (
        bsm_greeks(*args, kind="call"), bsm_greeks(*args, kind="put")), 5), "")
    sub = slice(0, n_ql_analytic)
    add("quantlib analytic european", n_ql_analytic, _time(lambda: quantlib_price(
        *(a[sub] if isinstance(a, np.ndarray) else a for a in args), kind="call"), 1),
        "per option")
    sub2 = slice(0, n_ql_crr)
    add("quantlib CRR(801) american", n_ql_crr, _time(lambda: quantlib_price(
        *(a[sub2] if isinstance(a, np.ndarray) else a for a in args), kind="put",
        style="american", engine="crr", steps=801), 1), "per option")
    # serving: 1000 options with Greeks, per call latency (tabulated, as in the service)
    lat = []
    small = tuple(a[:1000] if isinstance(a, np.ndarray) else a for a in args)
    for i in range(200):
        t = time.perf_counter()
        price_options(*small, kind="call" if i % 2 else "put", greeks=True, models=models)
        lat.append(time.perf_counter() - t)
    lat_ms = np.array(lat) * 1e3
    serving = {"batch": 1000, "calls": 200, "p50_ms": float(np.percentile(lat_ms, 50)),
               "p99_ms": float(np.percentile(lat_ms, 99)), "budget_p99_ms": 25.0}
    ratios = {
        "pinn_american_vs_quantlib_crr801_per_option": (
            rows["pinn american, price (call+put)"]["options_per_s"]
            / rows["quantlib CRR(801) american"]["options_per_s"]),
        "pinn_european_vs_quantlib_analytic_per_option": (
            rows["pinn european, price (call+put)"]["options_per_s"]
            / rows["quantlib analytic european"]["options_per_s"]),
        "pinn_european_vs_closed_form_vectorised": (
            rows["pinn european, price (call+put)"]["options_per_s"]
            / rows["closed form, price (call+put)"]["options_per_s"]),
    }
    meta = models.meta
    training = {k: {"train_seconds": v.get("train_seconds"),
                    "threads": v.get("environment", {}).get("threads")}
                for k, v in meta.items()}
    result: dict[str, Any] = {
        "n": n, "rows": rows, "ratios": ratios, "serving": serving, "training": training,
        "goals": {"pinn_100k_call_put_ms": 100.0, "american_speedup_vs_crr801": 1000.0},
        "shipped_accuracy": {k: v.get("accuracy") for k, v in meta.items()},
        "weights_sha256": models.sha256, "environment": environment(),
    }
    if accuracy:
        from causalcast.options.accuracy import american_accuracy, european_accuracy

        result["measured_accuracy"] = {
            "european": european_accuracy(models, n=100_000),
            "american_put": american_accuracy(models, "full", "put"),
            "american_call": american_accuracy(models, "full", "call"),
        }
    return result


def show(result: dict[str, Any]) -> None:
    console = Console()
    t = Table(title=f"Option pricing speed (n={result['n']}; "
              f"threads={result['environment']['torch_threads']}, "
              f"load={result['environment']['load_average'][0]:.1f})", title_justify="left")
    for col in ("method", "options", "best ms", "median ms", "options/s", "note"):
        t.add_column(col)
    for name, r in result["rows"].items():
        t.add_row(name, str(r["options"]), f"{r['min_s'] * 1e3:.1f}",
                  f"{r['median_s'] * 1e3:.1f}", f"{r['options_per_s']:.3g}", r["note"])
    console.print(t)
    for k, v in result["ratios"].items():
        console.print(f"{k}: {v:,.0f}x")
    s = result["serving"]
    console.print(f"serving: batch {s['batch']} with Greeks: p50 {s['p50_ms']:.2f} ms, "
                  f"p99 {s['p99_ms']:.2f} ms (budget {s['budget_p99_ms']} ms)")
    console.print(f"training: {result['training']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--ql-analytic", type=int, default=5_000)
    ap.add_argument("--ql-crr", type=int, default=300)
    ap.add_argument("--accuracy", action="store_true", help="also re-measure accuracy")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    result = run(a.n, a.ql_analytic, a.ql_crr, a.accuracy)
    show(result)
    atomic_write_json(a.out, result)
    Console().print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
