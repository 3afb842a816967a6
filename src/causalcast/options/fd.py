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

Everything is vectorised over a batch of parameter sets; the two sweeps over the grid are the
only Python loops. Prices are per unit strike. Calls come from the put–call symmetry
C(S, K, r, q) = P(K, S, q, r) (McDonald–Schroder), which holds for American options too.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class FDSurface:
    """Put prices per unit strike: x (B, n_x), taus (T,), american/european (B, T, n_x)."""

    x: np.ndarray
    taus: np.ndarray
    american: np.ndarray
    european: np.ndarray

    def interpolate(self, b: np.ndarray, t: np.ndarray, log_m: np.ndarray) -> tuple[np.ndarray,
                                                                                np.ndarray]:
        """Linear interpolation in x at (parameter set b, saved slice t, ln S/K)."""
        x0 = self.x[b, 0]
        dx = self.x[b, 1] - x0
        pos = (log_m - x0) / dx
        i = np.clip(np.floor(pos).astype(np.int64), 0, self.x.shape[1] - 2)
        w = pos - i
        am = (1 - w) * self.american[b, t, i] + w * self.american[b, t, i + 1]
        eu = (1 - w) * self.european[b, t, i] + w * self.european[b, t, i + 1]
        return am, eu


def _tau_grid(tau_max: float, n_t: int) -> np.ndarray:
    return tau_max * (np.arange(n_t + 1) / n_t) ** 2


def solve_put_surface(sigma: np.ndarray, rate: np.ndarray, div: np.ndarray, tau_max: float = 2.0,
                      save_every: int = 5, grid: FDGrid | None = None) -> FDSurface:
    """American and European put surfaces for each (sigma[b], rate[b], div[b])."""
    grid = grid or FDGrid()
    sigma, rate, div = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (sigma, rate, div))
    if not (sigma.shape == rate.shape == div.shape) or sigma.ndim != 1:
        raise OptionInputError("sigma, rate, div: expected 1-D arrays of equal length")
    if (sigma <= 0).any() or not np.isfinite(np.concatenate([sigma, rate, div])).all():
        raise OptionInputError("sigma: must be finite and > 0 (rate, div finite)")
    n_b, n_x = sigma.size, grid.n_x
    half = np.maximum(grid.moneyness_span + grid.n_vol * sigma * np.sqrt(tau_max),
                      grid.min_half_width)
    x = np.linspace(-1.0, 1.0, n_x)[None, :] * half[:, None]
    dx = (2 * half / (n_x - 1))[:, None]
    spot = np.exp(x)
    payoff = np.maximum(1.0 - spot, 0.0)
    s2, mu = (sigma**2)[:, None], (rate - div - 0.5 * sigma**2)[:, None]
    r = rate[:, None]
    lo_c = 0.5 * s2 / dx**2 - 0.5 * mu / dx   # coefficient of V_{i-1} in the operator L
    up_c = 0.5 * s2 / dx**2 + 0.5 * mu / dx   # of V_{i+1}
    di_c = -s2 / dx**2 - r                     # of V_i
    taus = _tau_grid(tau_max, grid.n_t)
    keep = list(range(0, grid.n_t + 1, save_every))
    if keep[-1] != grid.n_t:
        keep.append(grid.n_t)
    am_out = np.empty((n_b, len(keep), n_x))
    eu_out = np.empty((n_b, len(keep), n_x))
    am, eu = payoff.copy(), payoff.copy()
    am_out[:, 0], eu_out[:, 0] = am, eu
    k = 1
    for n in range(1, grid.n_t + 1):
        dt = taus[n] - taus[n - 1]
        theta = 1.0 if n <= grid.rannacher else 0.5
        tau = taus[n]
        s_lo = spot[:, 0]
        eu_lo = np.exp(-rate * tau) - s_lo * np.exp(-div * tau)
        am_lo = np.maximum(1.0 - s_lo, eu_lo)
        am = _step(am, lo_c, di_c, up_c, dt, theta, am_lo, payoff)
        eu = _step(eu, lo_c, di_c, up_c, dt, theta, eu_lo, None)
        if n in keep:
            am_out[:, k], eu_out[:, k] = am, eu
            k += 1
    return FDSurface(x=x, taus=taus[keep], american=am_out, european=eu_out)


def _step(v: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, dt: float, theta: float,
          left: np.ndarray, payoff: np.ndarray | None) -> np.ndarray:
    """One θ-step of V_τ = L V with Dirichlet ends (left value given, right value 0).

    With ``payoff`` the discrete linear complementarity problem is solved by Brennan–Schwartz.
    """
    a, b, c = a[:, 0], b[:, 0], c[:, 0]
    explicit = (1.0 - theta) * dt
    rhs = v[:, 1:-1] + explicit * (a[:, None] * v[:, :-2] + b[:, None] * v[:, 1:-1]
                                   + c[:, None] * v[:, 2:])
    # implicit side: (1 - θ dt b) V_i - θ dt a V_{i-1} - θ dt c V_{i+1}
    lo, di, up = -theta * dt * a, 1.0 - theta * dt * b, -theta * dt * c
    rhs[:, 0] -= lo * left  # left boundary value at the new time level; right boundary is 0
    m = rhs.shape[1]
    # UL elimination: remove the super-diagonal sweeping from the right (far out of the money).
    beta = np.empty_like(rhs)
    rr = np.empty_like(rhs)
    beta[:, m - 1] = di
    rr[:, m - 1] = rhs[:, m - 1]
    for i in range(m - 2, -1, -1):
        f = up / beta[:, i + 1]
        beta[:, i] = di - f * lo
        rr[:, i] = rhs[:, i] - f * rr[:, i + 1]
    out = np.empty_like(v)
    out[:, 0] = left
    out[:, -1] = 0.0
    prev = left
    g = payoff[:, 1:-1] if payoff is not None else None
    for i in range(m):
        val = (rr[:, i] - lo * prev) / beta[:, i]
        if g is not None:
            val = np.maximum(val, g[:, i])
        out[:, i + 1] = val
        prev = val
    return out


def fd_price(moneyness: np.ndarray, tau: np.ndarray, sigma: np.ndarray, rate: np.ndarray,
             div: np.ndarray, is_call: np.ndarray, american: bool = True,
             grid: FDGrid | None = None) -> np.ndarray:
    """Per-unit-strike prices, one PDE solve per option (a reference, not a fast path).

    Each option gets its own τ grid ending exactly at its maturity, so no interpolation in τ.
    Calls are priced as puts through the put–call symmetry.
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                   for a in (moneyness, tau, sigma, rate, div)), is_call)
    m, t, s, r, q, c = (a.ravel() for a in arrays)
    m_put = np.where(c, 1.0 / m, m)
    r_put, q_put = np.where(c, q, r), np.where(c, r, q)
    out = np.empty(m.size)
    for tau_val in np.unique(t):
        idx = np.flatnonzero(t == tau_val)
        surf = solve_put_surface(s[idx], r_put[idx], q_put[idx], tau_max=float(tau_val),
                                 save_every=grid.n_t if grid else FDGrid().n_t, grid=grid)
        am, eu = surf.interpolate(np.arange(idx.size), np.full(idx.size, -1), np.log(m_put[idx]))
        out[idx] = am if american else eu
    return np.where(c, m, 1.0) * out
