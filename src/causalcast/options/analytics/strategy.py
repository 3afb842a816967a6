"""Multi-leg strategies: premium, payoff and P&L, breakevens, extremes, Greeks, and
probabilities under three laws of the underlying side by side.

Conventions (stated in every result): legs are valued as European options by the closed form
(`black_scholes`) with σ from the surface at the leg's strike and expiry (or the flat σ) — no
early exercise. The horizon H is the earliest option expiry. P&L at H = value of the legs at
H − net premium compounded at the risk-free rate to H; a stock leg is held with its dividends
reinvested (q·S per year buys more shares), so under the risk-neutral lognormal law every
strategy bought at model prices has expected P&L exactly zero. "Probability of reaching the
target" is P(P&L at H ≥ target) (not a first-passage probability).

When every option leg expires at H the P&L is piecewise linear in S_H with kinks at the
strikes, so breakevens are exact and expectations are exact sums of CDF differences and
partial moments per segment; otherwise (calendars) both come from a fine grid with roots
polished by Brent's method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from causalcast.options.analytics.legs import Leg
from causalcast.options.analytics.units import GREEK_UNITS, convert_greeks, json_safe
from causalcast.options.black_scholes import bsm_greeks, bsm_price
from causalcast.options.inputs import OptionInputError

# The units of every number in a strategy's result, returned with it (the dashboard shows
# these words, so a page cannot label a premium per contract when it is per share).
STRATEGY_UNITS = {
    "quantity": "units of the underlying (+1 call = the right to buy one share; a listed "
                "contract is usually 100)",
    "money": "the underlying's currency, for the legs' quantities: prices, net premium, "
             "max profit/loss, expected P&L and the P&L curves",
    "breakevens": "underlying price at the horizon",
    "horizon_years": "years (the earliest option expiry)",
    "probabilities": "fraction 0 to 1 (pop, prob_target)",
}
PNL_CONVENTION = ("P&L at the horizon = legs' value at the horizon − net premium × e^{r·H}; "
                  "stock legs with dividends reinvested; options valued European (closed form)")


@dataclass(frozen=True)
class Market:
    """Spot, rate and the volatility/dividend source: a fitted surface or flat σ and q."""

    spot: float
    rate: float = 0.0
    div: float = 0.0
    sigma: float | None = None
    surface: Any = None

    def vol(self, strike: float, tau: float) -> float:
        if self.surface is not None:
            return float(self.surface.implied_vol(strike, tau))
        if self.sigma is None:
            raise OptionInputError("sigma: give a flat volatility or a surface")
        return float(self.sigma)

    def q(self, tau: float) -> float:
        return float(self.surface.div_yield(tau)) if self.surface is not None else self.div


def _check_legs(legs: list[Leg]) -> float:
    if not legs:
        raise OptionInputError("legs: at least one leg")
    taus = [leg.tau for leg in legs if leg.kind != "stock"]
    if not taus:
        raise OptionInputError("legs: at least one option leg (the horizon is its expiry)")
    return float(min(taus))


def leg_prices(legs: list[Leg], mk: Market) -> list[float]:
    """The given @price, or the model price from the surface/flat σ."""
    out = []
    for leg in legs:
        if leg.price is not None:
            out.append(leg.price)
        elif leg.kind == "stock":
            out.append(mk.spot)
        else:
            out.append(float(bsm_price(mk.spot, leg.strike, leg.tau, mk.vol(leg.strike, leg.tau),
                                       mk.rate, mk.q(leg.tau), leg.kind)))
    return out


def value_at(legs: list[Leg], mk: Market, s: np.ndarray, t: float) -> np.ndarray:
    """Value of the legs at time t for underlying prices s (options expiring by t at payoff)."""
    s = np.asarray(s, float)
    total = np.zeros_like(s)
    for leg in legs:
        if leg.kind == "stock":
            total += leg.quantity * s * np.exp(mk.q(max(t, 1e-12)) * t)
            continue
        left = leg.tau - t
        if left <= 1e-12:
            pay = np.maximum(s - leg.strike, 0) if leg.kind == "call" else np.maximum(
                leg.strike - s, 0)
            total += leg.quantity * pay
        else:
            total += leg.quantity * bsm_price(np.maximum(s, 1e-12), leg.strike, left,
                                              mk.vol(leg.strike, leg.tau), mk.rate, mk.q(left),
                                              leg.kind)
    return total


def _piecewise(legs: list[Leg], cost: float, horizon: float,
               mk: Market) -> tuple[np.ndarray, ...]:
    """Kinks, and per segment (slope, intercept) of P&L(S) = slope·S + intercept."""
    kinks = np.unique([leg.strike for leg in legs if leg.kind != "stock"])
    edges = np.concatenate([[0.0], kinks, [np.inf]])
    mids = np.concatenate([[kinks[0] / 2], 0.5 * (kinks[1:] + kinks[:-1]), [kinks[-1] + 1]])
    slope = np.zeros(mids.size)
    for leg in legs:
        if leg.kind == "stock":
            slope += leg.quantity * np.exp(mk.q(horizon) * horizon)
        elif leg.kind == "call":
            slope += leg.quantity * (mids > leg.strike)
        else:
            slope -= leg.quantity * (mids < leg.strike)
    intercept = value_at(legs, mk, mids, horizon) - cost - slope * mids
    return edges, slope, intercept


def _roots(edges: np.ndarray, slope: np.ndarray, intercept: np.ndarray,
           level: float) -> list[float]:
    roots = []
    for a, b, m, c in zip(edges[:-1], edges[1:], slope, intercept, strict=True):
        if m != 0:
            r = (level - c) / m
            if a < r <= b or (a == 0 and r == 0):
                roots.append(float(r))
    return sorted(set(roots))


def _prob_above(law: Any, edges: np.ndarray, slope: np.ndarray, intercept: np.ndarray,
                level: float, strict: bool = True) -> float:
    p = 0.0
    for a, b, m, c in zip(edges[:-1], edges[1:], slope, intercept, strict=True):
        fa = m * a + c - level
        if m == 0:
            if fa > 0 or (not strict and fa >= 0):
                p += float(law.cdf(b) - law.cdf(a))
            continue
        r = (level - c) / m
        lo, hi = (max(a, r), b) if m > 0 else (a, min(b, r))
        if hi > lo:
            p += float(law.cdf(hi) - law.cdf(lo))
    return p


def _grid_eval(legs: list[Leg], mk: Market, cost: float, horizon: float, law: Any,
               target: float | None) -> dict[str, Any]:
    s, pdf = law.grid()
    pnl = value_at(legs, mk, s, horizon) - cost
    ds = np.diff(s)
    w = pdf * 0.5 * (np.concatenate([ds, [0.0]]) + np.concatenate([[0.0], ds]))  # trapezoid
    w = w / w.sum()
    out = {"pop": float(w[pnl > 0].sum()), "expected_pnl": float(np.sum(w * pnl))}
    if target is not None:
        out["prob_target"] = float(w[pnl >= target].sum())
    return out


def evaluate(legs: list[Leg], mk: Market, laws: list[Callable[[float], Any]],
             target: float | None = None, dates: tuple[float, ...] = (),
             greeks_units: str = "trader", n_curve: int = 101) -> dict[str, Any]:
    """Everything the CLI and the service return for one strategy (JSON-safe). ``laws`` are
    factories: horizon (years) → law of S at that horizon (see `standard_laws`)."""
    horizon = _check_legs(legs)
    prices = leg_prices(legs, mk)
    premium = float(sum(leg.quantity * p for leg, p in zip(legs, prices, strict=True)))
    cost = premium * np.exp(mk.rate * horizon)
    linear = all(leg.kind == "stock" or abs(leg.tau - horizon) < 1e-12 for leg in legs)
    notes = []
    if linear:
        edges, slope, intercept = _piecewise(legs, cost, horizon, mk)
        breakevens = _roots(edges, slope, intercept, 0.0)
        at_kinks = slope[:-1] * edges[1:-1] + intercept[:-1]
        values = np.concatenate([[intercept[0]], at_kinks])
        max_profit = None if slope[-1] > 0 else float(values.max())
        max_loss = None if slope[-1] < 0 else float(values.min())
    else:
        grid = np.linspace(1e-6, 5 * mk.spot, 20001)
        pnl = value_at(legs, mk, grid, horizon) - cost
        sign = np.flatnonzero(np.diff(np.sign(pnl)) != 0)
        def f(x: float) -> float:
            return float(value_at(legs, mk, np.array([x]), horizon)[0] - cost)
        breakevens = [float(brentq(f, grid[i], grid[i + 1], xtol=1e-12)) for i in sign]
        tail_slope = (pnl[-1] - pnl[-2]) / (grid[-1] - grid[-2])
        max_profit = None if tail_slope > 1e-9 else float(pnl.max())
        max_loss = None if tail_slope < -1e-9 else float(pnl.min())
        notes.append("legs expire at different dates: max profit/loss from a grid on "
                     "(0, 5·spot], breakevens by Brent's method")
    per_law = {}
    for make_law in laws:
        law = make_law(horizon)
        if linear:
            res = {"pop": _prob_above(law, edges, slope, intercept, 0.0)}
            moment = law.partial_moment(edges[:-1], edges[1:])
            mass = law.cdf(edges[1:]) - law.cdf(edges[:-1])
            res["expected_pnl"] = float(np.sum(slope * moment + intercept * mass))
            if target is not None:
                res["prob_target"] = _prob_above(law, edges, slope, intercept, target, False)
        else:
            res = _grid_eval(legs, mk, cost, horizon, law, target)
        res["note"] = law.note
        if getattr(law, "evidence", None) is not None and law.name == "model":
            res["evidence"] = law.evidence
        per_law[law.name] = res
    greeks = {k: 0.0 for k in ("delta", "gamma", "vega", "theta", "rho")}
    for leg in legs:
        if leg.kind == "stock":
            greeks["delta"] += leg.quantity
            continue
        g = bsm_greeks(mk.spot, leg.strike, leg.tau, mk.vol(leg.strike, leg.tau), mk.rate,
                       mk.q(leg.tau), leg.kind)
        for k in greeks:
            greeks[k] += leg.quantity * float(g[k])
    spot_grid = np.linspace(0.5 * mk.spot, 1.5 * mk.spot, n_curve)
    curves = {"expiry": (value_at(legs, mk, spot_grid, horizon) - cost).tolist()}
    for t in dates:
        if not 0 <= t < horizon:
            raise OptionInputError(f"dates: {t} must be in [0, horizon={horizon:.6g}) years")
        curves[f"t={t:.6g}y"] = (value_at(legs, mk, spot_grid, t) - premium
                                 * np.exp(mk.rate * t)).tolist()
    out = {
        "legs": [dict(leg.as_dict(), price=p) for leg, p in zip(legs, prices, strict=True)],
        "horizon_years": horizon,
        "net_premium": premium,
        "net_premium_note": "positive = paid (debit), negative = received (credit)",
        "pnl_convention": PNL_CONVENTION,
        "units": STRATEGY_UNITS,
        "breakevens": breakevens,
        "max_profit": max_profit,
        "max_profit_reason": "unbounded (P&L rises without limit as S grows)"
        if max_profit is None else None,
        "max_loss": max_loss,
        "max_loss_reason": "unbounded (P&L falls without limit as S grows)"
        if max_loss is None else None,
        "target": target,
        "pop": {k: v["pop"] for k, v in per_law.items()},
        "expected_pnl": {k: v["expected_pnl"] for k, v in per_law.items()},
        "distributions": per_law,
        "greeks": convert_greeks(greeks, greeks_units),
        "greeks_units": {"convention": greeks_units, **GREEK_UNITS[greeks_units]},
        "pnl_curves": {"spot": spot_grid.tolist(), **curves},
        "notes": notes,
    }
    return json_safe(out)


def standard_laws(mk: Market, sigma: float | None = None,
                  forecast: dict[str, Any] | None = None) -> list[Callable[[float], Any]]:
    """Factories for (a) flat lognormal σ (given, else none), (b) the market's risk-neutral
    density (when the market has a surface), (c) the model's Student-t log return (``forecast``:
    mu, sigma, nu, horizon and optional evidence)."""
    from causalcast.options.analytics.density import surface_density
    from causalcast.options.analytics.distributions import GridLaw, Lognormal, StudentTLogReturn

    laws: list[Callable[[float], Any]] = []
    if sigma is not None:
        laws.append(lambda h: Lognormal(mk.spot, mk.rate, mk.q(h), float(sigma), h))
    if mk.surface is not None:
        def market(h: float) -> GridLaw:
            dens = surface_density(mk.surface, h)
            return GridLaw(dens.strikes, dens.pdf, note=GridLaw.note + dens.note)
        laws.append(market)
    if forecast is not None:
        f = dict(forecast)
        laws.append(lambda h: StudentTLogReturn(mk.spot, float(f["mu"]), float(f["sigma"]),
                                                float(f["nu"]), float(f["horizon"]), h,
                                                dict(f.get("evidence") or {})))
    if not laws:
        raise OptionInputError("distributions: give sigma, a surface, or a forecast")
    return laws
