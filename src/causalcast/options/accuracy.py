"""The acceptance figures, computed the same way by the tests, the training command and the
benchmark: fixed random test sets, errors in units of the strike K."""

from __future__ import annotations

from typing import Any

import numpy as np

from causalcast.options.black_scholes import bsm_greeks
from causalcast.options.inputs import DAY, as_inputs
from causalcast.options.pricer import LoadedModels, pinn_greeks
from causalcast.options.sampling import uniform_box

TEST_SEED = 20240601
STRIKE = 100.0


def european_test_set(n: int = 100_000, seed: int = TEST_SEED) -> dict[str, np.ndarray]:
    """Uniform over the trained domain (S/K, τ ∈ [1 day, 2y], σ, r, q); strike 100."""
    return uniform_box(n, np.random.default_rng(seed))


def european_accuracy(models: LoadedModels, n: int = 100_000, seed: int = TEST_SEED,
                      chunk: int = 50_000) -> dict[str, Any]:
    """Errors of the European network against the closed form, for calls and puts.

    Max-error figures use τ ≥ 7 days (as the acceptance criteria); mean error uses all points.
    Gamma is compared relatively where gamma·K ≥ 0.01."""
    pts = european_test_set(n, seed)
    spot = pts["m"] * STRIKE
    x = as_inputs(spot, STRIKE, pts["tau"], pts["sigma"], pts["rate"], pts["div"])
    got: dict[str, list[np.ndarray]] = {k: [] for k in ("call", "put")}
    ref: dict[str, list[np.ndarray]] = {k: [] for k in ("call", "put")}
    for kind in ("call", "put"):
        for start in range(0, n, chunk):
            xs = x.take(np.arange(start, min(start + chunk, n)))
            got[kind].append(pinn_greeks(models, xs, np.full(xs.shape, kind == "call"),
                                         "european"))
            ref[kind].append(bsm_greeks(xs.spot, xs.strike, xs.tau, xs.sigma, xs.rate, xs.div,
                                        kind))

    def cat(parts: dict[str, list[dict[str, np.ndarray]]], key: str) -> np.ndarray:
        return np.concatenate([p[key] for kind in ("call", "put") for p in parts[kind]])

    week = pts["tau"] >= 7 * DAY - 1e-12
    week2 = np.concatenate([week, week])
    price = np.abs(cat(got, "price") - cat(ref, "price")) / STRIKE
    delta = np.abs(cat(got, "delta") - cat(ref, "delta"))
    ref_gamma = cat(ref, "gamma")
    with np.errstate(divide="ignore", invalid="ignore"):  # gamma underflows to 0 far OTM
        gam = np.abs(cat(got, "gamma") / ref_gamma - 1.0)
    gmask = (ref_gamma * STRIKE >= 0.01) & week2
    call_p = np.concatenate([p["price"] for p in got["call"]])
    put_p = np.concatenate([p["price"] for p in got["put"]])
    fwd = x.spot * np.exp(-x.div * x.tau) - x.strike * np.exp(-x.rate * x.tau)
    parity = np.abs(call_p - put_p - fwd) / STRIKE
    return {
        "n_points": n, "seed": seed, "n_week_or_longer": int(week.sum()),
        "price_max_abs_over_K": float(price[week2].max()),
        "price_mean_abs_over_K": float(price.mean()),
        "price_max_abs_over_K_all_tau": float(price.max()),
        "parity_max_abs_over_K": float(parity[week].max()),
        "delta_max_abs": float(delta[week2].max()),
        "gamma_max_rel": float(gam[gmask].max()) if gmask.any() else 0.0,
        "gamma_points": int(gmask.sum()),
    }


def american_grid(size: str = "full") -> dict[str, np.ndarray]:
    """A regular grid over the domain; 'full' has 1080 points, 'small' 108.

    Maturities are whole days so that QuantLib prices exactly the same contract."""
    if size == "full":
        axes = {"m": np.linspace(0.5, 2.0, 6), "tau": np.array([7, 30, 120, 365, 730]) / 365,
                "sigma": np.array([0.05, 0.2, 0.5, 1.0]), "rate": np.array([0.0, 0.05, 0.1]),
                "div": np.array([0.0, 0.025, 0.05])}
    elif size == "small":
        axes = {"m": np.array([0.6, 0.9, 1.3]), "tau": np.array([14, 180, 730]) / 365,
                "sigma": np.array([0.1, 0.4, 0.9]), "rate": np.array([0.02, 0.1]),
                "div": np.array([0.0, 0.04])}
    else:
        raise ValueError(f"size: expected 'full' or 'small', got {size!r}")
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    return {k: g.ravel() for k, g in zip(axes, mesh, strict=True)}


def american_accuracy(models: LoadedModels, size: str = "full", kind: str = "put",
                      steps: int = 2000) -> dict[str, Any]:
    """American PINN against QuantLib CRR (``steps`` steps) on `american_grid`."""
    from causalcast.options.quantlib_ref import quantlib_price

    g = american_grid(size)
    spot = g["m"] * STRIKE
    x = as_inputs(spot, STRIKE, g["tau"], g["sigma"], g["rate"], g["div"])
    calls = np.full(x.shape, kind == "call")
    got = pinn_greeks(models, x, calls, "american", greeks=False)["price"]
    ref = quantlib_price(spot, STRIKE, g["tau"], g["sigma"], g["rate"], g["div"], kind,
                         "american", "crr", steps)
    err = np.abs(got - ref) / STRIKE
    worst = int(np.argmax(err))
    return {"n_points": int(err.size), "kind": kind, "reference": f"QuantLib CRR({steps})",
            "max_abs_over_K": float(err.max()), "mean_abs_over_K": float(err.mean()),
            "worst_point": {k: float(v[worst]) for k, v in g.items()}}


def american_qdfp_test_set(n: int, seed: int = TEST_SEED) -> dict[str, np.ndarray]:
    """Uniform over the trained domain with τ ≥ 7 days, in whole days (QuantLib prices whole
    days, so both sides price the same contract)."""
    from causalcast.options.quantlib_ref import quantlib_tau

    pts = uniform_box(n, np.random.default_rng(seed), tau_min=7 * DAY)
    pts["tau"] = np.maximum(quantlib_tau(pts["tau"]), 7 * DAY)
    return pts


def american_accuracy_qdfp(models: LoadedModels, n: int = 2000, seed: int = TEST_SEED,
                           kind: str = "put", peer: str | None = "qdfp-fast") -> dict[str, Any]:
    """The served American price against QuantLib's QdFp high-precision engine on random
    in-domain options (τ ≥ 7 days), errors in units of K; with ``peer`` also that QuantLib
    engine's own error on the same options (the accuracy a speed comparison is made at)."""
    from causalcast.options.quantlib_ref import quantlib_price

    pts = american_qdfp_test_set(n, seed)
    args = (pts["m"] * STRIKE, STRIKE, pts["tau"], pts["sigma"], pts["rate"], pts["div"])
    x = as_inputs(*args)
    got = pinn_greeks(models, x, np.full(x.shape, kind == "call"), "american",
                      greeks=False)["price"]
    ref = quantlib_price(*args, kind=kind, style="american", engine="qdfp-high")
    err = np.abs(got - ref) / STRIKE
    worst = int(np.argmax(err))
    out: dict[str, Any] = {
        "n_points": n, "seed": seed, "kind": kind, "reference": "QuantLib QdFp high precision",
        "max_abs_over_K": float(err.max()), "mean_abs_over_K": float(err.mean()),
        "p99_abs_over_K": float(np.quantile(err, 0.99)),
        "worst_point": {k: float(v[worst]) for k, v in pts.items()}}
    if peer is not None:
        other = np.abs(quantlib_price(*args, kind=kind, style="american", engine=peer)
                       - ref) / STRIKE
        out[peer] = {"max_abs_over_K": float(other.max()), "mean_abs_over_K": float(other.mean())}
    return out


def exercise_boundary(models: LoadedModels, sigma: np.ndarray, rate: np.ndarray,
                      div: np.ndarray, taus: np.ndarray, step: float = 5e-4,
                      tol: float = 1e-10) -> np.ndarray:
    """The served American put's early-exercise boundary S*/K, shape (len(sigma), len(taus)):
    scanning S/K upwards from 0.5 in steps of ``step``, the last point before the first at
    which the served price exceeds the payoff by more than ``tol``·K (the price is floored at
    the payoff, so the exercise region is where that floor binds); NaN where already S/K = 0.5
    is continuation. A scan, not a bisection, so a region that is not one interval shows."""
    grid = np.arange(0.5, 1.0 + step / 2, step)
    n_p, n_t, n_m = len(sigma), len(taus), len(grid)
    cols = [np.repeat(np.asarray(v, dtype=np.float64), n_t * n_m) for v in (sigma, rate, div)]
    tau = np.tile(np.repeat(np.asarray(taus, dtype=np.float64), n_m), n_p)
    m = np.tile(grid, n_p * n_t)
    x = as_inputs(m * STRIKE, STRIKE, tau, *cols)
    price = pinn_greeks(models, x, np.zeros(x.shape, bool), "american", greeks=False)["price"]
    # the payoff exactly as the pricer floors it (K − S, S = m·K), so rounding is no signal
    cont = (price > STRIKE - x.spot + tol * STRIKE).reshape(n_p * n_t, n_m)
    first = np.where(cont.any(axis=1), cont.argmax(axis=1), n_m)
    out = np.where(first > 0, grid[np.maximum(first - 1, 0)], np.nan)
    return out.reshape(n_p, n_t)


def boundary_monotone(boundary: np.ndarray, tol: float = 1e-12) -> dict[str, Any]:
    """Whether each row of `exercise_boundary` never rises with τ (a put's boundary falls as
    maturity grows; NaN, below the domain, must stay NaN)."""
    b = np.where(np.isnan(boundary), -np.inf, boundary)
    rises = np.diff(b, axis=1) > tol
    return {"monotone": bool(not rises.any()), "rows": int(boundary.shape[0]),
            "rows_not_monotone": int(rises.any(axis=1).sum()),
            "largest_rise": float(np.max(np.where(np.isfinite(np.diff(b, axis=1)),
                                                  np.diff(b, axis=1), 0.0), initial=0.0))}
