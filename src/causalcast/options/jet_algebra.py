"""The arithmetic of the European network's prices and Greeks (see `causalcast.options.jets`
for the notation): plain formulas shared by the numpy path (`jets`) and the compiled kernel
(`kernel`). A module of its own so that the kernel and the table need not import `jets`, which
imports them: imports go jets → table/kernel → jet_algebra, never back.
"""

from __future__ import annotations

import math

import numpy as np

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# The two functions below are plain arithmetic so that they serve both numpy arrays (here) and
# scalars inside the compiled kernel (`causalcast.options.kernel` compiles them with numba):
# one formula, two speeds.
def coordinates(m, tau, sigma, rate, div):
    """(v, x, f, D, φ(x)): total volatility, ln f / v, forward moneyness, discount factor."""
    v = sigma * np.sqrt(tau)
    carry = (rate - div) * tau
    xs = (np.log(m) + carry) / v
    p = _INV_SQRT_2PI * np.exp(-0.5 * xs * xs)
    return v, xs, m * np.exp(carry), np.exp(-rate * tau), p


def assemble(G, G_x, G_v, G_xx, c, put, m, tau, rate, div, strike,
             v, xs, f, disc, p):
    """(price, delta, gamma, vega, theta, rho) from the network's g and jets at the row's head
    and the coordinates; ``c`` = Φ(x), ``put`` = 1 for puts. See the module docstring."""
    v2 = v * v
    h_f = c - put
    h = (f - 1.0) * h_f + v * p + v2 * p * G
    h_x = p * ((f - 1.0) - v * xs + v2 * (G_x - xs * G))
    h_v = p * (1.0 + v * (2.0 * G + v * G_v))
    h_xx = p * (-(f - 1.0) * xs - v * (1.0 - xs * xs)
                + v2 * (G_xx - 2.0 * xs * G_x + (xs * xs - 1.0) * G))
    # m moves x (x_m = 1/(m v), x_mm = −1/(m² v)) and f (f_m = f/m, f_mm = 0); h_ff = 0.
    x_m = 1.0 / (m * v)
    f_m = f / m
    u_m = disc * (h_x * x_m + h_f * f_m)
    u_mm = disc * (h_xx * x_m * x_m + 2.0 * p * x_m * f_m - h_x * x_m / m)
    # σ moves v (v_σ = √τ) and x (x_v = −x/v).
    u_sigma = disc * (h_v - xs * h_x / v) * np.sqrt(tau)
    # r moves D (−τ D), x (τ/v) and f (τ f).
    u_r = disc * (-tau * h + h_x * tau / v + h_f * tau * f)
    # τ moves D (−r D), v (v/(2τ)), x ((r−q)/v − x/(2τ)) and f ((r−q) f).
    u_tau = disc * (-rate * h + h_v * v / (2.0 * tau)
                    + h_x * ((rate - div) / v - xs / (2.0 * tau)) + h_f * (rate - div) * f)
    return (strike * disc * h, u_m, u_mm / strike, strike * u_sigma, -strike * u_tau,
            strike * u_r)
