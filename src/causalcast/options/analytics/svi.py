"""Raw SVI smiles: total implied variance in log-moneyness, fitted with no butterfly arbitrage.

Raw SVI (Gatheral 2004): w(k) = a + b (ρ (k − m) + √((k − m)² + σ²)), k = ln(K/F), w = σ_imp²τ.
A slice is free of butterfly arbitrage iff its density is non-negative, i.e. Gatheral's

    g(k) = (1 − k w′/(2w))² − (w′²/4)(1/w + 1/4) + w″/2 ≥ 0   (and w > 0),

and Lee's moment bound b(1 + |ρ|) ≤ 2 holds. The fit is weighted least squares on w with both
conditions imposed as penalties on a grid wider than the quotes; it is run first without them,
so that arbitrage in the quotes themselves is detected and reported, then with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

PENALTY = 1e3
G_TOL = -1e-9


@dataclass(frozen=True)
class SVIParams:
    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def w(self, k: np.ndarray) -> np.ndarray:
        d = np.asarray(k, float) - self.m
        return self.a + self.b * (self.rho * d + np.sqrt(d * d + self.sigma**2))

    def w_slopes(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = np.asarray(k, float) - self.m
        root = np.sqrt(d * d + self.sigma**2)
        w = self.a + self.b * (self.rho * d + root)
        return w, self.b * (self.rho + d / root), self.b * self.sigma**2 / root**3

    def g(self, k: np.ndarray) -> np.ndarray:
        """Gatheral's butterfly function; −inf where w ≤ 0."""
        k = np.asarray(k, float)
        w, w1, w2 = self.w_slopes(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (1 - k * w1 / (2 * w)) ** 2 - w1**2 / 4 * (1 / w + 0.25) + w2 / 2
        return np.where(w > 0, g, -np.inf)

    def as_dict(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "rho": self.rho, "m": self.m, "sigma": self.sigma}


@dataclass(frozen=True)
class SliceFit:
    params: SVIParams
    butterfly_in_quotes: bool       # the unconstrained fit needed negative density
    butterfly_free: bool            # the returned fit passes g ≥ 0 and Lee's bound
    min_g: float
    min_g_at: float
    rmse_w: float


def _residuals(theta: np.ndarray, k: np.ndarray, w: np.ndarray, sw: np.ndarray,
               grid: np.ndarray, constrained: bool) -> np.ndarray:
    p = SVIParams(*theta)
    res = sw * (p.w(k) - w)
    if not constrained:
        return res
    g = p.g(grid)
    g = np.where(np.isfinite(g), g, -1.0)
    lee = max(p.b * (1 + abs(p.rho)) - 2.0, 0.0)
    floor = max(-(p.a + p.b * p.sigma * np.sqrt(1 - p.rho**2)), 0.0)
    return np.concatenate([res, PENALTY * np.minimum(g, 0.0), [PENALTY * lee, PENALTY * floor]])


def check_grid(k: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(k)), float(np.max(k))
    span = max(hi - lo, 0.5)
    return np.linspace(lo - span, hi + span, 401)


def _fit(k: np.ndarray, w: np.ndarray, weights: np.ndarray, constrained: bool,
         start: SVIParams | None) -> SVIParams:
    sw = np.sqrt(weights / weights.sum())
    grid = check_grid(k)
    w_max = float(np.max(w))
    lower = [-w_max, 1e-8, -0.999, float(k.min()) - 1.0, 1e-4]
    upper = [w_max, 4.0, 0.999, float(k.max()) + 1.0, 4.0]
    starts = [] if start is None else [start]
    atm = float(np.interp(0.0, np.sort(k), w[np.argsort(k)]))
    for rho in (-0.6, 0.0, 0.4):
        for m in (0.0, float(k[np.argmin(w)])):
            starts.append(SVIParams(0.5 * atm, 0.1, rho, m, 0.2))
    best, cost = None, np.inf
    for s0 in starts:
        theta0 = np.clip([s0.a, s0.b, s0.rho, s0.m, s0.sigma], np.add(lower, 1e-9),
                         np.subtract(upper, 1e-9))
        sol = least_squares(_residuals, theta0, bounds=(lower, upper), method="trf",
                            args=(k, w, sw, grid, constrained), xtol=1e-14, ftol=1e-14,
                            gtol=1e-14, max_nfev=2000)
        if sol.cost < cost:
            best, cost = SVIParams(*map(float, sol.x)), sol.cost
    assert best is not None
    return best


def fit_slice(k: np.ndarray, w: np.ndarray, weights: np.ndarray) -> SliceFit:
    """Fit one expiry: k = ln(K/F), w = total implied variance, weights by quote quality."""
    k, w, weights = (np.asarray(a, float) for a in (k, w, weights))
    free = _fit(k, w, weights, False, None)
    grid = check_grid(k)
    in_quotes = bool(np.min(free.g(grid)) < G_TOL or free.b * (1 + abs(free.rho)) > 2.0)
    params = _fit(k, w, weights, True, free) if in_quotes else free
    g = params.g(grid)
    i = int(np.argmin(g))
    ok = bool(g[i] >= G_TOL and params.b * (1 + abs(params.rho)) <= 2.0 + 1e-12)
    rmse = float(np.sqrt(np.average((params.w(k) - w) ** 2, weights=weights)))
    return SliceFit(params, in_quotes, ok, float(g[i]), float(grid[i]), rmse)
