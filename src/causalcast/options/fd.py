"""Vectorised finite-difference reference for American (and European) puts.

Why our own solver when QuantLib exists: training the American network needs millions of
reference prices, and one PDE solve yields a whole (S, τ) surface for one (σ, r, q); QuantLib
prices one option per call. QuantLib stays the independent check (see the tests).

Method: log-spot grid x = ln(S/K), uniform per parameter set, with half-width wide enough for
five total volatilities beyond the trained moneyness range; θ-scheme in τ on a grid that is
quadratic in τ (fine near expiry where the payoff kink is), Rannacher start (four fully
implicit steps) then Crank–Nicolson. The early-exercise constraint V ≥ K − S is solved exactly
for the discrete system by the Brennan–Schwartz method (eliminate from the far out-of-the-money
side, substitute from the deep in-the-money side taking max with the payoff), which is valid
because the put has one exercise boundary below which exercise is optimal.

The march over τ and the two sweeps over the grid are compiled with numba (one loop per
parameter set); each parameter set may have its own maturity, so a batch of options with
different expiries is one call. Prices are per unit strike. Calls come from the put–call symmetry
C(S, K, r, q) = P(K, S, q, r) (McDonald–Schroder), which holds for American options too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from causalcast.options.inputs import OptionInputError


@dataclass(frozen=True)
class FDGrid:
    n_x: int = 1201
    n_t: int = 400
    rannacher: int = 4
    moneyness_span: float = float(np.log(2.2))  # |ln S/K| that must lie well inside the grid
    n_vol: float = 6.0                           # total volatilities beyond it
    min_half_width: float = 1.2
    # Size each option's grid to its own point (half-width |ln m| + |r − q|·τ + n_vol total
    # volatilities, at least min_half_width) instead of the shared moneyness_span: for single
    # prices (`fd_price`) the points then sit where that option's price is decided (a
    # short-dated option's grid no longer spans the shared range, far ones fit).
    fit_to_point: bool = False


@dataclass
class FDSurface:
    """Put prices per unit strike: x (B, n_x), taus (T,), american/european (B, T, n_x)."""

    x: np.ndarray
    taus: np.ndarray
    american: np.ndarray
    european: np.ndarray

    def interpolate(self, b: np.ndarray, t: np.ndarray, log_m: np.ndarray) -> tuple[np.ndarray,
                                                                                np.ndarray]:
        """Linear interpolation in x at (parameter set b, saved slice t, ln S/K).

        What is interpolated is V − payoff, to which the exact payoff at ln S/K is added: the
        payoff 1 − eˣ is concave, so interpolating V itself would put an American put in the
        exercise region below its exercise value by up to eˣ·dx²/8 (3e-5·K on a 401-point
        grid), enough to make a quote with no time value look as if it had some.
        """
        x0 = self.x[b, 0]
        dx = self.x[b, 1] - x0
        pos = (log_m - x0) / dx
        i = np.clip(np.floor(pos).astype(np.int64), 0, self.x.shape[1] - 2)
        w = pos - i
        pay_i = np.maximum(1.0 - np.exp(self.x[b, i]), 0.0)
        pay_j = np.maximum(1.0 - np.exp(self.x[b, i + 1]), 0.0)
        pay = np.maximum(1.0 - np.exp(log_m), 0.0)

        def interp(v: np.ndarray) -> np.ndarray:
            return (1 - w) * (v[b, t, i] - pay_i) + w * (v[b, t, i + 1] - pay_j) + pay

        return interp(self.american), interp(self.european)


def solve_put_surface(sigma: np.ndarray, rate: np.ndarray, div: np.ndarray,
                      tau_max: float | np.ndarray = 2.0, save_every: int = 5,
                      grid: FDGrid | None = None, european: bool = True,
                      span: np.ndarray | None = None) -> FDSurface:
    """American and European put surfaces for each (sigma[b], rate[b], div[b]).

    ``tau_max`` may be one maturity or one per parameter set (then ``taus`` is (B, T)); with
    ``european=False`` only the American surface is computed (``european`` is then NaN), which
    halves the work when only American prices are wanted. ``span`` (per set) replaces
    ``grid.moneyness_span``: the |ln S/K| each set's grid must cover.
    """
    grid = grid or FDGrid()
    sigma, rate, div = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (sigma, rate, div))
    if not (sigma.shape == rate.shape == div.shape) or sigma.ndim != 1:
        raise OptionInputError("sigma, rate, div: expected 1-D arrays of equal length")
    if (sigma <= 0).any() or not np.isfinite(np.concatenate([sigma, rate, div])).all():
        raise OptionInputError("sigma: must be finite and > 0 (rate, div finite)")
    per_set = np.ndim(tau_max) > 0
    t_max = np.broadcast_to(np.asarray(tau_max, dtype=np.float64), sigma.shape)
    n_b, n_x = sigma.size, grid.n_x
    span = grid.moneyness_span if span is None else np.asarray(span, dtype=np.float64)
    half = np.maximum(span + grid.n_vol * sigma * np.sqrt(t_max),
                      grid.min_half_width)
    x = np.linspace(-1.0, 1.0, n_x)[None, :] * half[:, None]
    dx = 2 * half / (n_x - 1)
    s2, mu = sigma**2, rate - div - 0.5 * sigma**2
    lo_c = 0.5 * s2 / dx**2 - 0.5 * mu / dx   # coefficient of V_{i-1} in the operator L
    up_c = 0.5 * s2 / dx**2 + 0.5 * mu / dx   # of V_{i+1}
    di_c = -s2 / dx**2 - rate                  # of V_i
    taus = t_max[:, None] * ((np.arange(grid.n_t + 1) / grid.n_t) ** 2)[None, :]
    keep = list(range(0, grid.n_t + 1, save_every))
    if keep[-1] != grid.n_t:
        keep.append(grid.n_t)
    keep_slot = np.full(grid.n_t + 1, -1, dtype=np.int64)
    keep_slot[keep] = np.arange(len(keep))
    am_out = np.empty((n_b, len(keep), n_x))
    eu_out = np.empty((n_b, len(keep), n_x)) if european else np.empty((n_b, 0, n_x))
    _march(x, lo_c, di_c, up_c, rate, div, taus, grid.rannacher, keep_slot, european,
           am_out, eu_out)
    if not european:
        eu_out = np.full_like(am_out, np.nan)
    return FDSurface(x=x, taus=taus[:, keep] if per_set else taus[0, keep], american=am_out,
                     european=eu_out)


@numba.njit(cache=True, nogil=True)
def _march(x, lo_c, di_c, up_c, rate, div, taus, rannacher, keep_slot, european,
           am_out, eu_out):  # pragma: no cover - compiled
    """The θ-scheme in τ for every parameter set, compiled: the grid sweeps are loops over
    points, which as numpy operations cost a few µs of overhead each (the uncompiled version
    spent minutes on a chain's fallback quotes)."""
    n_b, n_x = x.shape
    m = n_x - 2
    payoff = np.empty(n_x)
    am = np.empty(n_x)
    eu = np.empty(n_x)
    rhs = np.empty(m)
    beta = np.empty(m)
    rr = np.empty(m)
    for b in range(n_b):
        for i in range(n_x):
            payoff[i] = max(1.0 - math.exp(x[b, i]), 0.0)
            am[i] = payoff[i]
            eu[i] = payoff[i]
            am_out[b, 0, i] = payoff[i]
            if european:
                eu_out[b, 0, i] = payoff[i]
        s_lo = math.exp(x[b, 0])
        for n in range(1, taus.shape[1]):
            dt = taus[b, n] - taus[b, n - 1]
            theta = 1.0 if n <= rannacher else 0.5
            tau = taus[b, n]
            eu_lo = math.exp(-rate[b] * tau) - s_lo * math.exp(-div[b] * tau)
            am_lo = max(1.0 - s_lo, eu_lo)
            _theta_step(am, lo_c[b], di_c[b], up_c[b], dt, theta, am_lo, payoff, True,
                        rhs, beta, rr)
            if european:
                _theta_step(eu, lo_c[b], di_c[b], up_c[b], dt, theta, eu_lo, payoff, False,
                            rhs, beta, rr)
            slot = keep_slot[n]
            if slot >= 0:
                for i in range(n_x):
                    am_out[b, slot, i] = am[i]
                    if european:
                        eu_out[b, slot, i] = eu[i]


@numba.njit(cache=True, nogil=True)
def _theta_step(v, a, b, c, dt, theta, left, payoff, exercise, rhs, beta, rr):  # pragma: no cover
    """One θ-step of V_τ = L V in place, Dirichlet ends (left value given, right value 0).

    With ``exercise`` the discrete linear complementarity problem is solved by
    Brennan–Schwartz: UL elimination from the far out-of-the-money side, then substitution
    from the deep in-the-money side taking the max with the payoff.
    """
    m = rhs.shape[0]
    explicit = (1.0 - theta) * dt
    # implicit side: (1 - θ dt b) V_i - θ dt a V_{i-1} - θ dt c V_{i+1}
    lo, di, up = -theta * dt * a, 1.0 - theta * dt * b, -theta * dt * c
    # One sweep from the right builds the explicit right-hand side and eliminates the
    # super-diagonal; beta holds the reciprocals of the eliminated diagonal (one division per
    # point). The left boundary value at the new level enters row 0; the right one is 0.
    r = v[m] + explicit * (a * v[m - 1] + b * v[m] + c * v[m + 1])
    if m == 1:
        r -= lo * left
    beta[m - 1] = 1.0 / di
    rr[m - 1] = r
    for i in range(m - 2, -1, -1):
        r = v[i + 1] + explicit * (a * v[i] + b * v[i + 1] + c * v[i + 2])
        if i == 0:
            r -= lo * left
        f = up * beta[i + 1]
        beta[i] = 1.0 / (di - f * lo)
        rr[i] = r - f * rr[i + 1]
    v[0] = left
    v[m + 1] = 0.0
    prev = left
    for i in range(m):
        val = (rr[i] - lo * prev) * beta[i]
        if exercise and val < payoff[i + 1]:
            val = payoff[i + 1]
        v[i + 1] = val
        prev = val


def fd_price(moneyness: np.ndarray, tau: np.ndarray, sigma: np.ndarray, rate: np.ndarray,
             div: np.ndarray, is_call: np.ndarray, american: bool = True,
             grid: FDGrid | None = None) -> np.ndarray:
    """Per-unit-strike prices, one compiled PDE solve per option.

    Each option gets its own τ grid ending exactly at its maturity, so no interpolation in τ
    (and, with ``grid.fit_to_point``, its own x grid sized to its moneyness). Calls are priced
    as puts through the put–call symmetry.
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                   for a in (moneyness, tau, sigma, rate, div)), is_call)
    m, t, s, r, q, c = (a.ravel() for a in arrays)
    m_put = np.where(c, 1.0 / m, m)
    r_put, q_put = np.where(c, q, r), np.where(c, r, q)
    grid = grid or FDGrid()
    # fitted: the point must lie inside, plus the drift's shift of the distribution over τ
    span = np.abs(np.log(m_put)) + np.abs(r_put - q_put) * t if grid.fit_to_point else None
    surf = solve_put_surface(s, r_put, q_put, tau_max=t, save_every=grid.n_t, grid=grid,
                             european=not american, span=span)
    am, eu = surf.interpolate(np.arange(m.size), np.full(m.size, -1), np.log(m_put))
    return np.where(c, m, 1.0) * (am if american else eu)
