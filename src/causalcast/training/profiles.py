"""Every profile in one place: model sizes, training budgets and the main job's scale.

A profile name (``quick`` or ``full``) is all a command needs: `RunSpec.profile` picks the
model sizes (``models``) and the training budget (``train``) of every job; ``causalcast run``
(``make run``) also reads its ``main_job`` section (universe size, audit cut points, folds,
and a training budget that overrides ``train`` for the main job).

* ``quick``: small models, <= 20 epochs (CI, ``make run``, benchmarks); the main job takes
  about 5 minutes on 2 cores;
* ``full``: wider models, longer patience, a larger main-job universe.
"""

from __future__ import annotations

from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "train": {"epochs": 20, "patience": 4, "batch_size": 256, "lr": 2e-3},
        "models": {"lstm": {"hidden": 32, "layers": 1},
                   "tcn": {"channels": 32, "blocks": 4, "kernel_size": 3},
                   "mamba": {"d_model": 16, "n_layers": 1, "d_state": 8, "expand": 2}},
        "main_job": {"symbols": 6, "bars": 2520, "audit_cuts": 8, "folds": 5,
                     "train": {"epochs": 8, "patience": 3}},
    },
    "full": {
        "train": {"epochs": 100, "patience": 10, "batch_size": 256, "lr": 1e-3},
        "models": {"lstm": {"hidden": 64, "layers": 2, "dropout": 0.1},
                   "tcn": {"channels": 64, "blocks": 5, "kernel_size": 3, "dropout": 0.1},
                   "mamba": {"d_model": 64, "n_layers": 2, "d_state": 16, "expand": 2,
                             "dropout": 0.1}},
        "main_job": {"symbols": 20, "bars": 2520, "audit_cuts": 30, "folds": 5, "train": {}},
    },
}


def check_profile(name: str, field: str = "profile") -> dict[str, Any]:
    """The named profile; a `ValueError` naming the field and the choices otherwise."""
    if name not in PROFILES:
        raise ValueError(f"{field}: choose from {list(PROFILES)}, got {name!r}")
    return PROFILES[name]
