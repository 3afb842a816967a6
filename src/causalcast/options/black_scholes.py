"""Black–Scholes–Merton closed form with a continuous dividend yield, Greeks and implied volatility.

This is the reference every network is measured against, so it is written for accuracy first:
float64 throughout, `scipy.special.ndtr` for the normal CDF, and puts priced from N(−d) rather
than through parity so that deep in-the-money puts keep their precision.

Conventions (shared by all pricers in `causalcast.options`): tau in years, rates and dividend
yield continuously compounded per year; vega per unit of sigma, theta = ∂V/∂t = −∂V/∂τ per year,
rho per unit of r.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

from causalcast.options.inputs import OptionInputError, OptionInputs, as_inputs, parse_kind

GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho")
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _pdf(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def d1_d2(x: OptionInputs) -> tuple[np.ndarray, np.ndarray]:
    vol = x.sigma * np.sqrt(x.tau)
    d1 = (np.log(x.spot / x.strike) + (x.rate - x.div + 0.5 * x.sigma**2) * x.tau) / vol
    return d1, d1 - vol


def _greeks(x: OptionInputs, is_call: np.ndarray) -> dict[str, np.ndarray]:
    d1, d2 = d1_d2(x)
    sqrt_t = np.sqrt(x.tau)
    dq, dr = np.exp(-x.div * x.tau), np.exp(-x.rate * x.tau)
    s_dq, k_dr = x.spot * dq, x.strike * dr
    pdf1 = _pdf(d1)
    sign = np.where(is_call, 1.0, -1.0)
    n1, n2 = ndtr(sign * d1), ndtr(sign * d2)
    price = sign * (s_dq * n1 - k_dr * n2)
    decay = -s_dq * pdf1 * x.sigma / (2.0 * sqrt_t)
    return {
        "price": price,
        "delta": sign * dq * n1,
        "gamma": dq * pdf1 / (x.spot * x.sigma * sqrt_t),
        "vega": s_dq * pdf1 * sqrt_t,
        "theta": decay - sign * x.rate * k_dr * n2 + sign * x.div * s_dq * n1,
        "rho": sign * x.tau * k_dr * n2,
    }


def bsm_greeks(spot: Any, strike: Any, tau: Any, sigma: Any, rate: Any = 0.0, div: Any = 0.0,
               kind: Any = "call") -> dict[str, np.ndarray]:
    """Price and Greeks (delta, gamma, vega, theta, rho) as a dict of float64 arrays."""
    x = as_inputs(spot, strike, tau, sigma, rate, div)
    return _greeks(x, parse_kind(kind, x.shape))


def bsm_price(spot: Any, strike: Any, tau: Any, sigma: Any, rate: Any = 0.0, div: Any = 0.0,
              kind: Any = "call") -> np.ndarray:
    """European price under Black–Scholes–Merton, vectorised over broadcast inputs."""
    x = as_inputs(spot, strike, tau, sigma, rate, div)
    is_call = parse_kind(kind, x.shape)
    d1, d2 = d1_d2(x)
    sign = np.where(is_call, 1.0, -1.0)
    return sign * (x.spot * np.exp(-x.div * x.tau) * ndtr(sign * d1)
                   - x.strike * np.exp(-x.rate * x.tau) * ndtr(sign * d2))


def price_bounds(x: OptionInputs, is_call: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """No-arbitrage bounds of a European price: (lower, upper)."""
    s_dq = x.spot * np.exp(-x.div * x.tau)
    k_dr = x.strike * np.exp(-x.rate * x.tau)
    lower = np.maximum(np.where(is_call, s_dq - k_dr, k_dr - s_dq), 0.0)
    upper = np.where(is_call, s_dq, k_dr)
    return lower, upper


def arbitrage_bounds(x: OptionInputs, is_call: np.ndarray, american: np.ndarray | bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """No-arbitrage bounds of a price, European or American: (lower, upper). An American
    option is worth at least its exercise value and at most the spot (call) or strike (put)."""
    lower, upper = price_bounds(x, is_call)
    exercise = np.maximum(np.where(is_call, x.spot - x.strike, x.strike - x.spot), 0.0)
    lower = np.where(american, np.maximum(lower, exercise), lower)
    upper = np.where(american, np.where(is_call, x.spot, x.strike), upper)
    return lower, upper


ROUNDING = 1e-9   # relative slack for float rounding at a bound (prices agree to ~1e-14)


def inconsistent_rows(x: OptionInputs, is_call: np.ndarray, american: np.ndarray | bool,
                      values: dict[str, np.ndarray]) -> np.ndarray:
    """Rows with no finite, arbitrage-consistent answer: a non-finite price or Greek, or a
    price outside the no-arbitrage bounds by more than rounding. The other rows' prices are
    clipped into the bounds in place (so rounding never shows as a price of -1e-19)."""
    lower, upper = arbitrage_bounds(x, is_call, american)
    price = values["price"]
    slack = ROUNDING * np.maximum(x.spot, x.strike)
    bad = ~np.isfinite(price) | (price < lower - slack) | (price > upper + slack)
    for key, arr in values.items():
        if key != "price" and arr.dtype.kind == "f":
            bad |= ~np.isfinite(arr)
    values["price"] = np.where(bad, price, np.clip(price, lower, upper))
    return bad


def parity_residual(call: Any, put: Any, spot: Any, strike: Any, tau: Any, rate: Any = 0.0,
                    div: Any = 0.0) -> np.ndarray:
    """C − P − (S e^{−qτ} − K e^{−rτ}); zero for any arbitrage-free European pair."""
    x = as_inputs(spot, strike, tau, 1.0, rate, div)
    return (np.asarray(call) - np.asarray(put)
            - (x.spot * np.exp(-x.div * x.tau) - x.strike * np.exp(-x.rate * x.tau)))


def implied_volatility(price: Any, spot: Any, strike: Any, tau: Any, rate: Any = 0.0,
                       div: Any = 0.0, kind: Any = "call", lo: float = 1e-6, hi: float = 10.0,
                       tol: float = 1e-12) -> np.ndarray:
    """Volatility that reproduces a European price, by vectorised bisection on log σ.

    The price is increasing in σ, so a bracket [lo, hi] that contains the root keeps it: the
    method cannot diverge the way plain Newton does for deep out-of-the-money options. A price
    outside the open no-arbitrage interval (lower, upper) has no implied volatility and is
    refused naming the bound it breaks; so is one that needs σ outside [lo, hi].
    """
    x = as_inputs(spot, strike, tau, 1.0, rate, div)
    p = np.broadcast_to(np.asarray(price, dtype=np.float64), x.shape)
    if not np.isfinite(p).all():
        raise OptionInputError("price: must be a finite number")
    is_call = parse_kind(kind, x.shape)
    lower, upper = price_bounds(x, is_call)
    for bad, what in ((p <= lower, "at or below the no-arbitrage lower bound"),
                      (p >= upper, "at or above the no-arbitrage upper bound")):
        if bad.any():
            i = np.flatnonzero(bad.ravel())[0]
            bound = (lower if "lower" in what else upper).ravel()[i]
            raise OptionInputError(f"price: {p.ravel()[i]:.6g} is {what} {bound:.6g} "
                                   f"(index {i}); no volatility reproduces it")

    def f(sig: np.ndarray) -> np.ndarray:
        return bsm_price(x.spot, x.strike, x.tau, sig, x.rate, x.div, is_call) - p

    a = np.full(x.shape, np.log(lo))
    b = np.full(x.shape, np.log(hi))
    if (f(np.exp(a)) > 0).any() or (f(np.exp(b)) < 0).any():
        raise OptionInputError(f"price: implied volatility outside the bracket [{lo}, {hi}]")
    for _ in range(200):
        mid = 0.5 * (a + b)
        above = f(np.exp(mid)) > 0
        b = np.where(above, mid, b)
        a = np.where(above, a, mid)
        if np.max(b - a) < tol:
            break
    return np.exp(0.5 * (a + b))
