"""Laws of the underlying's price S_H at the strategy's horizon H, each exposing what an exact
expectation of a piecewise-linear payoff needs: the CDF and the partial first moment
E[S 1{a < S ≤ b}], plus a density on a grid for payoffs that are not piecewise linear.

(a) `Lognormal`: flat σ, risk-neutral drift r − q (closed forms).
(b) `GridLaw`: the market's risk-neutral density from the surface (`density.svi_density`).
(c) `StudentTLogReturn`: a forecast model's Student-t log return. Its mean of S_H is infinite
    (e^x against a polynomial tail), so expectations are taken over the log-return quantiles
    [TAIL, 1 − TAIL] and the result says so; probabilities are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import ndtr

TAIL = 1e-7


@dataclass(frozen=True)
class Lognormal:
    spot: float
    rate: float
    div: float
    sigma: float
    horizon: float
    name: str = "lognormal"
    note: str = "flat lognormal, risk-neutral drift r − q"

    def _z(self, s: np.ndarray, shift: float) -> np.ndarray:
        v = self.sigma * np.sqrt(self.horizon)
        mean = np.log(self.spot) + (self.rate - self.div - 0.5 * self.sigma**2) * self.horizon
        with np.errstate(divide="ignore"):
            return (np.log(np.asarray(s, float)) - mean) / v - shift * v

    def cdf(self, s: Any) -> np.ndarray:
        s = np.asarray(s, float)
        return np.where(s <= 0, 0.0, ndtr(self._z(np.maximum(s, 1e-300), 0.0)))

    def partial_moment(self, a: Any, b: Any) -> np.ndarray:
        fwd = self.spot * np.exp((self.rate - self.div) * self.horizon)

        def upto(s: np.ndarray) -> np.ndarray:
            s = np.asarray(s, float)
            out = np.where(np.isinf(s), 1.0, ndtr(self._z(np.maximum(s, 1e-300), 1.0)))
            return fwd * np.where(s <= 0, 0.0, out)
        return upto(b) - upto(a)

    def grid(self, n: int = 20001) -> tuple[np.ndarray, np.ndarray]:
        v = self.sigma * np.sqrt(self.horizon)
        mean = np.log(self.spot) + (self.rate - self.div - 0.5 * self.sigma**2) * self.horizon
        x = mean + v * np.linspace(-10, 10, n)
        s = np.exp(x)
        return s, stats.norm.pdf(x, mean, v) / s


@dataclass(frozen=True)
class GridLaw:
    """A density tabulated on strikes (trapezoid rule between nodes)."""

    s: np.ndarray
    pdf: np.ndarray
    name: str = "market"
    note: str = "risk-neutral density of the fitted SVI surface (Breeden–Litzenberger)"
    _cum: np.ndarray = field(init=False, repr=False)
    _cum_s: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mass = np.concatenate([[0.0], np.cumsum(0.5 * (self.pdf[1:] + self.pdf[:-1])
                                                * np.diff(self.s))])
        sp = self.s * self.pdf
        moment = np.concatenate([[0.0], np.cumsum(0.5 * (sp[1:] + sp[:-1]) * np.diff(self.s))])
        object.__setattr__(self, "_cum", mass / mass[-1])
        object.__setattr__(self, "_cum_s", moment / mass[-1])

    def cdf(self, s: Any) -> np.ndarray:
        return np.interp(np.asarray(s, float), self.s, self._cum, left=0.0, right=1.0)

    def partial_moment(self, a: Any, b: Any) -> np.ndarray:
        def upto(x: Any) -> np.ndarray:
            return np.interp(np.asarray(x, float), self.s, self._cum_s, left=0.0,
                             right=self._cum_s[-1])
        return upto(b) - upto(a)

    def grid(self, n: int = 0) -> tuple[np.ndarray, np.ndarray]:
        return self.s, self.pdf / self._cum[-1] if self._cum[-1] else self.pdf


@dataclass(frozen=True)
class StudentTLogReturn:
    """ln(S_H/S_0) = loc + scale·T_ν with loc = mu·H/horizon, scale = sigma·√(H/horizon):
    (mu, sigma) are the model's location and scale of the log return over ``horizon`` years."""

    spot: float
    mu: float
    sigma: float
    nu: float
    horizon: float
    at: float
    evidence: dict[str, Any] = field(default_factory=dict)
    name: str = "model"

    @property
    def loc(self) -> float:
        return self.mu * self.at / self.horizon

    @property
    def scale(self) -> float:
        return self.sigma * np.sqrt(self.at / self.horizon)

    @property
    def note(self) -> str:
        return (f"forecast Student-t log return (nu={self.nu:g}); expectations over log-return "
                f"quantiles [{TAIL:g}, {1 - TAIL:g}] because the Student-t mean of S is "
                "infinite; probabilities exact")

    def _x(self, s: Any) -> np.ndarray:
        s = np.asarray(s, float)
        with np.errstate(divide="ignore"):
            return (np.log(np.maximum(s, 0.0) / self.spot) - self.loc) / self.scale

    def cdf(self, s: Any) -> np.ndarray:
        return stats.t.cdf(self._x(s), self.nu)

    def grid(self, n: int = 40001) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = stats.t.ppf([TAIL, 1 - TAIL], self.nu)
        z = np.linspace(lo, hi, n)
        s = self.spot * np.exp(self.loc + self.scale * z)
        return s, stats.t.pdf(z, self.nu) / (self.scale * s)

    def partial_moment(self, a: Any, b: Any) -> np.ndarray:
        s, pdf = self.grid()
        sp = s * pdf
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (sp[1:] + sp[:-1]) * np.diff(s))])

        def upto(x: Any) -> np.ndarray:
            return np.interp(np.asarray(x, float), s, cum, left=0.0, right=cum[-1])
        return upto(b) - upto(a)
