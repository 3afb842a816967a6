"""A synthetic chain from known SVI slices: the ground truth that tests, the benchmark and the
worked example fit against. European prices from the slices' implied volatilities, with a
bid–ask spread around them and the mid displaced by noise inside the spread."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalcast.options.analytics.svi import SVIParams
from causalcast.options.black_scholes import bsm_price

DEFAULT_SLICES = {
    30: SVIParams(0.004, 0.04, -0.45, 0.02, 0.12),
    91: SVIParams(0.012, 0.07, -0.40, 0.03, 0.18),
    182: SVIParams(0.025, 0.09, -0.35, 0.04, 0.22),
    365: SVIParams(0.05, 0.12, -0.30, 0.05, 0.28),
}


def synthetic_chain(spot: float = 100.0, rate: float = 0.04, div: float = 0.01,
                    slices: dict[int, SVIParams] | None = None, n_strikes: int = 41,
                    spread: float = 0.02, noise: float = 0.25, seed: int = 0,
                    as_of: str = "2026-01-02T15:00:00Z") -> pd.DataFrame:
    """Calls and puts at ``n_strikes`` strikes per expiry (days → SVI slice). The spread is
    ``spread`` of the price plus one cent; the mid moves by up to ``noise`` half-spreads."""
    rng = np.random.default_rng(seed)
    slices = DEFAULT_SLICES if slices is None else slices
    now = pd.Timestamp(as_of)
    rows = []
    for days, p in slices.items():
        tau = days / 365.0
        fwd = spot * np.exp((rate - div) * tau)
        width = 3.0 * np.sqrt(p.w(0.0))
        strikes = np.round(fwd * np.exp(np.linspace(-width, width, n_strikes)), 2)
        vol = np.sqrt(p.w(np.log(strikes / fwd)) / tau)
        for kind in ("call", "put"):
            fair = bsm_price(spot, strikes, tau, vol, rate, div, kind)
            half = 0.5 * (spread * fair + 0.01)
            mid = fair + noise * half * rng.uniform(-1, 1, strikes.size)
            rows.append(pd.DataFrame({
                "expiry": now + pd.Timedelta(days=days), "strike": strikes, "type": kind,
                "bid": np.maximum(mid - half, 0.0), "ask": mid + half, "last": fair,
                "volume": 100.0, "open_interest": 1000.0, "spot": spot, "as_of": now}))
    return pd.concat(rows, ignore_index=True)
