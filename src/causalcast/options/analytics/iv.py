"""European implied volatility, vectorised, to machine precision where the price pins σ.

Method (after Jäckel, "Let's be rational", 2015, simplified): every quote is reduced to the
normalised out-of-the-money Black price β = b(x, s), x = −|ln(F/K)| ≤ 0, s = σ√τ,

    b(x, s) = e^{x/2} Φ(x/s + s/2) − e^{−x/2} Φ(x/s − s/2),   0 < b < e^{x/2},

(an in-the-money quote becomes its out-of-the-money twin by parity, a put becomes a call by
b_put(x) = b_call(−x)). b rises in s with an inflection at s_c = √(2|x|). Below b(s_c) we
solve ln b(s) = ln β (concave in s: Newton converges monotonically after one step), above it
−ln(e^{x/2} − b(s)) = −ln(e^{x/2} − β) (the distance to the upper bound computed without
cancellation as e^{x/2}Φ(−d₁) + e^{−x/2}Φ(d₂)). Newton steps are safeguarded by a bracket that
every evaluation tightens, so no quote can diverge; each iteration touches only the quotes not
yet converged.

Refusals, each with its reason per quote: a price at or below intrinsic value (no time
value), at or above the upper bound (S e^{−qτ} for calls, K e^{−rτ} for puts), or one where
vega is negligible (vega·σ ≤ ``min_vega_sigma``·K): there the float64 price does not determine σ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from causalcast.options.inputs import OptionInputError, as_inputs, parse_kind

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
MIN_VEGA_SIGMA = 1e-8
MAX_ITER = 60

REASON_BELOW = ("price at or below the no-arbitrage lower bound (intrinsic value): no time value, "
                "no volatility reproduces it")
REASON_ABOVE = "price at or above the no-arbitrage upper bound"
REASON_VEGA = "vega negligible (vega·σ ≤ {:g}·K): the price does not determine σ"
REASON_NOCONV = "did not converge"


@dataclass(frozen=True)
class IVResult:
    """Implied volatility per quote (NaN where refused) and the reason ('' when solved)."""

    iv: np.ndarray
    reason: np.ndarray      # object array of str
    vega: np.ndarray        # ∂price/∂σ at the solution (per unit σ), NaN where refused

    @property
    def ok(self) -> np.ndarray:
        return self.reason == ""


def _b_and_slopes(x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, ...]:
    """(b, e^{x/2} − b, ∂b/∂s) of the normalised OTM call (x ≤ 0)."""
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    ex, emx = np.exp(0.5 * x), np.exp(-0.5 * x)
    b = ex * ndtr(d1) - emx * ndtr(d2)
    gap = ex * ndtr(-d1) + emx * ndtr(d2)
    vega = np.exp(0.5 * x - 0.5 * d1 * d1 - _LOG_SQRT_2PI)
    return b, gap, vega


def solve_normalised(x: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s with b(x, s) = β for x ≤ 0 and 0 < β < e^{x/2}; returns (s, converged)."""
    n = x.size
    s_c = np.sqrt(2.0 * np.abs(x))
    b_c = _b_and_slopes(x, np.maximum(s_c, 1e-300))[0] if n else x
    upper = (beta >= b_c) | (s_c == 0.0)
    # Starting points: s_c, except at the money where the exact answer is known.
    s = np.where(s_c > 0, s_c, 0.0)
    atm = s_c == 0.0
    if atm.any():
        from scipy.special import erfinv

        s[atm] = 2.0 * np.sqrt(2.0) * erfinv(beta[atm])
    lo = np.where(upper, s_c, 0.0)
    hi = np.where(upper, np.inf, s_c)
    target = np.where(upper, np.log(np.exp(0.5 * x) - beta), np.log(beta))
    done = np.zeros(n, bool)
    active = np.flatnonzero(~done)
    for _ in range(MAX_ITER):
        if active.size == 0:
            break
        xa, sa, up = x[active], np.maximum(s[active], 1e-300), upper[active]
        b, gap, vega = _b_and_slopes(xa, sa)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(up, target[active] - np.log(gap), np.log(b) - target[active])
            slope = vega / np.where(up, gap, b)
        lo_a, hi_a = lo[active], hi[active]
        lo_a = np.where(f < 0, sa, lo_a)
        hi_a = np.where(f > 0, sa, hi_a)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = f / slope
        new = sa - step
        outside = ~((new > lo_a) & (new < hi_a)) | ~np.isfinite(new)
        fallback = np.where(np.isfinite(hi_a), 0.5 * (lo_a + hi_a), 2.0 * np.maximum(sa, lo_a))
        new = np.where(outside, fallback, new)
        converged = (np.abs(new - sa) <= 1e-14 * new) | (f == 0)
        s[active], lo[active], hi[active] = new, lo_a, hi_a
        done[active[converged]] = True
        active = active[~converged]
    return s, done


def european_iv(price: Any, spot: Any, strike: Any, tau: Any, rate: Any = 0.0, div: Any = 0.0,
                kind: Any = "call", min_vega_sigma: float = MIN_VEGA_SIGMA) -> IVResult:
    """Implied Black–Scholes–Merton volatility of European prices, vectorised."""
    x_in = as_inputs(spot, strike, tau, 1.0, rate, div)
    shape = x_in.shape
    p = np.broadcast_to(np.asarray(price, dtype=np.float64), shape).ravel()
    if not np.isfinite(p).all():
        i = int(np.flatnonzero(~np.isfinite(p))[0])
        raise OptionInputError(f"price: must be a finite number (index {i})")
    is_call = parse_kind(kind, shape).ravel()
    s0, k, t, r, q = (a.ravel() for a in (x_in.spot, x_in.strike, x_in.tau, x_in.rate,
                                          x_in.div))
    disc = np.exp(-r * t)
    fwd = s0 * np.exp((r - q) * t)
    x = np.log(fwd / k)
    sqrt_fk = np.sqrt(fwd * k)
    u = p / disc
    theta = np.where(is_call, 1.0, -1.0)
    itm = theta * x > 0
    otm = np.where(itm, u - theta * (fwd - k), u)
    beta = otm / sqrt_fk
    xn = -np.abs(x)
    reason = np.full(p.size, "", dtype=object)
    reason[beta <= 0] = REASON_BELOW
    reason[(reason == "") & (beta >= np.exp(0.5 * xn))] = REASON_ABOVE
    good = np.flatnonzero(reason == "")
    s = np.full(p.size, np.nan)
    vega = np.full(p.size, np.nan)
    if good.size:
        sg, conv = solve_normalised(xn[good], beta[good])
        s[good] = sg
        reason[good[~conv]] = REASON_NOCONV
        _, _, b_s = _b_and_slopes(xn[good], sg)
        vega[good] = disc[good] * sqrt_fk[good] * b_s * np.sqrt(t[good])
    iv = s / np.sqrt(t)
    negligible = (reason == "") & ~(vega * iv > min_vega_sigma * k)
    reason[negligible] = REASON_VEGA.format(min_vega_sigma)
    bad = reason != ""
    iv[bad] = np.nan
    vega[bad] = np.nan
    return IVResult(iv.reshape(shape), reason.reshape(shape), vega.reshape(shape))
