"""The implied-volatility surface of a chain: one SVI slice per expiry, a fit report, calendar
checks, and interpolation in maturity that keeps total variance increasing.

Quotes used per expiry: the out-of-the-money side (puts below the parity forward, calls at or
above it, where quotes are liquid and the early-exercise premium smallest), unflagged, with an
implied volatility. Weights are quote quality: 1/(bid–ask spread in vol points)², so a quote
whose price pins σ tightly counts more. Calendar arbitrage (total variance decreasing in
maturity at fixed log-moneyness k = ln(K/F)) is detected and reported, never silently
repaired; interpolation uses the running maximum over earlier slices so its total variance is
non-decreasing in maturity even where the fitted slices are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from causalcast.options.analytics.chain import ValidatedChain
from causalcast.options.analytics.iv import european_iv
from causalcast.options.analytics.parity import DEFAULT_RATE, ExpiryForward, implied_forwards
from causalcast.options.analytics.svi import SliceFit, fit_slice
from causalcast.options.black_scholes import bsm_greeks

MIN_QUOTES = 5
CALENDAR_TOL = 1e-6


@dataclass
class SurfaceSlice:
    expiry: pd.Timestamp
    tau: float
    forward: float
    fit: SliceFit
    used: int
    rmse_vol_points: float
    # the quotes the slice was fitted to: strikes and their market implied volatilities
    strikes: np.ndarray | None = None
    market_iv: np.ndarray | None = None

    def smile(self, points: int) -> dict[str, Any]:
        """The market points the slice was fitted to and its fitted SVI smile at ``points``
        strikes evenly spaced in log-moneyness over the quotes' range (what a smile chart
        draws, so no client re-implements SVI)."""
        strikes = np.asarray(self.strikes, float)
        k = np.linspace(np.log(strikes.min() / self.forward),
                        np.log(strikes.max() / self.forward), points)
        fitted = np.sqrt(np.maximum(self.fit.params.w(k), 0.0) / self.tau)
        return {"strike": strikes.tolist(),
                "implied_volatility": np.asarray(self.market_iv, float).tolist(),
                "fit_strike": (self.forward * np.exp(k)).tolist(),
                "fit_implied_volatility": fitted.tolist()}


@dataclass
class Surface:
    spot: float
    rate: float
    slices: list[SurfaceSlice]
    forwards: dict[Any, ExpiryForward]
    excluded: list[dict[str, Any]] = field(default_factory=list)
    calendar: list[dict[str, Any]] = field(default_factory=list)
    style: str = "european"

    @property
    def taus(self) -> np.ndarray:
        return np.array([s.tau for s in self.slices])

    def forward(self, tau: Any) -> np.ndarray:
        """Forward by linear interpolation of ln F in τ (through ln S at τ = 0)."""
        t = np.concatenate([[0.0], self.taus])
        lf = np.log(np.concatenate([[self.spot], [s.forward for s in self.slices]]))
        tau = np.asarray(tau, float)
        last = (lf[-1] - lf[0]) / t[-1]
        return np.exp(np.where(tau <= t[-1], np.interp(tau, t, lf), lf[0] + last * tau))

    def total_variance(self, k: Any, tau: Any) -> np.ndarray:
        """w(k, τ): linear in τ between slices of the running-maximum envelope (so ∂w/∂τ ≥ 0),
        proportional to τ before the first and after the last slice (constant implied vol)."""
        k, tau = np.broadcast_arrays(np.asarray(k, float), np.asarray(tau, float))
        shape = k.shape
        k, tau = k.ravel(), tau.ravel()
        ws = np.maximum.accumulate(np.stack([s.fit.params.w(k) for s in self.slices]), axis=0)
        taus = self.taus
        out = np.empty(k.shape)
        first, last = tau <= taus[0], tau >= taus[-1]
        out[first] = ws[0][first] * tau[first] / taus[0]
        out[last] = ws[-1][last] * tau[last] / taus[-1]
        mid = ~(first | last)
        if mid.any():
            j = np.searchsorted(taus, tau[mid]) - 1
            lam = (tau[mid] - taus[j]) / (taus[j + 1] - taus[j])
            idx = np.flatnonzero(mid)
            out[mid] = (1 - lam) * ws[j, idx] + lam * ws[j + 1, idx]
        return out.reshape(shape)

    def implied_vol(self, strike: Any, tau: Any) -> np.ndarray:
        tau = np.asarray(tau, float)
        k = np.log(np.asarray(strike, float) / self.forward(tau))
        return np.sqrt(np.maximum(self.total_variance(k, tau), 0.0) / tau)

    def div_yield(self, tau: Any) -> np.ndarray:
        tau = np.asarray(tau, float)
        return self.rate - np.log(self.forward(tau) / self.spot) / tau

    def report(self) -> dict[str, Any]:
        return {
            "style": self.style,
            "rate": self.rate,
            "units": {"rmse": "implied-vol points (0.01 = 1 point)", "tau": "years",
                      "total_variance": "sigma^2 * tau"},
            "expiries": [{
                "expiry": str(s.expiry), "tau": s.tau, "forward": s.forward,
                "div_yield": self.forwards[s.expiry].div, "svi": s.fit.params.as_dict(),
                "quotes_used": s.used, "rmse_vol_points": s.rmse_vol_points,
                "butterfly_arbitrage_in_quotes": s.fit.butterfly_in_quotes,
                "butterfly_free": s.fit.butterfly_free, "min_g": s.fit.min_g,
                "min_g_at_k": s.fit.min_g_at} for s in self.slices],
            "excluded": self.excluded,
            "calendar_arbitrage": self.calendar,
        }


def _calendar_checks(slices: list[SurfaceSlice]) -> list[dict[str, Any]]:
    found = []
    for a, b in pairwise(slices):
        k = np.linspace(-1.0, 1.0, 401) * max(1.0, 4 * np.sqrt(b.fit.params.w(0.0)))
        gap = b.fit.params.w(k) - a.fit.params.w(k)
        bad = gap < -CALENDAR_TOL
        if bad.any():
            found.append({"expiries": [str(a.expiry), str(b.expiry)],
                          "k_range": [float(k[bad].min()), float(k[bad].max())],
                          "max_total_variance_deficit": float(-gap.min()),
                          "detail": "total variance decreases with maturity (calendar "
                                    "arbitrage); interpolation uses the running maximum"})
    return found


def fit_surface(chain: ValidatedChain, rate: float = DEFAULT_RATE,
                style: str = "european", min_quotes: int = MIN_QUOTES) -> Surface:
    """Fit a validated chain. ``style='american'`` inverts the mids with `american_iv` and
    fits the smile of the resulting volatilities (same SVI, same checks)."""
    if style not in ("european", "american"):
        raise ValueError(f"style: expected european or american, got {style!r}")
    usable = chain.usable
    excluded = chain.excluded()
    if usable.empty:
        raise ValueError("chain: no usable quotes (every row is flagged)")
    spot = float(usable["spot"].iloc[0])
    forwards = implied_forwards(usable, rate)
    slices = []
    for expiry, group in usable.groupby("expiry"):
        fw = forwards[expiry]
        otm = group[(group["type"] == "put") & (group["strike"] < fw.forward)
                    | (group["type"] == "call") & (group["strike"] >= fw.forward)]
        for i, r in group.drop(otm.index).iterrows():
            excluded.append({"row": int(i), "expiry": str(expiry.date()),
                             "strike": float(r.strike), "type": r.type,
                             "reason": "in the money: the out-of-the-money quote is used"})
        args = (otm["mid"].to_numpy(), spot, otm["strike"].to_numpy(), fw.tau, rate, fw.div,
                otm["type"].to_numpy())
        if style == "european":
            res = european_iv(*args)
            iv, reason = res.iv, res.reason
        else:
            from causalcast.options.analytics.american_iv import american_iv

            res = american_iv(*args)
            iv, reason = res.iv, res.reason
        for (i, r), why in zip(otm.iterrows(), reason, strict=True):
            if why:
                excluded.append({"row": int(i), "expiry": str(expiry.date()),
                                 "strike": float(r.strike), "type": r.type,
                                 "reason": f"implied volatility: {why}"})
        ok = np.isfinite(iv)
        if ok.sum() < min_quotes:
            excluded.append({"expiry": str(expiry.date()), "reason": f"expiry skipped: "
                             f"{int(ok.sum())} usable quotes, the fit needs {min_quotes}"})
            continue
        strikes = otm["strike"].to_numpy()[ok]
        vol = iv[ok]
        vega = bsm_greeks(spot, strikes, fw.tau, vol, rate, fw.div)["vega"]
        spread_vol = (otm["ask"] - otm["bid"]).to_numpy()[ok] / np.maximum(vega, 1e-12)
        weights = 1.0 / np.maximum(spread_vol, 1e-4) ** 2
        k = np.log(strikes / fw.forward)
        fit = fit_slice(k, vol**2 * fw.tau, weights)
        model_vol = np.sqrt(np.maximum(fit.params.w(k), 0) / fw.tau)
        rmse = float(np.sqrt(np.mean((model_vol - vol) ** 2)) * 100)
        slices.append(SurfaceSlice(expiry, fw.tau, fw.forward, fit, int(ok.sum()), rmse,
                                   strikes, vol))
    if not slices:
        raise ValueError(f"chain: no expiry has {min_quotes} usable quotes to fit")
    return Surface(spot, rate, slices, forwards, excluded, _calendar_checks(slices), style)
