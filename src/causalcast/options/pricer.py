"""The serving-facing pricer: networks loaded once per process, batched pricing, Greeks.

`price_options` is the one entry point that the CLI and the service call. It does no setup per
call: the shipped weights are read, verified (SHA-256, config) and turned into frozen modules
the first time they are needed and kept for the life of the process (`load_models`). Calls
and puts of a batch come from one forward pass of each network. European Greeks come from a
forward-mode jet of that pass (`causalcast.options.jets`: 2.5 ms per thousand options against
5.5 ms for autograd's double backward; 0.13 ms once tabulated and compiled); the American
premium's Greeks come from forward-mode jets of the premium network
(`causalcast.options.premium_jet`), so no autograd runs on the serving path;
`pinn_greeks_autograd` (all autograd) is the reference the tests compare the served path to.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causalcast.options.black_scholes import GREEKS, _greeks, inconsistent_rows
from causalcast.options.inputs import (
    OptionInputError,
    OptionInputs,
    as_inputs,
    check_domain,
    check_priceable,
    in_domain,
    parse_kind,
)
from causalcast.options.jets import EuropeanJet
from causalcast.options.pinn import (
    AmericanPremium,
    EuropeanPINN,
    PinnConfig,
    build,
)
from causalcast.options.premium_jet import PremiumJet
from causalcast.weights import WeightsError, check_state_dict, load_weights

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
STYLES = ("european", "american")
METHODS = {"european": ("pinn", "closed", "quantlib"), "american": ("pinn", "quantlib")}
OUT_OF_DOMAIN = ("raise", "flag")


@dataclass(frozen=True)
class LoadedModels:
    european: EuropeanPINN
    american: AmericanPremium | None
    sha256: dict[str, str]
    meta: dict[str, Any]
    european_jet: EuropeanJet = field(init=False, repr=False)
    american_jet: PremiumJet | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Numpy copies of the weights, made once with the models they serve.
        object.__setattr__(self, "european_jet", EuropeanJet(self.european))
        object.__setattr__(self, "american_jet",
                           None if self.american is None else PremiumJet(self.american))


def load_network(stem: Path, kind: str) -> tuple[torch.nn.Module, dict[str, Any], str]:
    """Verified load of one network (checksum, config, tensor names and shapes)."""
    tensors, config = load_weights(stem)
    try:
        cfg = PinnConfig.from_dict(config["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{stem}: config does not describe a pricing network ({exc})") from exc
    if cfg.kind != kind:
        raise WeightsError(f"{stem}: holds a {cfg.kind!r} network, expected {kind!r}")
    model = build(cfg)
    check_state_dict(model, tensors, str(stem))
    model.load_state_dict(tensors)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    sha = json.loads(stem.with_suffix(".json").read_text())["sha256"]
    return model, config.get("meta", {}), sha


_LOCK = threading.Lock()
_CACHE: dict[Path, LoadedModels] = {}


def load_models(weights_dir: str | Path | None = None) -> LoadedModels:
    """The process-wide models for a weights folder, loaded and verified on first use."""
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    cached = _CACHE.get(folder)
    if cached is not None:
        return cached
    with _LOCK:
        if folder not in _CACHE:
            euro, euro_meta, euro_sha = load_network(folder / "european", "european")
            american = None
            meta = {"european": euro_meta}
            shas = {"european": euro_sha}
            if (folder / "american.json").exists():
                american, am_meta, am_sha = load_network(folder / "american", "american")
                meta["american"], shas["american"] = am_meta, am_sha
            _CACHE[folder] = LoadedModels(euro, american, shas, meta)  # type: ignore[arg-type]
        return _CACHE[folder]


def _tensors(x: OptionInputs, grad: bool) -> list[torch.Tensor]:
    m = torch.from_numpy(x.moneyness)
    out = [m, *(torch.from_numpy(a) for a in (x.tau, x.sigma, x.rate, x.div))]
    if grad:
        out = [t.clone().requires_grad_(True) for t in out]
    return out


def _network_values(models: LoadedModels, style: str, t: list[torch.Tensor],
                    is_call: torch.Tensor | None) -> list[torch.Tensor]:
    """Prices per unit strike, one forward pass of each network involved.

    ``is_call`` selects call or put per row (one output); ``None`` means both, returned as
    [calls, puts] from the same pass (the European network has a call and a put head; the
    premium network runs once on the rows stacked with their symmetric call coordinates).
    American values are the closed form plus the premium, floored at the payoff, as served."""
    m = t[0]
    if style == "european":
        out = models.european(*t)
        if is_call is None:
            return [out[:, 0], out[:, 1]]
        return [torch.where(is_call, out[:, 0], out[:, 1])]
    if models.american is None:
        raise OptionInputError("style: no American network in the loaded weights")
    eu = _closed_form(*t)
    prem = _premium_terms(models, t, is_call)
    if is_call is not None:
        payoff = torch.where(is_call, m - 1.0, 1.0 - m).clamp(min=0.0)
        value = torch.where(is_call, eu[:, 0], eu[:, 1]) + prem[0]
        return [torch.maximum(value, payoff)]  # never below exercise value
    return [torch.maximum(eu[:, 0] + prem[0], (m - 1.0).clamp(min=0.0)),
            torch.maximum(eu[:, 1] + prem[1], (1.0 - m).clamp(min=0.0))]


def _closed_form(m: torch.Tensor, tau: torch.Tensor, sigma: torch.Tensor, rate: torch.Tensor,
                 div: torch.Tensor) -> torch.Tensor:
    """Black–Scholes–Merton call and put per unit strike in torch, shape (n, 2): the base of
    the American autograd reference (its Greeks by autograd check the served closed form's)."""
    v = sigma * torch.sqrt(tau)
    d1 = (torch.log(m) + (rate - div) * tau) / v + 0.5 * v
    fwd_s, disc = m * torch.exp(-div * tau), torch.exp(-rate * tau)
    ndtr = torch.special.ndtr
    call = fwd_s * ndtr(d1) - disc * ndtr(d1 - v)
    put = disc * ndtr(v - d1) - fwd_s * ndtr(-d1)
    return torch.stack([call, put], dim=-1)


def pinn_greeks(models: LoadedModels, x: OptionInputs, is_call: np.ndarray | None, style: str,
                greeks: bool = True) -> dict[str, np.ndarray]:
    """Price (and Greeks) from the networks; inputs already validated.

    European: the jets. American: the exact European closed form plus the early-exercise
    premium term (forward-mode jets of the premium network, `american_premium_greeks`), floored
    at the payoff — so an American option with no premium (a call without dividends) is priced
    exactly as the closed-form European value. The closed form, not the European network, is
    the base because the premium was fitted to QuantLib's American prices minus the closed form
    (`options.finetune`) and the network's own error (up to 8e-4·K) would otherwise be the
    American error; it is also what American implied volatility inverts.
    ``is_call=None`` prices calls and puts of every row together: arrays of shape (2, n)."""
    if style == "european":
        return models.european_jet.greeks(x, is_call, greeks)
    calls = np.array([[True], [False]]) if is_call is None else is_call
    keys = GREEKS if greeks else ("price",)
    parts = [_greeks(x, kinds) for kinds in
             ([np.ones(x.shape, bool), np.zeros(x.shape, bool)] if is_call is None
              else [is_call])]
    european = {k: np.stack([q[k] for q in parts]) if is_call is None else parts[0][k]
                for k in keys}
    premium = american_premium_greeks(models, x, is_call, greeks)
    out = {k: european[k] + premium[k] for k in european}
    payoff = np.where(calls, x.spot - x.strike, x.strike - x.spot)
    exercise = out["price"] < payoff   # never below exercise value
    out["price"] = np.where(exercise, payoff, out["price"])
    if greeks:   # the payoff's Greeks: delta ±1, the rest 0
        out["delta"] = np.where(exercise, np.where(calls, 1.0, -1.0), out["delta"])
        for key in ("gamma", "vega", "theta", "rho"):
            out[key] = np.where(exercise, 0.0, out[key])
    return out


def _premium_terms(models: LoadedModels, t: list[torch.Tensor],
                   is_call: torch.Tensor | None) -> list[torch.Tensor]:
    """Early-exercise premium per unit strike, one pass of the premium network: puts at their
    own coordinates, calls by put–call symmetry at (1/m, q, r), scaled by m."""
    assert models.american is not None
    m, tau, sigma, rate, div = t
    if is_call is not None:
        m_put = torch.where(is_call, 1.0 / m, m)
        prem = models.american(m_put, tau, sigma, torch.where(is_call, div, rate),
                               torch.where(is_call, rate, div))
        return [torch.where(is_call, m, torch.ones_like(m)) * prem]
    n = m.shape[0]
    prem = models.american(torch.cat([1.0 / m, m]), torch.cat([tau, tau]),
                           torch.cat([sigma, sigma]), torch.cat([div, rate]),
                           torch.cat([rate, div]))
    return [m * prem[:n], prem[n:]]


def american_premium(models: LoadedModels, x: OptionInputs,
                     is_call: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(premium, ∂premium/∂σ) in price units: the served path's early-exercise premium
    network with its σ-derivative, evaluated in numpy forward mode (`premium_jet`; the torch
    `_premium_terms` is its reference). American implied volatility adds it to the exact
    European closed form and inverts the sum."""
    if models.american is None or models.american_jet is None:
        raise OptionInputError("style: no American network in the loaded weights")
    calls = np.asarray(is_call, dtype=bool)
    prem, d_sigma = models.american_jet.put_premium(
        np.where(calls, 1.0 / x.moneyness, x.moneyness), x.tau, x.sigma,
        np.where(calls, x.div, x.rate), np.where(calls, x.rate, x.div))
    scale = x.strike * np.where(calls, x.moneyness, 1.0)
    return scale * prem, scale * d_sigma


def american_premium_greeks(models: LoadedModels, x: OptionInputs, is_call: np.ndarray | None,
                            greeks: bool = True) -> dict[str, np.ndarray]:
    """Early-exercise premium and its Greeks in price units (vega per unit σ, theta per year,
    rho per unit r), from forward-mode jets of the premium network (`premium_jet`): puts at
    their own coordinates, calls by put–call symmetry as m·p(1/m, q, r), whose derivatives are
    δ = p − p_m/m, Γ = p_mm/(m³K), ν = Km·p_σ, θ = −Km·p_τ, ρ = Km·∂p/∂q.
    ``is_call=None``: calls and puts of every row, arrays of shape (2, n)."""
    if models.american is None or models.american_jet is None:
        raise OptionInputError("style: no American network in the loaded weights")
    m = x.moneyness
    if is_call is None:
        calls = np.concatenate([np.ones(x.shape, bool), np.zeros(x.shape, bool)])
        m, tau, sigma, rate, div, strike = (np.concatenate([a, a]) for a in
                                            (m, x.tau, x.sigma, x.rate, x.div, x.strike))
    else:
        calls = np.asarray(is_call, dtype=bool)
        tau, sigma, rate, div, strike = x.tau, x.sigma, x.rate, x.div, x.strike
    m_put = np.where(calls, 1.0 / m, m)
    put_rate, put_div = np.where(calls, div, rate), np.where(calls, rate, div)
    scale = strike * np.where(calls, m, 1.0)
    jet = models.american_jet
    if not greeks:
        out = {"price": scale * jet.put_premium(m_put, tau, sigma, put_rate, put_div)[0]}
    else:
        p, p_m, p_mm, p_tau, p_sigma, p_slot = jet.put_premium_jets(
            m_put, tau, sigma, put_rate, put_div, rate_slot_is_div=calls)
        out = {"price": scale * p,
               "delta": np.where(calls, p - p_m / m, p_m),
               "gamma": np.where(calls, p_mm / (m * m * m), p_mm) / strike,
               "vega": scale * p_sigma, "theta": -scale * p_tau, "rho": scale * p_slot}
    if is_call is None:
        return {k: v.reshape(2, -1) for k, v in out.items()}
    return out


def pinn_greeks_autograd(models: LoadedModels, x: OptionInputs, is_call: np.ndarray | None,
                         style: str, greeks: bool = True) -> dict[str, np.ndarray]:
    """`pinn_greeks` wholly through torch: one forward pass of each network, Greeks by autograd
    (double backward for gamma). The reference the tests compare the served path to."""
    call_t = None if is_call is None else torch.from_numpy(np.ascontiguousarray(is_call))
    out = _autograd(lambda t: _network_values(models, style, t, call_t), x, greeks)
    return {k: v if is_call is None else v[0] for k, v in out.items()}


def _autograd(values: Any, x: OptionInputs, greeks: bool) -> dict[str, np.ndarray]:
    """Prices (× strike) of the per-unit-strike values ``values(tensors)`` returns, and their
    Greeks by autograd; arrays of shape (number of values, n)."""
    strike = x.strike
    if not greeks:
        with torch.inference_mode():
            us = values(_tensors(x, False))
        return {"price": np.stack([strike * u.numpy() for u in us])}
    t = _tensors(x, True)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in GREEKS}
    with torch.enable_grad():
        us = values(t)
        for u in us:
            d = torch.autograd.grad(u.sum(), t, create_graph=True)
            d_mm = torch.autograd.grad(d[0].sum(), t[0], retain_graph=True,
                                       allow_unused=True)[0]
            d_mm = torch.zeros_like(t[0]) if d_mm is None else d_mm
            u_m, u_t, u_s, u_r, _ = (g.detach().numpy() for g in d)
            for key, val in (("price", strike * u.detach().numpy()), ("delta", u_m),
                             ("gamma", d_mm.detach().numpy() / strike), ("vega", strike * u_s),
                             ("theta", -strike * u_t), ("rho", strike * u_r)):
                parts[key].append(val)
    return {k: np.stack(v) for k, v in parts.items()}


def price_options(spot: Any, strike: Any, tau: Any, sigma: Any, rate: Any = 0.0,
                  div: Any = 0.0, kind: Any = "call", style: str = "european",
                  method: str = "pinn", greeks: bool = True, on_out_of_domain: str = "raise",
                  models: LoadedModels | None = None) -> dict[str, np.ndarray]:
    """Price a batch of options; returns a dict of float64 arrays.

    Keys: ``price`` and, with ``greeks=True``, ``delta gamma vega theta rho`` (vega per unit σ,
    theta = ∂V/∂t per year, rho per unit r), plus ``in_domain`` (bool). ``kind`` is 'call',
    'put', an array of them, or 'both': then every array has a leading axis of 2 (calls, puts),
    both from the same forward pass. ``method``: 'pinn' (default), 'closed' (European
    Black–Scholes–Merton) or 'quantlib' (independent check; American by CRR with 2000 steps;
    Greeks that the engine does not give are NaN). Outside the trained domain the PINN refuses
    (``on_out_of_domain='raise'``) or returns NaN for those rows (``'flag'``).
    """
    if style not in STYLES:
        raise OptionInputError(f"style: expected one of {STYLES}, got {style!r}")
    if method not in METHODS[style]:
        raise OptionInputError(f"method: {style} options support {METHODS[style]}, got "
                               f"{method!r}")
    if on_out_of_domain not in OUT_OF_DOMAIN:
        raise OptionInputError(f"on_out_of_domain: expected one of {OUT_OF_DOMAIN}")
    x = as_inputs(spot, strike, tau, sigma, rate, div)
    check_priceable(x)
    shape = x.shape
    x = OptionInputs(*(a.ravel() for a in (x.spot, x.strike, x.tau, x.sigma, x.rate, x.div)))
    both = isinstance(kind, str) and kind.strip().lower() == "both"
    is_call = None if both else parse_kind(kind, shape).ravel()
    ok = in_domain(x) if method == "pinn" else np.ones(x.shape, bool)
    if method == "pinn" and on_out_of_domain == "raise" and not ok.all():
        check_domain(x)   # raises, naming the first field and row outside
    keys = GREEKS if greeks else ("price",)
    lead = (2,) if both else ()
    result = {k: np.full((*lead, *x.shape), np.nan) for k in keys}
    if method in ("closed", "quantlib"):
        kinds = [np.ones(x.shape, bool), np.zeros(x.shape, bool)] if both else [is_call]
        vals = []
        for calls in kinds:
            if method == "closed":
                vals.append(_greeks(x, calls))
            else:
                from causalcast.options.quantlib_ref import quantlib_greeks

                vals.append(quantlib_greeks(x, calls, style, keys))
        result = {k: np.stack([v[k] for v in vals]) if both else vals[0][k] for k in keys}
    elif ok.all():
        result = pinn_greeks(load_models() if models is None else models, x, is_call, style,
                             greeks)
    elif ok.any():
        part = pinn_greeks(load_models() if models is None else models, x.take(ok),
                           None if both else is_call[ok], style, greeks)
        for k in keys:
            result[k][..., ok] = part[k]
    _refuse_inconsistent(x, is_call, style, method, result, ok)
    result["in_domain"] = np.stack([ok, ok]) if both else ok
    out_shape = (*lead, *shape)
    return {k: v.reshape(out_shape) for k, v in result.items()}


def _refuse_inconsistent(x: OptionInputs, is_call: np.ndarray | None, style: str, method: str,
                         result: dict[str, np.ndarray], priced: np.ndarray) -> None:
    """Raise `OptionInputError` naming the first priced row without a finite, arbitrage-
    consistent answer (instead of returning a negative price or NaN); clip rounding."""
    checked = ("price",) if method == "quantlib" else tuple(result)  # QuantLib: NaN Greeks
    for lead, calls in ([(0, True), (1, False)] if is_call is None else [(None, is_call)]):
        part = {k: result[k] if lead is None else result[k][lead] for k in checked}
        kinds = np.broadcast_to(calls, x.shape)
        bad = inconsistent_rows(x, kinds, style == "american", part) & priced
        if lead is None:
            result["price"] = part["price"]
        else:
            result["price"][lead] = part["price"]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            inputs = ", ".join(f"{f}={getattr(x, f)[i]:g}"
                               for f in ("spot", "strike", "tau", "sigma", "rate", "div"))
            raise OptionInputError(f"option {i} ({inputs}): no finite, arbitrage-consistent "
                                   f"{method} price for these inputs")
