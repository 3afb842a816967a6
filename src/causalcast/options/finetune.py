"""Fine-tuning the American premium network on QuantLib QdFp labels (in the ``[bench]`` extra).

Why: the premium network was pre-trained on our finite-difference premia and the LCP residual;
its served price was 8e-4·K off QuantLib's QdFp high-precision engine at worst. QdFp's
'accurate' scheme is within 4e-7·K of the high-precision one (measured on 800 random
in-domain options) at ~0.35 ms an option, so tens of thousands of labels cost seconds, and a
seeded L-BFGS fine-tune from the shipped weights on them takes minutes, not a retraining.

What is fitted is the *served* American put price per unit strike,

    V = max(P_eu(m, τ, σ, r, q) + p(m, τ, σ, r, q), (1 − m)⁺),

with P_eu the exact closed form (what `pricer.pinn_greeks` adds the premium to) and p the
network (`pinn.AmericanPremium`). The loss sees the floor: where QuantLib says exercise (its
price is the payoff) the network need only stay below the payoff, so it is not asked to
reproduce the kink of the price at the exercise boundary, which a smooth network cannot; where
QuantLib says continuation the error is that of P_eu + p itself, so a point wrongly floored
still has a gradient (through the floor it would have none, and such points were the last to
improve). Points are drawn in put coordinates over the union of what puts and calls (through
put–call symmetry: (1/m, q, r)) need.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from causalcast.options.black_scholes import bsm_price
from causalcast.options.pinn import AmericanPremium
from causalcast.options.training import Log, environment

PRICE_UNIT = 1e-4   # losses in units of 1e-4·K
# A label within this of the payoff counts as exercise: QdFp's prices in the exercise region
# are the payoff plus up to ~3e-6·K of noise, and taken as continuation they demanded that the
# unfloored P_eu + p reach the payoff deep in the money (errors of 2e-2·K at the first step).
EXERCISE_GAP = 1e-5


@dataclass(frozen=True)
class FinetuneConfig:
    seed: int = 0
    n_labels: int = 60_000
    lbfgs_iters: int = 2000
    max_seconds: float = 900.0
    power: int = 4          # loss = mean |err|^power: weights the worst points
    engine: str = "qdfp-accurate"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_points(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Put-coordinate points: S/K uniform or (for calls' 1/m) reciprocal-uniform on [0.5, 2];
    τ whole days (QuantLib prices whole days), 1–730 with one in ten under a week; σ, r, q
    uniform, r and q both up to 0.1 (calls put their dividend in the put's rate)."""
    recip = rng.random(n) < 0.5
    m = np.where(recip, 1.0 / rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 2.0, n))
    short = rng.random(n) < 0.1
    days = np.where(short, rng.integers(1, 7, n), rng.integers(7, 731, n))
    return {"m": m, "tau": days / 365.0, "sigma": rng.uniform(0.05, 1.0, n),
            "rate": rng.uniform(0.0, 0.1, n), "div": rng.uniform(0.0, 0.1, n)}


def qdfp_labels(points: dict[str, np.ndarray], engine: str = "qdfp-accurate") -> np.ndarray:
    """American put prices per unit strike from QuantLib (τ already whole days)."""
    from causalcast.options.quantlib_ref import quantlib_price

    return quantlib_price(points["m"] * 100.0, 100.0, points["tau"], points["sigma"],
                          points["rate"], points["div"], "put", "american", engine) / 100.0


def served_put(model: AmericanPremium, t: dict[str, torch.Tensor],
               european: torch.Tensor) -> torch.Tensor:
    """max(P_eu + premium, payoff) per unit strike, differentiable in the weights."""
    prem = model(t["m"], t["tau"], t["sigma"], t["rate"], t["div"])
    return torch.maximum(european + prem, torch.clamp(1.0 - t["m"], min=0.0))


def fit_error(model: AmericanPremium, t: dict[str, torch.Tensor], european: torch.Tensor,
              target: torch.Tensor) -> torch.Tensor:
    """Per point, the served price's error where the label is exercise (= payoff), the
    unfloored P_eu + p's error where it is continuation, bounded below by twice the served
    error there: the same value wherever the served price is right about the region, a
    gradient where it is wrongly floored by less than the label's gap to the payoff, and never
    more weight than twice the served error (points just inside continuation, 1e-5·K above
    the payoff, would otherwise dominate a loss that weights the worst points)."""
    payoff = torch.clamp(1.0 - t["m"], min=0.0)
    value = european + model(t["m"], t["tau"], t["sigma"], t["rate"], t["div"])
    exercise = target <= payoff + EXERCISE_GAP
    continuation = torch.maximum(value - target, 2.0 * (payoff - target))
    return torch.where(exercise, torch.clamp(value - payoff, min=0.0), continuation)


def finetune_premium(model: AmericanPremium, points: dict[str, np.ndarray], labels: np.ndarray,
                     cfg: FinetuneConfig, log: Log = print) -> tuple[AmericanPremium,
                                                                     dict[str, Any]]:
    """L-BFGS from the given weights (float64 during the fit, returned as float32) on the
    served put price; stops after ``lbfgs_iters`` iterations or ``max_seconds``."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)
    model = model.double()
    for p in model.parameters():
        p.requires_grad_(True)
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in points.items()}
    european = torch.tensor(bsm_price(points["m"], 1.0, points["tau"], points["sigma"],
                                      points["rate"], points["div"], "put"))
    target = torch.tensor(labels, dtype=torch.float64)
    opt = torch.optim.LBFGS(list(model.parameters()), lr=1.0, max_iter=cfg.lbfgs_iters,
                            history_size=50, tolerance_grad=0.0, tolerance_change=0.0,
                            line_search_fn="strong_wolfe")
    started = time.perf_counter()
    history: list[dict[str, float]] = []
    evals = [0]
    # the best weights seen: L-BFGS's line search leaves trial weights in place when stopped
    best: dict[str, Any] = {"loss": math.inf,
                            "state": {k: v.detach().clone() for k, v in
                                      model.state_dict().items()}}

    def closure() -> torch.Tensor:
        if time.perf_counter() - started > cfg.max_seconds:
            raise _OutOfTime
        opt.zero_grad(set_to_none=True)
        err = fit_error(model, t, european, target) / PRICE_UNIT
        loss = err.abs().pow(cfg.power).mean()
        loss.backward()
        evals[0] += 1
        value = float(loss.detach())
        if math.isfinite(value) and value < best["loss"]:
            best["loss"] = value
            best["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if evals[0] % 100 == 1:
            gap = err.detach().abs()
            rec = {"eval": evals[0], "loss": value,
                   "max_abs_over_K": float(gap.max()) * PRICE_UNIT,
                   "mean_abs_over_K": float(gap.mean()) * PRICE_UNIT,
                   "seconds": time.perf_counter() - started}
            history.append(rec)
            log(f"  fine-tune eval {rec['eval']}: loss={rec['loss']:.4g} "
                f"max={rec['max_abs_over_K']:.3g}·K mean={rec['mean_abs_over_K']:.3g}·K "
                f"({rec['seconds']:.0f}s)")
        return loss

    with contextlib.suppress(_OutOfTime):   # the time budget is spent
        opt.step(closure)
    model.load_state_dict(best["state"])
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    meta = {"finetune_seconds": time.perf_counter() - started, "evaluations": evals[0],
            "best_loss": best["loss"], "history": history, "config": cfg.to_dict(),
            "environment": environment(),
            "label_engine": f"QuantLib {cfg.engine}", "n_labels": int(labels.size)}
    return model, meta


class _OutOfTime(Exception):
    """Raised inside the L-BFGS closure when the time budget is spent."""



def boundary_points(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Put-coordinate points where the worst errors sit: in and near the money (S/K in
    [0.5, 1.1], which holds in-the-money calls through 1/m too), σ log-uniform on [0.05, 1]
    so the low volatilities of the sharpest boundaries get as many points as the high, τ
    whole days 7–730."""
    return {"m": rng.uniform(0.5, 1.1, n), "tau": rng.integers(7, 731, n) / 365.0,
            "sigma": np.exp(rng.uniform(np.log(0.05), 0.0, n)),
            "rate": rng.uniform(0.0, 0.1, n), "div": rng.uniform(0.0, 0.1, n)}


def continue_finetune(folder: str, out: str, n_labels: int, n_boundary: int, seed: int,
                      seconds: float, log: Log = print) -> dict[str, Any]:
    """Fine-tune the premium network of ``folder`` further on fresh QdFp labels (seeded by
    ``seed``: new points, not the earlier runs' again) and write it, with this run appended to
    its record, to ``out`` (with the European network beside it, so ``out`` loads as a
    pair). Nothing is replaced in place: shipping is a decision made on held-out accuracy."""
    import shutil
    from pathlib import Path

    from causalcast.options.pricer import load_network
    from causalcast.weights import load_weights, save_weights

    src, dst = Path(folder), Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    model, _, _ = load_network(src / "american", "american")
    _, config = load_weights(src / "american")
    a, b = label_points(n_labels, np.random.default_rng(seed)), \
        boundary_points(n_boundary, np.random.default_rng(seed + 1))
    points = {k: np.concatenate([a[k], b[k]]) for k in a}
    started = time.perf_counter()
    labels = qdfp_labels(points)
    log(f"{labels.size} QdFp labels in {time.perf_counter() - started:.0f} s")
    cfg = FinetuneConfig(seed=0, n_labels=int(labels.size), lbfgs_iters=1_000_000,
                         max_seconds=seconds)
    model, meta = finetune_premium(model, points, labels, cfg, log)
    meta["labels"] = (f"label_points({n_labels}, default_rng({seed})) + "
                      f"boundary_points({n_boundary}, default_rng({seed + 1}))")
    record = config.setdefault("meta", {}).setdefault("finetune", {})
    record.setdefault("runs", []).append(meta)
    record["seconds"] = float(record.get("seconds", 0.0)) + meta["finetune_seconds"]
    digest = save_weights(dst / "american", model.state_dict(), config)
    for suffix in (".safetensors", ".json"):
        shutil.copy2((src / "european").with_suffix(suffix), (dst / "european").with_suffix(
            suffix))
    return {"out": str(dst), "sha256": digest, **{k: meta[k] for k in
                                                   ("evaluations", "best_loss",
                                                    "finetune_seconds")}}


if __name__ == "__main__":
    import argparse

    from causalcast.options.pricer import WEIGHTS_DIR

    parser = argparse.ArgumentParser(description="continue the American premium fine-tune")
    parser.add_argument("--out", required=True, help="folder for the new weights")
    parser.add_argument("--from", dest="folder", default=str(WEIGHTS_DIR))
    parser.add_argument("--labels", type=int, default=60_000)
    parser.add_argument("--boundary-labels", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2400.0)
    args = parser.parse_args()
    print(continue_finetune(args.folder, args.out, args.labels, args.boundary_labels,
                            args.seed, args.seconds))
