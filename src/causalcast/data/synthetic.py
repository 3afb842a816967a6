"""A synthetic market whose predictability is known exactly, so accuracy has a ceiling.

Model, per symbol i and bar t (all quantities known at t are functions of the symbol's own
past, so the ceiling below is reachable from its own bars alone):

    eps[i,t] = sqrt(rho_m) * f[t] + sqrt(1 - rho_m) * eta[i,t]        (market factor f)
    r[i,t]   = mu[i] + sigma[i,t] * (c * s[i,t-1] + eps[i,t])           (log return)
    s[i,t]   = phi * s[i,t-1] + sqrt(1 - phi^2) * eps[i,t]              (planted signal)
    sigma^2[i,t+1] = omega[i] + alpha * sigma^2[i,t] * eps[i,t]^2 + beta * sigma^2[i,t]  (GARCH)

`c` is the `strength`. The signal `s` is a unit-variance exponential average of past shocks,
so for zero drift the Bayes-optimal one-bar directional accuracy is
E[Phi(c|s|)] = 1/2 + arctan(c)/pi exactly. `strength=0` removes the signal; with
`annual_drift=0, drift_dispersion=0` as well it is a pure, driftless (GARCH) random walk, where
any skill a model appears to find is false. With drift, "always up" has a small real edge, and
the ceilings below include it.
For h > 1 the sum of returns is not Gaussian (GARCH, feedback of shocks into s), so its
ceiling is computed by Monte Carlo with the true model (see `_monte_carlo_ceiling`).

The simulation is hand-written rather than taken from `arch` because the mean equation feeds
on its own shocks, which `arch`'s simulators do not express; it is the product's own yardstick.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from causalcast.config import DEFAULT_HORIZONS

BURN_IN = 250


def strength_for_accuracy(accuracy: float) -> float:
    """The `strength` whose zero-drift one-bar Bayes accuracy is `accuracy` (in [0.5, 1))."""
    if not 0.5 <= accuracy < 1.0:
        raise ValueError(f"accuracy: must be in [0.5, 1), got {accuracy}")
    return math.tan(math.pi * (accuracy - 0.5))


@dataclass(frozen=True)
class SyntheticParams:
    n_symbols: int = 10
    n_bars: int = 2520
    strength: float = 0.325
    seed: int = 0
    persistence: float = 0.8          # phi: how slowly the planted signal decays
    market_share: float = 0.3         # rho_m: share of shock variance from the market factor
    garch_alpha: float = 0.08
    garch_beta: float = 0.90
    annual_vol: float = 0.25
    annual_drift: float = 0.05
    drift_dispersion: float = 0.1     # annual std of per-symbol drift around annual_drift
    freq: str = "B"
    start: str = "2010-01-04"
    bars_per_year: int = 252
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    mc_states: int = 1000             # states sampled for the h > 1 Monte Carlo ceiling
    mc_paths: int = 2000              # continuation paths per state

    def __post_init__(self) -> None:
        checks = {
            "n_symbols": self.n_symbols >= 1, "n_bars": self.n_bars >= 2,
            "strength": math.isfinite(self.strength) and self.strength >= 0,
            "persistence": 0 <= self.persistence < 1,
            "market_share": 0 <= self.market_share <= 1,
            "garch_alpha": self.garch_alpha >= 0, "garch_beta": self.garch_beta >= 0,
            "annual_vol": math.isfinite(self.annual_vol) and self.annual_vol > 0,
            "drift_dispersion": math.isfinite(self.drift_dispersion)
            and self.drift_dispersion >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: invalid value {getattr(self, name)!r}")
        if self.garch_alpha + self.garch_beta >= 1:
            raise ValueError("garch_alpha + garch_beta: must be < 1 for a stationary variance")


@dataclass
class SyntheticUniverse:
    """Bars per symbol plus what only the true model knows (kept apart from the bars)."""

    frames: dict[str, pd.DataFrame]
    params: SyntheticParams
    bayes_accuracy: dict[int, float]                  # per horizon, over all symbols and bars
    bayes_accuracy_se: dict[int, float]               # Monte Carlo standard error (0 for h=1)
    prob_up: dict[str, pd.Series] = field(repr=False, default_factory=dict)  # true P(r_{t+1}>0)

    def ceiling(self, symbols: list[str] | None = None,
                positions: slice | np.ndarray | None = None) -> float:
        """Exact one-bar Bayes accuracy averaged over the given bars (by position), e.g. a
        test range: E[max(p, 1-p)] with p the true P(up) for the next bar."""
        values = []
        for symbol in symbols or list(self.frames):
            p = self.prob_up[symbol].to_numpy()
            p = p[positions] if positions is not None else p
            p = p[np.isfinite(p)]
            values.append(np.maximum(p, 1 - p))
        return float(np.mean(np.concatenate(values)))

    def metadata(self) -> dict:
        return {
            "params": asdict(self.params),
            "bayes_accuracy": {str(h): v for h, v in self.bayes_accuracy.items()},
            "bayes_accuracy_se": {str(h): v for h, v in self.bayes_accuracy_se.items()},
            "symbols": list(self.frames),
        }


def _dates(params: SyntheticParams) -> pd.DatetimeIndex:
    if params.freq == "B":
        return pd.bdate_range(params.start, periods=params.n_bars, name="date")
    return pd.date_range(params.start, periods=params.n_bars, freq=params.freq, name="date")


def _simulate_states(p: SyntheticParams, rng: np.random.Generator):
    """Returns (returns, eps, sigma, signal_before) each (n_bars, n_symbols), after burn-in."""
    n, k = p.n_bars + BURN_IN, p.n_symbols
    vol_scale = np.exp(rng.normal(0.0, 0.25, k))          # symbols differ in volatility
    sigma_bar = p.annual_vol / math.sqrt(p.bars_per_year) * vol_scale
    omega = sigma_bar**2 * (1 - p.garch_alpha - p.garch_beta)
    mu = (p.annual_drift + p.drift_dispersion * rng.standard_normal(k)) / p.bars_per_year
    market = rng.standard_normal(n)
    idio = rng.standard_normal((n, k))
    eps = math.sqrt(p.market_share) * market[:, None] + math.sqrt(1 - p.market_share) * idio
    phi, c = p.persistence, p.strength
    gain = math.sqrt(1 - phi**2)
    r = np.empty((n, k))
    sig = np.empty((n, k))
    s_before = np.empty((n, k))
    s = rng.standard_normal(k)
    var = sigma_bar**2
    for t in range(n):
        sd = np.sqrt(var)
        sig[t], s_before[t] = sd, s
        r[t] = mu + sd * (c * s + eps[t])
        s = phi * s + gain * eps[t]
        var = omega + p.garch_alpha * var * eps[t] ** 2 + p.garch_beta * var
    keep = slice(BURN_IN, None)
    state = {"mu": mu, "omega": omega, "s_next": s, "var_next": var}
    return r[keep], eps[keep], sig[keep], s_before[keep], state


def _bars_from_returns(r: np.ndarray, eps: np.ndarray, sig: np.ndarray,
                       rng: np.random.Generator, dates: pd.DatetimeIndex) -> list[pd.DataFrame]:
    n, k = r.shape
    log_close = np.log(100.0) + np.cumsum(r, axis=0)
    prev_close = np.vstack([np.full((1, k), np.log(100.0)), log_close[:-1]])
    gap = 0.3 * sig * rng.standard_normal((n, k))         # overnight move, part of r
    log_open = prev_close + gap
    wick = np.abs(rng.normal(0.0, 0.5, (n, k, 2))) * sig[..., None]
    log_high = np.maximum(log_open, log_close) + wick[..., 0]
    log_low = np.minimum(log_open, log_close) - wick[..., 1]
    volume = np.round(1e6 * np.exp(0.3 * rng.standard_normal((n, k)) + 0.5 * np.abs(eps)))
    frames = []
    for j in range(k):
        frames.append(pd.DataFrame({
            "open": np.exp(log_open[:, j]), "high": np.exp(log_high[:, j]),
            "low": np.exp(log_low[:, j]), "close": np.exp(log_close[:, j]),
            "volume": volume[:, j],
        }, index=dates))
    return frames


def _monte_carlo_ceiling(p: SyntheticParams, s_after: np.ndarray, var_next: np.ndarray,
                         mu: np.ndarray, omega: np.ndarray,
                         rng: np.random.Generator) -> tuple[dict[int, float], dict[int, float]]:
    """Bayes accuracy for every horizon from sampled states (symbol, t) of the true model.

    For each state, half of the continuation paths choose the Bayes direction (sign of the
    estimated P(up) - 1/2), the other half score it. Scoring with independent paths avoids the
    upward bias of E[max(p_hat, 1-p_hat)]; what remains is a slight downward bias where
    p is within Monte Carlo noise of 1/2, where the choice barely matters."""
    n, k = s_after.shape
    m = min(p.mc_states, n * k)
    flat = rng.choice(n * k, size=m, replace=False)
    ti, si = np.unravel_index(flat, (n, k))
    paths = p.mc_paths
    s = np.repeat(s_after[ti, si][:, None], paths, axis=1).astype(np.float32)
    var = np.repeat(var_next[ti, si][:, None], paths, axis=1).astype(np.float32)
    mu_s = mu[si][:, None].astype(np.float32)
    omega_s = omega[si][:, None].astype(np.float32)
    gain = math.sqrt(1 - p.persistence**2)
    total = np.zeros((m, paths), dtype=np.float32)
    acc, se = {}, {}
    half = paths // 2
    for step in range(1, max(p.horizons) + 1):
        e = rng.standard_normal((m, paths), dtype=np.float32)
        sd = np.sqrt(var)
        total += mu_s + sd * (p.strength * s + e)
        s = p.persistence * s + gain * e
        var = omega_s + p.garch_alpha * var * e**2 + p.garch_beta * var
        if step in p.horizons:
            up = total > 0
            choose_up = up[:, :half].mean(axis=1) >= 0.5
            scored = np.where(choose_up, up[:, half:].mean(axis=1), 1 - up[:, half:].mean(axis=1))
            acc[step] = float(scored.mean())
            se[step] = float(scored.std(ddof=1) / math.sqrt(m) + math.sqrt(0.25 / (m * half)))
    return acc, se


def make_universe(n_symbols: int = 10, n_bars: int = 2520, strength: float = 0.325,
                  seed: int = 0, **kwargs) -> SyntheticUniverse:
    """Simulate `n_symbols` daily-like OHLCV series with a planted predictable component.

    Deterministic by `seed`. Returns the bars and the Bayes-optimal directional accuracy per
    horizon under the true model (exact for h=1, Monte Carlo for longer horizons)."""
    params = SyntheticParams(n_symbols=n_symbols, n_bars=n_bars, strength=strength, seed=seed,
                             **kwargs)
    rng = np.random.default_rng(seed)
    r, eps, sig, s_before, state = _simulate_states(params, rng)
    dates = _dates(params)
    frames = _bars_from_returns(r, eps, sig, rng, dates)
    names = [f"SYN{j:03d}" for j in range(params.n_symbols)]
    # True P(r_{t+1} > 0 | bars up to t): needs s after bar t and sigma for bar t+1.
    s_after = np.vstack([s_before[1:], state["s_next"][None, :]])
    sig_next = np.vstack([sig[1:], np.sqrt(state["var_next"])[None, :]])
    z = params.strength * s_after + state["mu"][None, :] / sig_next
    prob_up = norm.cdf(z)
    prob_up[-1] = np.nan  # the bar after the last one is not part of the data
    h1 = float(np.nanmean(np.maximum(prob_up, 1 - prob_up)))
    acc, se = _monte_carlo_ceiling(params, s_after[:-1], sig_next[:-1] ** 2, state["mu"],
                                   state["omega"], rng)
    acc[1], se[1] = h1, 0.0
    return SyntheticUniverse(
        frames=dict(zip(names, frames, strict=True)),
        params=params,
        bayes_accuracy={h: acc[h] for h in sorted(acc)},
        bayes_accuracy_se={h: se[h] for h in sorted(se)},
        prob_up={name: pd.Series(prob_up[:, j], index=dates, name="prob_up")
                 for j, name in enumerate(names)},
    )
