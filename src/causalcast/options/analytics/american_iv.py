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
the trained σ range) each quote falls back to causalcast's own finite-difference American
pricer (`options.fd`) with Illinois regula falsi in log σ, and its ``method`` says so and why.
The network's price error (up to ~2e-4·K, more for deep in-the-money puts with large premia)
would leave σ errors of 1e-3 there, so with ``polish=True`` every network answer gets
one Newton step on causalcast's finite-difference price, which is the independent check: its
residual at the network's σ is returned per quote (``fd_residual``) and, since the network σ is
already close, the one step brings σ to the FD pricer's accuracy (quadratic convergence).
The cost is one compiled PDE solve (801 × 200 grid) per quote, milliseconds each, about 100×
the network's cost per quote (`benchmarks/options_analytics.py`), so it is off by default: the
default answer is the network's, fast, with σ errors of order 1e-4 (median) near the money.
The whole chain is one batched Newton (premium and vega from `options.premium_jet`), and the
fallback's regula falsi prices all its quotes in one compiled call per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from causalcast.options.analytics.iv import REASON_ABOVE, european_iv
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
FD_FALLBACK_GRID = FDGrid(n_x=401, n_t=150)  # the fallback's root search (many solves)


@dataclass(frozen=True)
class AmericanIVResult:
    iv: np.ndarray            # NaN where refused
    reason: np.ndarray        # '' when solved
    method: np.ndarray        # 'network' or 'fd (...why...)'
    fd_residual: np.ndarray | None = None   # FD price at the network σ minus the quote

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
                   start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(σ, inside) by bracketed Newton on [σ_lo, σ_hi]; inside=False when the root is outside
    the trained σ range."""
    lo_s, hi_s = TRAINED_DOMAIN.sigma
    n = price.size
    p_lo, _ = _network_price(models, x, calls, np.full(n, lo_s))
    p_hi, _ = _network_price(models, x, calls, np.full(n, hi_s))
    inside = (p_lo <= price) & (price <= p_hi)
    sigma = np.clip(np.where(np.isfinite(start), start, 0.3), lo_s, hi_s)
    lo, hi = np.full(n, lo_s), np.full(n, hi_s)
    active = np.flatnonzero(inside)
    for _ in range(40):
        if active.size == 0:
            break
        xa = x.take(active)
        val, vega = _network_price(models, xa, calls[active], sigma[active])
        f = val - price[active]
        lo[active] = np.where(f < 0, sigma[active], lo[active])
        hi[active] = np.where(f > 0, sigma[active], hi[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = sigma[active] - f / vega
        bad = ~((new > lo[active]) & (new < hi[active]))
        new = np.where(bad, 0.5 * (lo[active] + hi[active]), new)
        step = np.abs(new - sigma[active])
        sigma[active] = new
        active = active[~((step < SIGMA_TOL) | (f == 0))]
    return sigma, inside


def _fd_solve(x: OptionInputs, calls: np.ndarray, price: np.ndarray,
              grid: FDGrid) -> tuple[np.ndarray, np.ndarray]:
    """(σ, converged) by Illinois regula falsi in log σ with the FD pricer, safeguarded by
    bisection, to 1e-7 in log σ (far below the PDE grid's own error).

    The bracket starts tight: the European implied volatility σ_E of the American price is an
    upper bound (the premium is ≥ 0) and σ_E/2 a usual lower one; an end that does not bracket
    is widened to [1e-3, 5]. A tight bracket halves the number of PDE solves.
    """
    n = price.size
    span = float(np.max(np.abs(np.log(x.moneyness)))) + 0.5
    grid = FDGrid(n_x=grid.n_x, n_t=grid.n_t, moneyness_span=max(span, grid.moneyness_span))

    def f(log_sigma: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return x.strike[idx] * fd_price(x.moneyness[idx], x.tau[idx], np.exp(log_sigma),
                                        x.rate[idx], x.div[idx], calls[idx], True,
                                        grid) - price[idx]

    all_idx = np.arange(n)
    upper = european_iv(price, x.spot, x.strike, x.tau, x.rate, x.div, calls,
                        min_vega_sigma=0.0).iv
    known = np.isfinite(upper) & (upper > 2e-3) & (upper < 5.0)
    a = np.log(np.where(known, 0.5 * upper, 1e-3))
    b = np.log(np.where(known, upper, 5.0))
    fab = f(np.concatenate([a, b]), np.concatenate([all_idx, all_idx]))
    fa, fb = fab[:n], fab[n:]
    widen = np.flatnonzero(fa > 0)
    if widen.size:   # the root lies below σ_E/2: [1e-3, σ_E/2]
        b[widen], fb[widen] = a[widen], fa[widen]
        a[widen] = np.log(1e-3)
        fa[widen] = f(a[widen], widen)
    widen = np.flatnonzero(fb < 0)
    if widen.size:   # the FD price sits below the quote at σ_E (discretisation): [σ_E, 5]
        a[widen], fa[widen] = b[widen], fb[widen]
        b[widen] = np.log(5.0)
        fb[widen] = f(b[widen], widen)
    ok = (fa <= 0) & (fb >= 0)
    side = np.zeros(n, int)
    bisect = np.zeros(n, bool)
    c = 0.5 * (a + b)
    active = np.flatnonzero(ok)
    for _ in range(60):
        if active.size == 0:
            break
        aa, bb, fa_, fb_ = a[active], b[active], fa[active], fb[active]
        cc = np.where((fb_ != fa_) & ~bisect[active], bb - fb_ * (bb - aa) / (fb_ - fa_),
                      0.5 * (aa + bb))
        fc = f(cc, active)
        left = fc < 0
        a[active] = np.where(left, cc, aa)
        fa[active] = np.where(left, fc, np.where(side[active] == 1, 0.5 * fa_, fa_))
        b[active] = np.where(left, bb, cc)
        fb[active] = np.where(left, np.where(side[active] == -1, 0.5 * fb_, fb_), fc)
        side[active] = np.where(left, -1, 1)
        # Where the price is flat in σ (deep in the money, near exercise value) the secant
        # stalls at one end: a step that did not halve the bracket makes the next a bisection.
        width = b[active] - a[active]
        bisect[active] = width > 0.5 * (bb - aa)
        moved = np.abs(cc - c[active])
        c[active] = cc
        active = active[~((np.abs(fc) < 1e-9 * x.strike[active]) | (moved < 1e-9)
                          | (width < 1e-7))]
    return np.exp(c), ok


def _outside_reason(x: OptionInputs) -> np.ndarray:
    reason = np.full(x.shape, "", dtype=object)
    for name, mask in domain_violations(x).items():
        lo, hi = getattr(TRAINED_DOMAIN, name)
        reason[(reason == "") & mask] = f"fd (outside the trained domain: {name} not in " \
                                        f"[{lo:g}, {hi:g}])"
    return reason


def american_iv(price: Any, spot: Any, strike: Any, tau: Any, rate: Any = 0.0, div: Any = 0.0,
                kind: Any = "call", models: Any = None, polish: bool = False,
                fd_grid: FDGrid = FD_IV_GRID) -> AmericanIVResult:
    """Implied volatility of American prices, per quote with its method and any refusal."""
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
    iv = np.full(p.size, np.nan)
    net = np.flatnonzero((reason == "") & (method == ""))
    if net.size:
        from causalcast.options.pricer import load_models

        models = load_models() if models is None else models
        xn = x.take(net)
        start = european_iv(p[net], xn.spot, xn.strike, xn.tau, xn.rate, xn.div,
                            calls[net], min_vega_sigma=0.0).iv
        sig, inside = _network_solve(models, xn, calls[net], p[net], start)
        iv[net[inside]] = sig[inside]
        method[net[inside]] = NETWORK
        lo, hi = TRAINED_DOMAIN.sigma
        method[net[~inside]] = f"fd (implied σ outside the trained range [{lo:g}, {hi:g}])"
    fd = np.flatnonzero((reason == "") & (method != NETWORK))
    if fd.size:
        sig, ok = _fd_solve(x.take(fd), calls[fd], p[fd], FD_FALLBACK_GRID)
        iv[fd[ok]] = sig[ok]
        reason[fd[~ok]] = "no volatility in [0.001, 5] reproduces the price (fd)"
    iv[reason != ""] = np.nan
    method[reason != ""] = ""
    residual = None
    idx = np.flatnonzero((reason == "") & (method == NETWORK))
    if polish and idx.size:
        residual = np.full(p.size, np.nan)
        xi = x.take(idx)
        sig_net = iv[idx]
        _, vega = _network_price(models, xi, calls[idx], sig_net)
        residual[idx] = xi.strike * fd_price(xi.moneyness, xi.tau, sig_net, xi.rate, xi.div,
                                             calls[idx], True, fd_grid) - p[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(vega > 0, residual[idx] / vega, 0.0)
        iv[idx] = np.clip(sig_net - step, 0.5 * sig_net, 2.0 * sig_net)
        residual = residual.reshape(shape)
    return AmericanIVResult(iv.reshape(shape), reason.reshape(shape), method.reshape(shape),
                            residual)

