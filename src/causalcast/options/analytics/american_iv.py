"""American implied volatility: Newton on the trained network, finite differences outside it.

Inside the trained domain the American price is the exact European closed form plus the
served path's early-exercise premium network (`pricer.american_premium`, trained on
finite-difference American − European premia), floored at exercise value. Using the closed
form for the European part leaves only the premium's network error in the price, which is
zero for calls without dividends and small where the premium is small. Newton runs on that sum
with its σ-derivative (closed-form vega + autograd ∂premium/∂σ), bracketed by the trained
σ range [0.05, 1]; the European implied volatility of the same price is the start (an upper
bound, since the premium is ≥ 0).

Outside the trained domain (moneyness, maturity, rate, dividend yield, or a solution σ outside
the trained σ range), and where the quote's time value is below the network's own price error
(`NETWORK_PRICE_TOL`), each quote falls back to causalcast's own finite-difference American
pricer (`options.fd`, see `_fd_solve`), and its ``method`` says so and why. Quotes whose
American vega is negligible at the answer are refused with the European solver's reason
(`AMERICAN_MIN_VEGA_SIGMA`): deep in the money, a price a hair above exercise value is
reproduced by every σ up to the one where the quote leaves the exercise region.
The network's price error (up to ~2e-4·K, more for deep in-the-money puts with large premia)
would leave σ errors of 1e-3 there, so with ``polish=True`` every network answer gets
one Newton step on causalcast's finite-difference price, which is the independent check: its
residual at the network's σ is returned per quote (``fd_residual``) and, since the network σ is
already close, the one step brings σ to the FD pricer's accuracy (quadratic convergence).
The cost is one compiled PDE solve (801 × 200 grid) per quote, milliseconds each, about 100×
the network's cost per quote (`benchmarks/options_analytics.py`), so it is off by default: the
default answer is the network's, fast, with σ errors of order 1e-4 (median) near the money.
The whole chain is one batched Newton (premium and vega from `options.premium_jet`), and the
fallback prices all its unconverged quotes in one compiled call per iteration.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from causalcast.options.analytics.iv import REASON_ABOVE, REASON_VEGA, european_iv
from causalcast.options.black_scholes import _greeks
from causalcast.options.fd import FDGrid, fd_price
from causalcast.options.inputs import (
    TRAINED_DOMAIN,
    OptionInputError,
    OptionInputs,
    as_inputs,
    domain_violations,
    parse_kind,
)

REASON_EXERCISE = "price at or below exercise value: no time value, no volatility reproduces it"
NETWORK = "network"
SIGMA_TOL = 1e-9
FD_IV_GRID = FDGrid(n_x=801, n_t=200)       # the polish step (one solve per maturity)
# The fallback: a search on a coarse grid, then the correction on an accurate one, each
# option's grid sized to its own quote. Against a converged grid (4001 × 2000) on 40 random
# quotes (τ 1 week–4 years, σ 0.05–1.6, ±2 standard deviations) the accurate grid's price
# error in σ units is 5e-6 median, 8e-5 at the 90th percentile, 4e-4 at worst (σ > 1.2 and
# S/K < 0.2); near the exercise boundary of deep in-the-money puts up to 2e-4.
FD_SEARCH_GRID = FDGrid(n_x=201, n_t=50, n_vol=5.0, min_half_width=0.0, fit_to_point=True)
FD_FINAL_GRID = FDGrid(n_x=1201, n_t=80, n_vol=5.0, min_half_width=0.0, fit_to_point=True)
FD_BUMP = 1e-2                     # relative σ step of the finite-difference vega
FD_SIGMA_RANGE = (1e-3, 5.0)
# Below vega·σ = 1e-3·K a 1 % change of σ moves the American price by less than 1e-5·K,
# within a few times the finite-difference pricer's own error: σ is not determined (same rule
# and wording as the European solver's, which uses float64 rounding instead of a grid's error).
AMERICAN_MIN_VEGA_SIGMA = 1e-3
# Threads for the fallback's PDE solves (at most 4: a chain's fallback is tens of quotes).
FD_THREADS = max(1, min(4, os.cpu_count() or 1))
# The network's price error (measured up to ~1e-4·K, the most for short in-the-money puts):
# a quote with less time value than that cannot be inverted on the network.
NETWORK_PRICE_TOL = 1e-4


@dataclass(frozen=True)
class AmericanIVResult:
    iv: np.ndarray            # NaN where refused
    reason: np.ndarray        # '' when solved
    method: np.ndarray        # 'network' or 'fd (...why...)'
    fd_residual: np.ndarray | None = None   # FD price at the network σ minus the quote
    vega: np.ndarray | None = None   # American ∂price/∂σ at the answer (network or FD), NaN
    #                                  where refused

    @property
    def ok(self) -> np.ndarray:
        return self.reason == ""


def _network_price(models: Any, x: OptionInputs, calls: np.ndarray,
                   sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from causalcast.options.pricer import american_premium

    xs = OptionInputs(x.spot, x.strike, x.tau, sigma, x.rate, x.div)
    eu = _greeks(xs, calls)
    prem, prem_vega = american_premium(models, xs, calls)
    value = eu["price"] + prem
    payoff = np.maximum(np.where(calls, x.spot - x.strike, x.strike - x.spot), 0.0)
    return np.maximum(value, payoff), np.where(value > payoff, eu["vega"] + prem_vega, 0.0)


def _network_solve(models: Any, x: OptionInputs, calls: np.ndarray, price: np.ndarray,
                   start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(σ, inside, vega) by bracketed Newton on [σ_lo, σ_hi]; inside=False when the root is
    outside the trained σ range; vega is the network's at the last Newton iterate."""
    lo_s, hi_s = TRAINED_DOMAIN.sigma
    n = price.size
    p_lo, _ = _network_price(models, x, calls, np.full(n, lo_s))
    p_hi, _ = _network_price(models, x, calls, np.full(n, hi_s))
    inside = (p_lo <= price) & (price <= p_hi)
    sigma = np.clip(np.where(np.isfinite(start), start, 0.3), lo_s, hi_s)
    lo, hi = np.full(n, lo_s), np.full(n, hi_s)
    vega_out = np.full(n, np.nan)
    active = np.flatnonzero(inside)
    for _ in range(40):
        if active.size == 0:
            break
        xa = x.take(active)
        val, vega = _network_price(models, xa, calls[active], sigma[active])
        f = val - price[active]
        vega_out[active] = vega
        lo[active] = np.where(f < 0, sigma[active], lo[active])
        hi[active] = np.where(f > 0, sigma[active], hi[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = sigma[active] - f / vega
        bad = ~((new > lo[active]) & (new < hi[active]))
        new = np.where(bad, 0.5 * (lo[active] + hi[active]), new)
        step = np.abs(new - sigma[active])
        sigma[active] = new
        active = active[~((step < SIGMA_TOL) | (f == 0))]
    return sigma, inside, vega_out


@cache
def _solver_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(FD_THREADS, thread_name_prefix="american-iv-fd")


def _fd_at(x: OptionInputs, calls: np.ndarray, idx: np.ndarray, sigma: np.ndarray,
           grid: FDGrid) -> np.ndarray:
    """FD American prices of quotes ``idx`` (repeats allowed) at ``sigma``, whatever their
    maturities: one compiled call per thread. Why threads: each quote is its own PDE solve in
    a loop that releases the GIL (`fd._march`, ``nogil``), so the quotes split over the cores
    give the same prices (the solves are independent) in about half the time on two
    (measured 13.5 → 7.9 ms for 70 coarse solves, 44 → 24 ms for 24 accurate ones)."""
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), idx.shape)

    def prices(part: np.ndarray) -> np.ndarray:
        rows = idx[part]
        return x.strike[rows] * fd_price(x.moneyness[rows], x.tau[rows], sigma[part],
                                         x.rate[rows], x.div[rows], calls[rows], True, grid)

    if FD_THREADS == 1 or idx.size < 2 * FD_THREADS:
        return prices(np.arange(idx.size))
    parts = np.array_split(np.arange(idx.size), FD_THREADS)
    return np.concatenate(list(_solver_pool().map(prices, parts)))


def _fd_solve(x: OptionInputs, calls: np.ndarray, price: np.ndarray, payoff: np.ndarray,
              min_vega_sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(σ, converged, vega) from causalcast's finite-difference American pricer.

    Search, on a coarse grid (`FD_SEARCH_GRID`): the root in ln σ of √(time value) − √(the
    quote's time value), from the European implied volatility of the American price (an
    upper bound: the premium is ≥ 0). The square root matters near exercise value: there the
    time value grows like (σ − σ_b)² above the σ_b at which the quote leaves the exercise
    region, so a root search on the price would only halve the distance per step, while its
    square root is nearly linear; elsewhere it changes little. Slopes are backward differences
    (σ and σ(1 − FD_BUMP) in the same call); steps are safeguarded by the bracket every
    evaluation tightens inside `FD_SIGMA_RANGE` (bisection where one leaves it).

    Correction, on the accurate grid (`FD_FINAL_GRID`): secant steps on the price from the
    coarse root (the first with the backward-difference vega). The coarse grid's price error
    is smooth in σ, so a few steps leave only the accurate grid's error. The backward vega
    there is returned for the refusal rule, and a quote whose vega is negligible is not
    corrected (it will be refused); nor searched further once the price above the root is
    already that flat (it is flatter still below, being convex in σ near exercise value).
    Every step prices all unconverged quotes in one compiled call.
    """
    n = price.size
    start = european_iv(price, x.spot, x.strike, x.tau, x.rate, x.div, calls,
                        min_vega_sigma=0.0).iv
    lo, hi = np.full(n, np.log(FD_SIGMA_RANGE[0])), np.full(n, np.log(FD_SIGMA_RANGE[1]))
    u = np.clip(np.log(np.where(np.isfinite(start), start, 0.3)), lo, hi)
    root_tv = np.sqrt(price - payoff)
    flat = np.zeros(n, bool)
    flat_level = 0.5 * min_vega_sigma * x.strike   # margin: borderline goes to the fine grid
    active = np.arange(n)
    for _ in range(40):
        if active.size == 0:
            break
        sig = np.exp(u[active])
        vals = _fd_at(x, calls, np.concatenate([active, active]),
                      np.concatenate([sig, sig * (1.0 - FD_BUMP)]), FD_SEARCH_GRID)
        v, v_back = vals[:active.size], vals[active.size:]
        pay = payoff[active]
        g = np.sqrt(np.maximum(v - pay, 0.0)) - root_tv[active]
        g_back = np.sqrt(np.maximum(v_back - pay, 0.0)) - root_tv[active]
        slope = (g - g_back) / -np.log1p(-FD_BUMP)
        f = v - price[active]
        flat[active] = (f > 0) & ((v - v_back) / FD_BUMP <= flat_level[active])
        lo[active] = np.where(f < 0, u[active], lo[active])
        hi[active] = np.where(f > 0, u[active], hi[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = u[active] - g / slope
        bad = ~((new > lo[active]) & (new < hi[active]))
        new = np.where(bad, 0.5 * (lo[active] + hi[active]), new)
        step = np.abs(new - u[active])
        u[active] = new
        # No stop on |f| alone: a quote with time value below a tolerance would "converge"
        # anywhere in the exercise region. 1e-4 in ln σ is well inside the accurate grid's
        # basin (the two grids' roots differ by ~1e-3).
        active = active[~((step < 1e-4) | (f == 0) | flat[active])]
    # A root inside the range leaves the iterate strictly between its ends.
    ok = (u > np.log(FD_SIGMA_RANGE[0]) + 1e-6) & (u < np.log(FD_SIGMA_RANGE[1]) - 1e-6)
    vega = np.where(flat, 0.0, np.nan)
    sigma = np.exp(u)
    todo = np.flatnonzero(ok & ~flat)
    if todo.size:
        vals = _fd_at(x, calls, np.concatenate([todo, todo]),
                      np.concatenate([sigma[todo], sigma[todo] * (1.0 - FD_BUMP)]),
                      FD_FINAL_GRID)
        f = vals[:todo.size] - price[todo]
        vega[todo] = (vals[:todo.size] - vals[todo.size:]) / (sigma[todo] * FD_BUMP)
        usable = vega[todo] * sigma[todo] > min_vega_sigma * x.strike[todo]
        todo, f = todo[usable], f[usable]
        slope = vega[todo]
    for _ in range(8):
        if todo.size == 0:
            break
        new = np.clip(sigma[todo] - f / slope, 0.5 * sigma[todo], 2.0 * sigma[todo])
        moved = np.abs(new - sigma[todo])
        keep = moved > 1e-5 * new
        f_old, s_old = f[keep], sigma[todo][keep]
        sigma[todo] = new
        todo, new = todo[keep], new[keep]
        if todo.size == 0:
            break
        f = _fd_at(x, calls, todo, new, FD_FINAL_GRID) - price[todo]
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = (f - f_old) / (new - s_old)
        slope = np.where(secant > 0, secant, vega[todo])
    return sigma, ok, vega


def _outside_reason(x: OptionInputs) -> np.ndarray:
    reason = np.full(x.shape, "", dtype=object)
    for name, mask in domain_violations(x).items():
        lo, hi = getattr(TRAINED_DOMAIN, name)
        reason[(reason == "") & mask] = f"fd (outside the trained domain: {name} not in " \
                                        f"[{lo:g}, {hi:g}])"
    return reason


def american_iv(price: Any, spot: Any, strike: Any, tau: Any, rate: Any = 0.0, div: Any = 0.0,
                kind: Any = "call", models: Any = None, polish: bool = False,
                fd_grid: FDGrid = FD_IV_GRID,
                min_vega_sigma: float = AMERICAN_MIN_VEGA_SIGMA) -> AmericanIVResult:
    """Implied volatility of American prices, per quote with its method and any refusal.

    Refused, each with its reason: a price at or below exercise value, at or above the upper
    bound, no volatility in [0.001, 5] reproducing it, or American vega·σ ≤
    ``min_vega_sigma``·K at the solution (the European solver's rule and wording): there the
    price, known to the pricer's accuracy, does not determine σ. Quotes with less time value
    than the network's accuracy (``NETWORK_PRICE_TOL``·K) go to the finite-difference pricer,
    which resolves their vega.
    """
    x0 = as_inputs(spot, strike, tau, 0.3, rate, div)
    shape = x0.shape
    x = OptionInputs(*(a.ravel() for a in (x0.spot, x0.strike, x0.tau, x0.sigma, x0.rate,
                                           x0.div)))
    p = np.broadcast_to(np.asarray(price, dtype=np.float64), shape).ravel().copy()
    if not np.isfinite(p).all():
        raise OptionInputError("price: must be a finite number")
    calls = parse_kind(kind, shape).ravel()
    reason = np.full(p.size, "", dtype=object)
    payoff = np.maximum(np.where(calls, x.spot - x.strike, x.strike - x.spot), 0.0)
    reason[p <= payoff] = REASON_EXERCISE
    reason[(reason == "") & (p >= np.where(calls, x.spot, x.strike))] = REASON_ABOVE
    method = _outside_reason(x)
    thin = (reason == "") & (method == "") & (p - payoff <= NETWORK_PRICE_TOL * x.strike)
    method[thin] = f"fd (time value below the network's accuracy, {NETWORK_PRICE_TOL:g}·K)"
    iv = np.full(p.size, np.nan)
    vega = np.full(p.size, np.nan)
    net = np.flatnonzero((reason == "") & (method == ""))
    if net.size:
        from causalcast.options.pricer import load_models

        models = load_models() if models is None else models
        xn = x.take(net)
        start = european_iv(p[net], xn.spot, xn.strike, xn.tau, xn.rate, xn.div,
                            calls[net], min_vega_sigma=0.0).iv
        sig, inside, net_vega = _network_solve(models, xn, calls[net], p[net], start)
        iv[net[inside]] = sig[inside]
        vega[net[inside]] = net_vega[inside]
        method[net[inside]] = NETWORK
        lo, hi = TRAINED_DOMAIN.sigma
        method[net[~inside]] = f"fd (implied σ outside the trained range [{lo:g}, {hi:g}])"
    fd = np.flatnonzero((reason == "") & (method != NETWORK))
    if fd.size:
        sig, ok, fd_vega = _fd_solve(x.take(fd), calls[fd], p[fd], payoff[fd],
                                      min_vega_sigma)
        iv[fd[ok]] = sig[ok]
        vega[fd[ok]] = fd_vega[ok]
        lo, hi = FD_SIGMA_RANGE
        reason[fd[~ok]] = f"no volatility in [{lo:g}, {hi:g}] reproduces the price (fd)"
    negligible = (reason == "") & ~(vega * iv > min_vega_sigma * x.strike)
    reason[negligible] = REASON_VEGA.format(min_vega_sigma)
    iv[reason != ""] = np.nan
    vega[reason != ""] = np.nan
    method[reason != ""] = ""
    residual = None
    idx = np.flatnonzero((reason == "") & (method == NETWORK))
    if polish and idx.size:
        residual = np.full(p.size, np.nan)
        xi = x.take(idx)
        sig_net = iv[idx]
        _, net_vega = _network_price(models, xi, calls[idx], sig_net)
        residual[idx] = xi.strike * fd_price(xi.moneyness, xi.tau, sig_net, xi.rate, xi.div,
                                             calls[idx], True, fd_grid) - p[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(net_vega > 0, residual[idx] / net_vega, 0.0)
        iv[idx] = np.clip(sig_net - step, 0.5 * sig_net, 2.0 * sig_net)
        residual = residual.reshape(shape)
    return AmericanIVResult(iv.reshape(shape), reason.reshape(shape), method.reshape(shape),
                            residual, vega.reshape(shape))

