"""Options analytics speed: American implied vols for a chain against QuantLib's own solver,
the SVI surface fit, 100 strategy evaluations, and European IV against one pricing pass.

Run: ``python -m benchmarks.options_analytics [--quotes 2000] [--ql-quotes 100]``. Prints a
table and writes ``benchmarks/results/options_analytics.json``. QuantLib's American implied
volatility costs tens of milliseconds per quote, so it is timed on ``--ql-quotes`` quotes of
the same chain and its per-quote time scaled to the chain (stated in the output); every
American price is QuantLib's finite-difference price at a known σ, and errors are against it.
The whole chain (network quotes plus finite-difference fallbacks), the network quotes alone and
the fallback quotes alone are timed separately; one warm-up call (weights, numba's
compiled-kernel cache) is untimed. σ errors are over answered quotes, against the σ that
QuantLib priced each quote at (QuantLib's FD(200) price error is part of them); refusals are
counted per reason.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

import numpy as np

from benchmarks.common import environment, report
from causalcast.options.analytics.american_iv import NETWORK, american_iv
from causalcast.options.analytics.chain import validate_chain
from causalcast.options.analytics.iv import european_iv
from causalcast.options.analytics.legs import preset_legs
from causalcast.options.analytics.strategy import Market, evaluate, standard_laws
from causalcast.options.analytics.surface import fit_surface
from causalcast.options.analytics.synthetic import synthetic_chain
from causalcast.options.black_scholes import bsm_price
from causalcast.options.quantlib_ref import _env, quantlib_days, quantlib_price

FD_STEPS = 200


def _american_chain(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    expiries = np.array([14, 30, 60, 91, 182, 273, 365, 547]) / 365.0
    per = n // (2 * len(expiries))
    tau = np.repeat(expiries, 2 * per)
    # listed strikes within ±2 standard deviations of the spot at each expiry
    z = np.tile(np.repeat(np.linspace(-2.0, 2.0, per), 2), len(expiries))
    moneyness = np.exp(z * 0.25 * np.sqrt(tau))
    kind = np.tile(["call", "put"], per * len(expiries))
    sigma = 0.2 + 0.03 * np.abs(z) + 0.05 * rng.random(tau.size)
    return {"strike": 100.0 / moneyness, "tau": tau, "sigma": sigma, "kind": kind,
            "rate": np.full(tau.size, 0.04), "div": np.full(tau.size, 0.015)}


def _quantlib_iv(c: dict[str, np.ndarray], price: np.ndarray, idx: np.ndarray) -> np.ndarray:
    env = _env()
    ql = env.ql
    engine = ql.FdBlackScholesVanillaEngine(env.process, FD_STEPS, FD_STEPS, 0)
    out = np.empty(idx.size)
    for j, i in enumerate(idx):
        env.spot.setValue(100.0)
        env.rate.setValue(float(c["rate"][i]))
        env.div.setValue(float(c["div"][i]))
        maturity = env.today + int(quantlib_days(c["tau"][i]))
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if c["kind"][i] == "call"
                                       else ql.Option.Put, float(c["strike"][i]))
        option = ql.VanillaOption(payoff, ql.AmericanExercise(env.today, maturity))
        option.setPricingEngine(engine)
        try:
            out[j] = option.impliedVolatility(float(price[i]), env.process, 1e-6, 100, 1e-3,
                                              4.0)
        except RuntimeError:   # QuantLib refuses the quote (root not bracketed)
            out[j] = np.nan
    return out


def run(n_quotes: int, n_ql: int) -> dict[str, Any]:
    rng = np.random.default_rng(11)
    rows: dict[str, dict[str, Any]] = {}
    c = _american_chain(n_quotes, rng)
    tau = quantlib_days(c["tau"]) / 365.0
    c["tau"] = tau
    price = quantlib_price(100.0, c["strike"], tau, c["sigma"], c["rate"], c["div"], c["kind"],
                           "american", "fd", FD_STEPS)
    args = (price, 100.0, c["strike"], tau, c["rate"], c["div"], c["kind"])
    one_expiry = np.flatnonzero(tau == tau[0])
    # Warm-up outside the timing: weights loaded, compiled FD kernels loaded from numba's cache
    # (about a second, once per process), on a few quotes plus one outside the trained domain
    # (τ = 3 years), so that the finite-difference fallback's kernel is loaded too.
    american_iv(*(a if np.ndim(a) == 0 else a[::97] for a in args))
    american_iv(20.0, 100.0, 110.0, 3.0, 0.03, 0.0, "put")
    subsets = {"all": np.arange(price.size), "one_expiry": one_expiry}
    for name, polish, which in (("american_iv_network", False, "all"),
                                ("american_iv_network_fd_polish_one_expiry", True, "one_expiry"),
                                ("american_iv_network_quotes_only", False, "network"),
                                ("american_iv_fallback_quotes_only", False, "fallback")):
        idx = subsets[which]
        t0 = time.perf_counter()
        res = american_iv(*(a if np.ndim(a) == 0 else a[idx] for a in args), polish=polish)
        elapsed = time.perf_counter() - t0
        if which == "all":   # the fallback: every quote the network did not answer
            subsets["network"] = np.flatnonzero(res.method == NETWORK)
            subsets["fallback"] = np.flatnonzero(res.method != NETWORK)
        err = np.abs(res.iv - c["sigma"][idx])
        answered = int(res.ok.sum())
        reasons = Counter(str(r) for r in res.reason[~res.ok])
        rows[name] = {
            "quotes": int(idx.size), "seconds": elapsed,
            "network_share": float(np.mean(res.method == NETWORK)),
            "fd_answered": int((res.ok & (res.method != NETWORK)).sum()),
            "max_sigma_error": float(np.nanmax(err)) if answered else None,
            "median_sigma_error": float(np.nanmedian(err)) if answered else None,
            "refused": int((~res.ok).sum()), "refused_by_reason": dict(reasons)}
    idx = rng.choice(price.size, size=min(n_ql, price.size), replace=False)
    t0 = time.perf_counter()
    ql_iv = _quantlib_iv(c, price, idx)
    ql_s = time.perf_counter() - t0
    rows["american_iv_quantlib"] = {
        "quotes": int(idx.size), "seconds": ql_s,
        "seconds_scaled_to_chain": ql_s / idx.size * price.size,
        "max_sigma_error": float(np.nanmax(np.abs(ql_iv - c["sigma"][idx]))),
        "refused": int(np.isnan(ql_iv).sum())}
    chain = validate_chain(synthetic_chain())
    t0 = time.perf_counter()
    surf = fit_surface(chain, rate=0.04)
    rows["surface_fit"] = {"quotes": len(chain.frame), "expiries": len(surf.slices),
                           "seconds": time.perf_counter() - t0}
    mk = Market(100.0, 0.04, surface=surf)
    laws = standard_laws(mk, 0.2, {"mu": 0.0, "sigma": 0.1, "nu": 4.0, "horizon": 0.25})
    t0 = time.perf_counter()
    for i in range(100):
        lo = 80 + i % 5
        evaluate(preset_legs("iron-condor", [lo, lo + 10, lo + 25, lo + 35], 91 / 365), mk,
                 laws, target=1.0)
    rows["strategy_x100"] = {"evaluations": 100, "seconds": time.perf_counter() - t0,
                             "laws": ["lognormal", "market", "model"]}
    n = 100_000
    s = np.exp(rng.uniform(np.log(0.05), np.log(1.5), n))
    t = np.exp(rng.uniform(np.log(7 / 365), np.log(3), n))
    k = 100 * np.exp(rng.uniform(-2, 2, n) * s * np.sqrt(t))
    kinds = np.where(rng.random(n) < 0.5, "call", "put")
    p = bsm_price(100.0, k, t, s, 0.04, 0.01, kinds)
    t_price = min(_timed(lambda: bsm_price(100.0, k, t, s, 0.04, 0.01, kinds)) for _ in range(3))
    t_iv = min(_timed(lambda: european_iv(p, 100.0, k, t, 0.04, 0.01, kinds)) for _ in range(3))
    rows["european_iv_100k"] = {"quotes": n, "seconds": t_iv, "pricing_pass_seconds": t_price,
                                "ratio_to_pricing_pass": t_iv / t_price}
    net = rows["american_iv_network"]
    pol = rows["american_iv_network_fd_polish_one_expiry"]
    ql = rows["american_iv_quantlib"]["seconds_scaled_to_chain"]
    net_only = rows["american_iv_network_quotes_only"]
    fallback = rows["american_iv_fallback_quotes_only"]
    summary = {"american_speedup_whole_chain": ql / net["seconds"],
               "american_fallback_seconds": fallback["seconds"],
               "american_fallback_quotes": fallback["quotes"],
               "american_speedup_network_quotes_only": ql / price.size * net_only["quotes"]
               / net_only["seconds"],
               "american_speedup_with_fd_polish": ql / (pol["seconds"] / pol["quotes"]
                                                        * price.size),
               "goal_american": ">= 100x faster than QuantLib at <= 1e-4 sigma error",
               "european_iv_ratio": rows["european_iv_100k"]["ratio_to_pricing_pass"],
               "goal_european": "<= 10x one closed-form pricing pass"}
    return {"rows": rows, "summary": summary, "environment": environment()}


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quotes", type=int, default=2000)
    parser.add_argument("--ql-quotes", type=int, default=100)
    a = parser.parse_args()
    payload = run(a.quotes, a.ql_quotes)
    table_rows = [[name, r.get("quotes", r.get("evaluations", "")), f"{r['seconds']:.4f}",
                   f"{r.get('max_sigma_error') or float('nan'):.2e}"]
                  for name, r in payload["rows"].items()]
    table_rows += [[k, "", f"{v:.1f}" if isinstance(v, float) else v, ""]
                   for k, v in payload["summary"].items()]
    report("options_analytics", "Options analytics", ["case", "n", "seconds / value",
                                                     "max σ error"], table_rows, payload)


if __name__ == "__main__":
    main()
