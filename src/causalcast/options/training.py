"""Training the option networks: losses, samplers, Adam then L-BFGS. Reproducible by seed.

European network — loss terms (weights in `TrainConfig`, all 1 by default). "Price units" are
1e-3·K; "g units" are the same error divided by e^{−rτ}·min(v²φ(x), W_CAP), i.e. seen as an
error of the network output g (see `pinn.py`), in units of 0.03 — this weights the wings and
short maturities where gamma is large relative to the price, which a plain price loss ignores:

* ``data`` (price units) and ``data_g`` (g units): error of call and put against the closed
  form at random points (supervised; the closed form is the reference we may learn from).
* ``pde`` (g units): the Black–Scholes–Merton residual V_τ − ½σ²S²V_SS − (r−q)S V_S + rV,
  computed by autograd in the original variables (S/K, τ), times τ, for both heads.
* ``parity`` (price units): C − P − (S e^{−qτ} − K e^{−rτ}), the only link between the heads.
* ``terminal``: V(τ → 0) against the payoff at τ = 1e-6 years.
* ``boundary``: far-field values (|ln f| = 8 total volatilities beyond the money) against the
  discounted forward intrinsic value.

Terminal and boundary conditions also hold by construction of the output ansatz (see
`pinn.py`), so their losses stay near zero; they are computed and logged as checks.

American premium network — loss terms:

* ``data``: premium against finite-difference premia (FD American − FD European on the same
  grid, so the discretisation error largely cancels), supervised pre-training.
* ``lcp``: the linear-complementarity residual min(τ·𝓛V, V − payoff) of the American put with
  V = European network + premium, 𝓛 the BSM operator above, by autograd.

Schedule: ``pretrain_steps`` of Adam on the supervised terms only (``data``, ``data_g``), then
Adam on the weighted sum, then
L-BFGS (strong Wolfe) on a fixed set of points with the weighted sum: Adam plateaus, L-BFGS
cuts the error several-fold.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from causalcast.options.american import bsm_operator, lcp_residual
from causalcast.options.black_scholes import bsm_price
from causalcast.options.fd import FDGrid, solve_put_surface
from causalcast.options.inputs import DAY, TRAINED_DOMAIN, Domain
from causalcast.options.pinn import AmericanPremium, EuropeanPINN, PinnConfig, bs_coordinates
from causalcast.options.sampling import training_mix

SCALE = 1e-3  # price losses are measured in units of 1e-3·K
G_SCALE = 0.03  # losses on the network output g (see pinn.py) in units of 0.03
X_REL = 5.5  # |x| up to which g-space losses are used (beyond, v²φ(x) underflows usefulness)
W_CAP = 0.01  # cap of v²φ(x) in the g-space losses: there one unit is 3e-4·K of price
# Training box: the trained domain widened by a margin, so that its edges (e.g. σ = 1, τ = 2,
# where total volatility peaks) are interior points of what the network has seen.
TRAIN_DOMAIN = Domain(moneyness=(0.47, 2.1), tau=(0.8 * DAY, 2.1), sigma=(0.045, 1.05),
                      rate=(0.0, 0.105), div=(0.0, 0.055))
Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    threads: int = 1  # one thread: bit-reproducible, and as fast as two on busy shared cores
    width: int = 64
    depth: int = 3
    pretrain_steps: int = 3000
    adam_steps: int = 600
    batch: int = 4096
    physics_batch: int = 2048
    lr: float = 3e-3
    lr_final: float = 1e-4
    lbfgs_iters: int = 700
    lbfgs_points: int = 8192
    weights: dict[str, float] = field(default_factory=lambda: {
        "data": 1.0, "data_g": 1.0, "pde": 1.0, "parity": 1.0, "terminal": 1.0,
        "boundary": 1.0, "lcp": 1.0})
    # American only
    fd_param_sets: int = 1024
    fd_points_per_set: int = 256

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "european": {
        "full": {},
        "quick": {"pretrain_steps": 60, "adam_steps": 40, "batch": 512, "physics_batch": 256,
                  "lbfgs_iters": 10, "lbfgs_points": 1024},
    },
    "american": {
        "full": {"pretrain_steps": 4000, "adam_steps": 600, "lbfgs_iters": 500,
                 "lbfgs_points": 8192, "width": 64, "depth": 3, "fd_param_sets": 3072},
        "quick": {"pretrain_steps": 40, "adam_steps": 20, "batch": 256, "physics_batch": 128,
                  "lbfgs_iters": 5,
                  "lbfgs_points": 512, "fd_param_sets": 16, "fd_points_per_set": 64,
                  "width": 16, "depth": 2},
    },
}


def _t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


# ----------------------------------------------------------------------------- European


def _european_batch(n: int, rng: np.random.Generator) -> dict[str, Any]:
    p = training_mix(n, rng, TRAIN_DOMAIN)
    call = bsm_price(p["m"], 1.0, p["tau"], p["sigma"], p["rate"], p["div"], "call")
    put = bsm_price(p["m"], 1.0, p["tau"], p["sigma"], p["rate"], p["div"], "put")
    return {**p, "target": np.stack([call, put], axis=-1)}


def _g_scale(m: torch.Tensor, tau: torch.Tensor, sigma: torch.Tensor, rate: torch.Tensor,
             div: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """e^{−rτ} min(v² φ(x), W_CAP): converts a price error into an error of the network output
    g (capped, so that at large v it stays a strict price error), and a mask of the points
    where the conversion is numerically meaningful (|x| ≤ X_REL)."""
    _, v, x = bs_coordinates(m, tau, sigma, rate, div)
    w = v * v * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    w = torch.exp(-rate * tau) * torch.clamp(w, max=W_CAP)
    return w.detach(), (x.abs() <= X_REL).detach()


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def european_data_loss(model: EuropeanPINN, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Supervised terms: price error (units of 1e-3·K) and the same error seen as an error of
    g (units of 0.03), which weights the wings and short maturities where gamma lives."""
    m, tau = _t(batch["m"]), _t(batch["tau"])
    sigma, rate, div = (_t(batch[k]) for k in ("sigma", "rate", "div"))
    err = model(m, tau, sigma, rate, div) - _t(batch["target"])
    w, mask = _g_scale(m, tau, sigma, rate, div)
    rel = (err / w.unsqueeze(-1).clamp(min=1e-300) / G_SCALE).pow(2).mean(-1)
    return {"data": (err / SCALE).pow(2).mean(), "data_g": _masked_mean(rel, mask)}


def european_losses(model: EuropeanPINN, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    m, tau = _t(batch["m"], True), _t(batch["tau"], True)
    sigma, rate, div = (_t(batch[k]) for k in ("sigma", "rate", "div"))
    out = model(m, tau, sigma, rate, div)
    err = out - _t(batch["target"])
    w, mask = _g_scale(m, tau, sigma, rate, div)
    w = w.clamp(min=1e-300)
    data = (err / SCALE).pow(2).mean()
    data_g = _masked_mean((err / w.unsqueeze(-1) / G_SCALE).pow(2).mean(-1), mask)
    # PDE residual of each head, by autograd in (S/K, τ), times τ (price units), then seen in
    # units of g like data_g so that the wings count.
    res = torch.stack([bsm_operator(out[:, j], m, tau, sigma, rate, div) for j in (0, 1)], -1)
    pde = _masked_mean((res * tau.unsqueeze(-1) / w.unsqueeze(-1) / G_SCALE).pow(2).mean(-1),
                       mask)
    fwd = m * torch.exp(-div * tau) - torch.exp(-rate * tau)
    parity = ((out[:, 0] - out[:, 1] - fwd) / SCALE).pow(2).mean()
    # terminal: tau -> 0
    t0 = torch.full_like(tau, 1e-6)
    term = model(m.detach(), t0, sigma, rate, div)
    pay = torch.stack([torch.clamp(m.detach() - 1, min=0), torch.clamp(1 - m.detach(), min=0)], -1)
    terminal = ((term - pay) / SCALE).pow(2).mean()
    # far field: 8 total volatilities away from the money on either side
    vol = sigma * torch.sqrt(tau.detach())
    shift = (rate - div) * tau.detach()
    mb = torch.cat([torch.exp(-8 * vol - shift - 0.7), torch.exp(8 * vol - shift + 0.7)])
    tb, sb, rb, qb = (torch.cat([a, a]) for a in (tau.detach(), sigma, rate, div))
    far = model(mb, tb, sb, rb, qb)
    fwd_b = mb * torch.exp(-qb * tb) - torch.exp(-rb * tb)
    want = torch.stack([torch.clamp(fwd_b, min=0), torch.clamp(-fwd_b, min=0)], -1)
    boundary = ((far - want) / SCALE).pow(2).mean()
    return {"data": data, "data_g": data_g, "pde": pde, "parity": parity,
            "terminal": terminal, "boundary": boundary}


# ----------------------------------------------------------------------------- American


def american_reference(n_sets: int, points_per_set: int, rng: np.random.Generator,
                       log: Log = print) -> dict[str, np.ndarray]:
    """Premium targets from the FD solver at random (σ, r, q) sets and random (S/K, τ).

    r and q are drawn from [0, 0.105] both (q from −0.005), because calls use the put
    network at (q, r)."""
    dom = TRAIN_DOMAIN
    # half uniform, half log-uniform in sigma: low volatility has the sharpest exercise boundary
    log_sigma = rng.uniform(np.log(dom.sigma[0]), np.log(dom.sigma[1]), n_sets)
    sigma = np.where(rng.random(n_sets) < 0.5, rng.uniform(*dom.sigma, n_sets),
                     np.exp(log_sigma))
    rate = rng.uniform(0.0, dom.rate[1], n_sets)
    # a small negative margin on q (a borrow cost) keeps q = 0, where the put premium reaches
    # its bound, inside what the network has seen
    div = rng.uniform(-0.005, dom.rate[1], n_sets)
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in
                                           ("m", "tau", "sigma", "rate", "div", "premium")}
    chunk = 256
    for start in range(0, n_sets, chunk):
        sl = slice(start, start + chunk)
        t0 = time.perf_counter()
        surf = solve_put_surface(sigma[sl], rate[sl], div[sl], tau_max=dom.tau[1], save_every=4,
                                 grid=FDGrid(n_x=801, n_t=400))
        nb = surf.x.shape[0]
        valid_t = np.flatnonzero(surf.taus >= DAY)
        b = np.repeat(np.arange(nb), points_per_set)
        t = rng.choice(valid_t, b.size)
        log_m = rng.uniform(np.log(dom.moneyness[0]), np.log(dom.moneyness[1]), b.size)
        am, eu = surf.interpolate(b, t, log_m)
        chunks["m"].append(np.exp(log_m))
        chunks["tau"].append(surf.taus[t])
        chunks["sigma"].append(sigma[sl][b])
        chunks["rate"].append(rate[sl][b])
        chunks["div"].append(div[sl][b])
        chunks["premium"].append(np.maximum(am - eu, 0.0))
        log(f"  FD reference: {min(start + chunk, n_sets)}/{n_sets} parameter sets "
            f"({time.perf_counter() - t0:.1f}s)")
    return {k: np.concatenate(v) for k, v in chunks.items()}


def american_losses(premium: AmericanPremium, euro: EuropeanPINN,
                    batch: dict[str, Any], physics: bool = True) -> dict[str, torch.Tensor]:
    m, tau = _t(batch["m"], physics), _t(batch["tau"], physics)
    sigma, rate, div = (_t(batch[k]) for k in ("sigma", "rate", "div"))
    prem = premium(m, tau, sigma, rate, div)
    out = {"data": ((prem - _t(batch["premium"])) / SCALE).pow(2).mean()}
    if physics:
        value = euro(m, tau, sigma, rate, div)[:, 1] + prem
        out["lcp"] = (lcp_residual(value, m, tau, sigma, rate, div) / SCALE).pow(2).mean()
    return out


# ----------------------------------------------------------------------------- loops


def _total(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    return sum((weights.get(k, 1.0) * v for k, v in losses.items()), torch.zeros((),
               dtype=torch.float64))


def _fmt(losses: dict[str, torch.Tensor]) -> str:
    return " ".join(f"{k}={float(v.detach()):.3g}" for k, v in losses.items())


def _optimise(model: torch.nn.Module, loss_fn: Callable[[dict[str, Any], bool],
              dict[str, torch.Tensor]], draw: Callable[[int], dict[str, Any]],
              cfg: TrainConfig, log: Log) -> list[dict[str, float]]:
    """Adam (data-only pre-training, then all terms, cosine LR) then L-BFGS on fixed points."""
    history: list[dict[str, float]] = []
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    total_steps = cfg.pretrain_steps + cfg.adam_steps
    every = max(total_steps // 10, 1)
    for step in range(total_steps):
        frac = step / max(total_steps - 1, 1)
        for group in opt.param_groups:
            group["lr"] = cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi
                                                                                   * frac))
        physics = step >= cfg.pretrain_steps
        losses = loss_fn(draw(cfg.physics_batch if physics else cfg.batch), physics)
        loss = _total(losses, cfg.weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == total_steps - 1:
            phase = "adam+physics" if physics else "adam(data)"
            log(f"  {phase} step {step:5d}: loss={float(loss.detach()):.4g} {_fmt(losses)}")
            history.append({"phase": phase, "step": step, **{k: float(v.detach())
                                                             for k, v in losses.items()}})
    if cfg.lbfgs_iters > 0:
        fixed = draw(cfg.lbfgs_points)
        lbfgs = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.lbfgs_iters,
                                  history_size=50, tolerance_grad=0.0, tolerance_change=0.0,
                                  line_search_fn="strong_wolfe")
        last: dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            lbfgs.zero_grad(set_to_none=True)
            losses = loss_fn(fixed, True)
            loss = _total(losses, cfg.weights)
            loss.backward()
            last.update({k: v.detach() for k, v in losses.items()})
            return loss

        lbfgs.step(closure)
        log(f"  lbfgs ({cfg.lbfgs_iters} iters): {_fmt(last)}")
        history.append({"phase": "lbfgs", "step": cfg.lbfgs_iters,
                        **{k: float(v) for k, v in last.items()}})
    return history


def _seed(cfg: TrainConfig) -> np.random.Generator:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    return np.random.default_rng(cfg.seed)


def environment() -> dict[str, Any]:
    return {"torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(),
            "machine": platform.machine()}


def train_european(cfg: TrainConfig, log: Log = print) -> tuple[EuropeanPINN, dict[str, Any]]:
    rng = _seed(cfg)
    model = EuropeanPINN(PinnConfig(kind="european", width=cfg.width, depth=cfg.depth,
                                    domain=TRAINED_DOMAIN.as_dict()))
    started = time.perf_counter()

    def loss_fn(batch: dict[str, Any], physics: bool) -> dict[str, torch.Tensor]:
        return european_losses(model, batch) if physics else european_data_loss(model, batch)

    history = _optimise(model, loss_fn, lambda n: _european_batch(n, rng), cfg, log)
    meta = {"train_seconds": time.perf_counter() - started, "history": history,
            "train_config": cfg.to_dict(), "environment": environment()}
    return model, meta


def train_american(cfg: TrainConfig, euro: EuropeanPINN,
                   log: Log = print) -> tuple[AmericanPremium, dict[str, Any]]:
    rng = _seed(cfg)
    started = time.perf_counter()
    ref = american_reference(cfg.fd_param_sets, cfg.fd_points_per_set, rng, log)
    fd_seconds = time.perf_counter() - started
    for p in euro.parameters():
        p.requires_grad_(False)
    model = AmericanPremium(PinnConfig(kind="american", width=cfg.width, depth=cfg.depth,
                                       domain=TRAINED_DOMAIN.as_dict()))
    n_ref = ref["m"].size

    def draw(n: int) -> dict[str, Any]:
        idx = rng.integers(0, n_ref, n)
        return {k: v[idx] for k, v in ref.items()}

    history = _optimise(model, lambda b, phys: american_losses(model, euro, b, phys), draw, cfg,
                        log)
    meta = {"train_seconds": time.perf_counter() - started, "fd_seconds": fd_seconds,
            "fd_points": int(n_ref), "history": history, "train_config": cfg.to_dict(),
            "environment": environment()}
    return model, meta


def config_for(which: str, profile: str, seed: int = 0, **overrides: Any) -> TrainConfig:
    if which not in PROFILES:
        raise ValueError(f"which: expected one of {list(PROFILES)}, got {which!r}")
    if profile not in PROFILES[which]:
        raise ValueError(f"profile: expected one of {list(PROFILES[which])}, got {profile!r}")
    return TrainConfig(seed=seed, **{**PROFILES[which][profile], **overrides})
