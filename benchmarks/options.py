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


def _bumped(args: tuple[Any, ...], kind: str, engine: str) -> dict[str, np.ndarray]:
    """Price and Greeks of QuantLib's QdFp American engine, which gives the price only, by
    bump-and-reprice: six prices an option (S ± 1 % for delta and gamma, σ + 1e-4, r + 1e-4,
    one day less to maturity for theta) — the cost a user of that engine pays for Greeks."""
    from causalcast.options.quantlib_ref import quantlib_price

    spot, strike, tau, sigma, rate, div = args
    h = 0.01 * spot

    def price(s: Any = spot, t: Any = tau, v: Any = sigma, r: Any = rate) -> np.ndarray:
        return quantlib_price(s, strike, t, v, r, div, kind, "american", engine)

    base, up, dn = price(), price(s=spot + h), price(s=spot - h)
    return {"price": base, "delta": (up - dn) / (2 * h), "gamma": (up - 2 * base + dn) / h**2,
            "vega": (price(v=sigma + 1e-4) - base) / 1e-4,
            "theta": (price(t=np.maximum(tau - 1 / 365, 1 / 365)) - base) * 365,
            "rho": (price(r=rate + 1e-4) - base) / 1e-4}


def run(n: int, n_ql_analytic: int, n_ql_crr: int, accuracy: bool, n_qdfp: int = 300,
        n_qdfp_accuracy: int = 1000) -> dict[str, Any]:
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
    add("pinn american, price+greeks (call+put)", 2 * n, _time(lambda: price_options(
        *args, kind="both", style="american", greeks=True, models=models), 5),
        "closed form + premium jets (what the service runs)")
    small_am = tuple(a[:1000] if isinstance(a, np.ndarray) else a for a in args)
    add("pinn american, price+greeks, batch 1000 puts", 1000, _time(lambda: price_options(
        *small_am, kind="put", style="american", greeks=True, models=models), 50),
        "one serving-size request")
    qd_args = tuple(a[:n_qdfp] if isinstance(a, np.ndarray) else a for a in args)
    # QuantLib prices whole days: give it whole days (the cost does not depend on it)
    qd_args = (*qd_args[:2], np.maximum(np.rint(qd_args[2] * 365), 1) / 365, *qd_args[3:])
    add("quantlib QdFp fast american, price", n_qdfp, _time(lambda: quantlib_price(
        *qd_args, kind="put", style="american", engine="qdfp-fast"), 1), "per option")
    add("quantlib QdFp fast american, price+greeks", n_qdfp, _time(
        lambda: _bumped(qd_args, "put", "qdfp-fast"), 1),
        "per option; bump-and-reprice, 6 prices (the engine gives no Greeks)")
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
    am_greeks = rows["pinn american, price+greeks (call+put)"]["options_per_s"]
    am_1000 = rows["pinn american, price+greeks, batch 1000 puts"]["options_per_s"]
    ratios = {
        "pinn_american_greeks_vs_qdfp_fast_greeks_per_option": (
            am_greeks / rows["quantlib QdFp fast american, price+greeks"]["options_per_s"]),
        "pinn_american_greeks_vs_qdfp_fast_price_only_per_option": (
            am_greeks / rows["quantlib QdFp fast american, price"]["options_per_s"]),
        "pinn_american_greeks_batch1000_vs_qdfp_fast_greeks_per_option": (
            am_1000 / rows["quantlib QdFp fast american, price+greeks"]["options_per_s"]),
        "pinn_american_greeks_batch1000_vs_qdfp_fast_price_only_per_option": (
            am_1000 / rows["quantlib QdFp fast american, price"]["options_per_s"]),
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
        "goals": {"pinn_100k_call_put_ms": 100.0, "american_speedup_vs_crr801": 1000.0,
                  "american_greeks_speedup_vs_qdfp_fast": 100.0,
                  "american_max_abs_over_K_vs_qdfp_high": 1e-4,
                  "american_mean_abs_over_K_vs_qdfp_high": 1e-5},
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
        result["american_vs_qdfp_high"] = american_vs_qdfp(models, n_qdfp_accuracy)
    return result


def american_vs_qdfp(models: Any, n: int) -> dict[str, Any]:
    """The served American price against QdFp high precision on random in-domain puts and
    calls (τ ≥ 7 days), QdFp fast's own error on the same options, and whether the served
    early-exercise boundary falls monotonically with maturity."""
    from causalcast.options.accuracy import (
        american_accuracy_qdfp,
        boundary_monotone,
        exercise_boundary,
    )

    out: dict[str, Any] = {k: american_accuracy_qdfp(models, n, kind=k) for k in ("put", "call")}
    grid = [a.ravel() for a in np.meshgrid([0.05, 0.1, 0.2, 0.4, 0.7, 1.0], [0.02, 0.05, 0.1],
                                           [0.0, 0.025, 0.05], indexing="ij")]
    out["boundary"] = boundary_monotone(exercise_boundary(models, *grid,
                                                          np.linspace(7 / 365, 2.0, 60)))
    return out


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
    qd = result.get("american_vs_qdfp_high")
    if qd:
        for kind in ("put", "call"):
            r = qd[kind]
            console.print(f"american {kind} vs QdFp high ({r['n_points']} options, tau >= 7d): "
                          f"max {r['max_abs_over_K']:.2e}*K, mean {r['mean_abs_over_K']:.2e}*K;"
                          f" QdFp fast max {r['qdfp-fast']['max_abs_over_K']:.2e}*K, mean "
                          f"{r['qdfp-fast']['mean_abs_over_K']:.2e}*K")
        console.print(f"exercise boundary monotone: {qd['boundary']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--ql-analytic", type=int, default=5_000)
    ap.add_argument("--ql-crr", type=int, default=300)
    ap.add_argument("--qdfp", type=int, default=300,
                    help="options timed with QuantLib's QdFp fast engine")
    ap.add_argument("--qdfp-accuracy", type=int, default=1000,
                    help="options per kind checked against QdFp high precision (--accuracy)")
    ap.add_argument("--accuracy", action="store_true", help="also re-measure accuracy")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    result = run(a.n, a.ql_analytic, a.ql_crr, a.accuracy, a.qdfp, a.qdfp_accuracy)
    show(result)
    atomic_write_json(a.out, result)
    Console().print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
