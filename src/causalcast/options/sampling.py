"""Random points over the trained domain, for training and for the fixed accuracy test sets."""

from __future__ import annotations

import numpy as np

from causalcast.options.inputs import DAY, TRAINED_DOMAIN, Domain


def uniform_box(n: int, rng: np.random.Generator, domain: Domain = TRAINED_DOMAIN,
                tau_min: float | None = None) -> dict[str, np.ndarray]:
    """Uniform in S/K, τ, σ, r, q: the distribution of the acceptance test sets."""
    lo_t, hi_t = domain.tau
    return {
        "m": rng.uniform(*domain.moneyness, n),
        "tau": rng.uniform(max(lo_t, tau_min or lo_t), hi_t, n),
        "sigma": rng.uniform(*domain.sigma, n),
        "rate": rng.uniform(*domain.rate, n),
        "div": rng.uniform(*domain.div, n),
    }


def training_mix(n: int, rng: np.random.Generator, domain: Domain = TRAINED_DOMAIN,
                 x_max: float = 8.0, short_fraction: float = 0.4,
                 div_max: float | None = None) -> dict[str, np.ndarray]:
    """Training points: uniform box plus short maturities (log-uniform τ below 0.25y), where
    the price changes fastest; points with |ln f|/v > x_max (time value < 1e-14 K) are
    resampled because they carry no information."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("m", "tau", "sigma", "rate", "div")}
    have = 0
    while have < n:
        k = 2 * (n - have) + 64
        pts = uniform_box(k, rng, domain)
        if div_max is not None:
            pts["div"] = rng.uniform(0.0, div_max, k)
        short = rng.random(k) < short_fraction
        pts["tau"] = np.where(short, np.exp(rng.uniform(np.log(DAY), np.log(0.25), k)),
                              pts["tau"])
        v = pts["sigma"] * np.sqrt(pts["tau"])
        x = (np.log(pts["m"]) + (pts["rate"] - pts["div"]) * pts["tau"]) / v
        ok = np.abs(x) <= x_max
        for key in out:
            out[key].append(pts[key][ok])
        have += int(ok.sum())
    return {k: np.concatenate(v)[:n] for k, v in out.items()}
