"""The American path against QuantLib's QdFp engine: the engine wiring, the fine-tune on its
labels, the acceptance figures on a sample and the early-exercise boundary's monotonicity."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from causalcast.options.inputs import OptionInputError

ql = pytest.importorskip("QuantLib")
from causalcast.options.accuracy import (  # noqa: E402
    american_accuracy_qdfp,
    boundary_monotone,
    exercise_boundary,
)
from causalcast.options.finetune import (  # noqa: E402
    FinetuneConfig,
    finetune_premium,
    label_points,
    qdfp_labels,
    served_put,
)
from causalcast.options.pinn import AmericanPremium, PinnConfig  # noqa: E402
from causalcast.options.pricer import load_models  # noqa: E402
from causalcast.options.quantlib_ref import quantlib_price  # noqa: E402

# What the shipped weights reach on 1000 random options per kind (benchmark): max 1.6e-4·K
# (puts) and 3.1e-4·K (calls), mean 1.2e-5·K and 1.5e-5·K. The goal (1e-4·K, 1e-5·K)
# is not met yet; these bounds guard the shipped figures on a 60-option sample, not the goal.
MAX_ERROR = 2.5e-4
MEAN_ERROR = 3e-5


@pytest.fixture(scope="module")
def models():
    return load_models()


def test_qdfp_engines_agree_with_crr_and_refuse_european() -> None:
    """QdFp high precision (the accuracy reference) and fast (the speed peer) against an
    independent engine, CRR with 4000 steps, for puts and calls with dividends."""
    rng = np.random.default_rng(3)
    n = 12
    args = (rng.uniform(60, 150, n), 100.0, rng.integers(14, 700, n) / 365.0,
            rng.uniform(0.1, 0.6, n), rng.uniform(0.01, 0.1, n), rng.uniform(0.0, 0.05, n))
    for kind in ("put", "call"):
        crr = quantlib_price(*args, kind=kind, style="american", engine="crr", steps=4000)
        high = quantlib_price(*args, kind=kind, style="american", engine="qdfp-high")
        fast = quantlib_price(*args, kind=kind, style="american", engine="qdfp-fast")
        assert np.abs(high - crr).max() < 5e-3      # CRR(4000)'s own error is ~1e-3
        assert np.abs(fast - high).max() < 1e-2
    with pytest.raises(OptionInputError, match="American options only"):
        quantlib_price(100.0, 100.0, 1.0, 0.2, kind="put", engine="qdfp-fast")


def test_finetune_lowers_the_served_error_and_is_seeded() -> None:
    """A tiny network fitted to 300 QdFp labels: the served-price error falls, the weights
    come back float32 and finite, and two runs with one seed give the same weights."""
    rng = np.random.default_rng(0)
    pts = label_points(300, rng)
    assert pts["m"].min() >= 0.5 and pts["m"].max() <= 2.0
    assert np.allclose(pts["tau"] * 365, np.rint(pts["tau"] * 365))   # whole days
    labels = qdfp_labels(pts, "qdfp-fast")
    assert (labels >= np.maximum(1.0 - pts["m"], 0.0) - 1e-12).all()
    torch.manual_seed(0)
    start = AmericanPremium(PinnConfig(kind="american", width=8, depth=2))
    cfg = FinetuneConfig(lbfgs_iters=30, max_seconds=60.0)

    def error(model: AmericanPremium) -> float:
        from causalcast.options.black_scholes import bsm_price

        t = {k: torch.tensor(v) for k, v in pts.items()}
        eu = torch.tensor(bsm_price(pts["m"], 1.0, pts["tau"], pts["sigma"], pts["rate"],
                                    pts["div"], "put"))
        with torch.no_grad():
            return float((served_put(model.double(), t, eu) - torch.tensor(labels)).abs().max())

    a, meta = finetune_premium(copy.deepcopy(start), pts, labels, cfg, log=lambda s: None)
    b, _ = finetune_premium(copy.deepcopy(start), pts, labels, cfg, log=lambda s: None)
    assert next(a.parameters()).dtype == torch.float32
    for k, v in a.state_dict().items():
        assert torch.isfinite(v).all() and torch.equal(v, b.state_dict()[k]), k
    assert error(copy.deepcopy(a)) < 0.5 * error(copy.deepcopy(start))
    assert meta["evaluations"] > 1 and meta["n_labels"] == 300


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["put", "call"])
def test_american_against_qdfp_high_precision(models, kind) -> None:
    """The served American price against QdFp high precision on 60 random in-domain options
    (τ ≥ 7 days); the benchmark runs 1000 per kind."""
    acc = american_accuracy_qdfp(models, n=60, seed=7, kind=kind, peer=None)
    assert acc["max_abs_over_K"] <= MAX_ERROR, acc
    assert acc["mean_abs_over_K"] <= MEAN_ERROR, acc


@pytest.mark.xfail(strict=True, reason="issue 18 goal not met: the served boundary (where the "
                   "payoff floor binds) rises with τ in some rows (11 of the benchmark's 54), "
                   "e.g. σ = 0.05, r = 0.02, q = 0.025: 0.769 at 7 days, 0.790 at 19 days, "
                   "where the true one falls from K·r/q = 0.8")
def test_exercise_boundary_falls_with_maturity(models) -> None:
    """The served put's early-exercise boundary S*/K never rises with τ, over σ, r, q. Near
    the boundary the price exceeds the payoff only quadratically, so an error ε in the
    premium moves the boundary by ~√(2ε/Γ): a 1e-5·K error can move it by percents."""
    grid = [a.ravel() for a in np.meshgrid([0.05, 0.2, 0.6], [0.03, 0.1], [0.0, 0.05],
                                           indexing="ij")]
    b = exercise_boundary(models, *grid, np.linspace(7 / 365, 2.0, 25), step=1e-3)
    assert np.isfinite(b).any()        # some rows have an exercise region in the domain
    assert (b[np.isfinite(b)] < 1.0).all()
    res = boundary_monotone(b)
    assert res["monotone"], res
