"""`causalcast options train-pinn`: train, measure, then write the weights with their record.

The weights' JSON config carries everything that produced them (training configuration, seed,
library versions, loss history, wall time) and the acceptance figures measured on the fixed
test sets, so a shipped file documents itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from causalcast.io import atomic_write_json
from causalcast.options.accuracy import american_accuracy, european_accuracy
from causalcast.options.pricer import LoadedModels, load_network
from causalcast.options.training import Log, config_for, train_american, train_european
from causalcast.weights import save_weights

EVAL_SIZES = {"full": (100_000, "full"), "quick": (2_000, "small")}


def _save(stem: Path, model: torch.nn.Module, meta: dict[str, Any]) -> str:
    return save_weights(stem, model.state_dict(), {"model": model.cfg.to_dict(), "meta": meta})


def run_training(folder: Path, which: str, profile: str, seed: int, evaluate: bool,
                 log: Log) -> dict[str, Any]:
    folder = Path(folder)
    n_eu, grid = EVAL_SIZES.get(profile, (2_000, "small"))
    report: dict[str, Any] = {"folder": str(folder), "profile": profile, "seed": seed}
    started = time.perf_counter()
    if which in ("european", "both"):
        cfg = config_for("european", profile, seed)
        log(f"training the European network ({profile})")
        euro, meta = train_european(cfg, log)
        euro.eval()
        if evaluate:
            meta["accuracy"] = european_accuracy(LoadedModels(euro, None, {}, {}), n=n_eu)
            log(f"  accuracy: {meta['accuracy']}")
        report["european"] = {"sha256": _save(folder / "european", euro, meta),
                              "train_seconds": meta["train_seconds"],
                              "accuracy": meta.get("accuracy")}
    else:
        euro, _, _ = load_network(folder / "european", "european")
    if which in ("american", "both"):
        cfg = config_for("american", profile, seed)
        log(f"training the American premium network ({profile})")
        prem, meta = train_american(cfg, euro, log)
        prem.eval()
        if evaluate:
            models = LoadedModels(euro, prem, {}, {})
            meta["accuracy"] = {k: american_accuracy(models, grid, k) for k in ("put", "call")}
            log(f"  accuracy: {meta['accuracy']}")
        report["american"] = {"sha256": _save(folder / "american", prem, meta),
                              "train_seconds": meta["train_seconds"],
                              "accuracy": meta.get("accuracy")}
    report["total_seconds"] = time.perf_counter() - started
    atomic_write_json(folder / "training_report.json", report)
    return report
