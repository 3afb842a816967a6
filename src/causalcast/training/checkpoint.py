"""Training checkpoints: everything needed to continue bit-for-bit, written atomically.

A checkpoint holds the model, the optimizer (AdamW moments and step counts), the LR
scheduler, the RNG states (Python, NumPy generators in use, torch), the epoch, the position
inside the epoch (the sampler's permutation is a pure function of (seed, epoch), so the
position is all the data loader needs), the early-stopping state and its best weights.

Tensors go into a safetensors file, everything else into its JSON config (via
`causalcast.weights.save_weights`: ``ckpt-EEEE-PPPPPP.safetensors`` + ``.json`` with a
SHA-256). Then ``latest.json`` — a pointer naming the file and its checksum — is replaced
atomically, and older checkpoints are deleted. A kill at any instant leaves the previous
pointer and a complete pair it names. Nothing is pickled: optimizer state is decomposed
into tensors and JSON, so `torch.load` is never needed.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from causalcast.io import atomic_write_json
from causalcast.weights import WeightsError, check_state_dict, load_weights, save_weights

KIND = "causalcast-checkpoint"
VERSION = 1
POINTER = "latest.json"
KEEP = 2
log = logging.getLogger(__name__)


class CheckpointError(WeightsError):
    """A checkpoint that is missing, corrupt, or written for a different run."""


@dataclass
class TrainState:
    """The trainer's counters (JSON); tensors travel separately."""

    epoch: int = 0                 # completed epochs
    position: int = 0              # samples already consumed in epoch `epoch + 1`
    step: int = 0                  # optimizer steps taken in epoch `epoch + 1`
    batch_size: int = 256
    loss_sum: float = 0.0          # running training loss of the current epoch
    loss_count: int = 0
    best_val: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    finished: bool = False
    nan_retries: int = 0
    oom_retries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _rng_python() -> list:
    version, state, gauss = random.getstate()
    return [version, list(state), gauss]


def _set_rng_python(data: list) -> None:
    random.setstate((data[0], tuple(data[1]), data[2]))


def _optimizer_parts(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                plain.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "plain": plain}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entry in meta["plain"].items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def _stem(folder: Path, state: TrainState) -> Path:
    return folder / f"ckpt-{state.epoch:04d}-{state.position:07d}"


def save_checkpoint(folder: str | Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, state: TrainState, best: dict[str, torch.Tensor] | None,
                    run_key: str, generators: dict[str, np.random.Generator] | None = None
                    ) -> Path:
    """Write a checkpoint and point ``latest.json`` at it; returns the tensor file path."""
    folder = Path(folder)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for k, v in (best or {}).items():
        tensors[f"best.{k}"] = v
    opt_tensors, opt_meta = _optimizer_parts(optimizer)
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    # Files hold CPU tensors whatever device trained: a checkpoint written on a GPU resumes on
    # a CPU (restore copies them into the model's and optimizer's own device).
    tensors = {k: v if v.device.type == "cpu" else v.detach().cpu() for k, v in tensors.items()}
    config = {
        "kind": KIND, "version": VERSION, "run_key": run_key, "state": state.to_dict(),
        "optimizer": opt_meta, "scheduler": scheduler.state_dict() if scheduler else None,
        "rng": {"python": _rng_python(),
                "numpy": {k: g.bit_generator.state for k, g in (generators or {}).items()}},
    }
    stem = _stem(folder, state)
    digest = save_weights(stem, tensors, config)
    atomic_write_json(folder / POINTER, {"stem": stem.name, "sha256": digest,
                                         "epoch": state.epoch, "position": state.position})
    _prune(folder, keep=stem.name)
    return stem.with_suffix(".safetensors")


def _prune(folder: Path, keep: str) -> None:
    stems = sorted({p.with_suffix("").name for p in folder.glob("ckpt-*.json")})
    old = [s for s in stems if s != keep][: max(len(stems) - KEEP, 0)]
    for s in old:
        for suffix in (".safetensors", ".json"):
            (folder / f"{s}{suffix}").unlink(missing_ok=True)


def has_checkpoint(folder: str | Path) -> bool:
    """A pointer, or at least one checkpoint pair to fall back to."""
    folder = Path(folder)
    return (folder / POINTER).exists() or any(folder.glob("ckpt-*.json"))


def _candidates(folder: Path) -> tuple[list[Path], dict[str, Any] | None, str | None]:
    """Checkpoint stems to try, the pointer's first and then the others newest first (names
    sort by epoch and position); the pointer (None if unreadable) and what is wrong with it."""
    pointer_path = folder / POINTER
    pointer, problem = None, None
    try:
        pointer = json.loads(pointer_path.read_text())
        if not isinstance(pointer, dict) or not isinstance(pointer.get("stem"), str):
            raise TypeError("no 'stem' field")
    except FileNotFoundError:
        problem = f"{pointer_path}: missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        pointer, problem = None, f"{pointer_path}: unreadable pointer ({exc})"
    stems = sorted({p.with_suffix("").name for p in folder.glob("ckpt-*.json")}, reverse=True)
    first = [] if pointer is None else [pointer["stem"]]
    return [folder / s for s in first + [s for s in stems if s not in first]], pointer, problem


def _read_one(stem: Path, expected_sha256: str | None) -> tuple[dict[str, torch.Tensor],
                                                                  dict[str, Any]]:
    """One verified checkpoint pair; `CheckpointError` saying what is wrong with it."""
    try:
        tensors, config = load_weights(stem)
        recorded = json.loads(stem.with_suffix(".json").read_text()).get("sha256")
    except WeightsError as exc:
        raise CheckpointError(f"checkpoint refused: {exc}") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{stem}: unreadable ({exc})") from None
    if expected_sha256 is not None and recorded != expected_sha256:
        raise CheckpointError(f"{stem}: checksum differs from {POINTER}; refusing to resume")
    if config.get("kind") != KIND or config.get("version") != VERSION:
        raise CheckpointError(f"{stem}: not a {KIND} v{VERSION} file")
    return tensors, config


def read_checkpoint(folder: str | Path, run_key: str | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verified tensors and config of the newest good checkpoint; `CheckpointError` if none.

    The pointer's checkpoint comes first. If it is damaged (or the pointer is), the newest
    other checkpoint that verifies is used and a warning names what was skipped: a disk that
    corrupted the last write costs the work since the previous checkpoint, not the run. A
    checkpoint written for a different run is refused outright (no fallback can fix that)."""
    folder = Path(folder)
    stems, pointer, problem = _candidates(folder)
    if not stems:
        raise CheckpointError(f"{folder / POINTER}: no checkpoint to resume from")
    skipped = [problem] if problem and pointer is None and stems else []
    for stem in stems:
        latest = pointer is not None and stem.name == pointer["stem"]
        try:
            tensors, config = _read_one(stem, pointer.get("sha256") if latest else None)
        except CheckpointError as exc:
            skipped.append(str(exc))
            continue
        if run_key is not None and config.get("run_key") != run_key:
            raise CheckpointError(
                f"{stem}: written for a different run (model, training settings or data "
                "differ); remove the folder or train into another --out")
        if skipped:
            log.warning("resuming from %s, the newest good checkpoint; skipped: %s", stem,
                        "; ".join(skipped))
        return tensors, config
    raise CheckpointError(f"{folder}: no usable checkpoint: " + "; ".join(skipped))


def restore_checkpoint(folder: str | Path, *, model: nn.Module,
                       optimizer: torch.optim.Optimizer, scheduler: Any, run_key: str,
                       generators: dict[str, np.random.Generator] | None = None
                       ) -> tuple[TrainState, dict[str, torch.Tensor] | None]:
    """Load the latest checkpoint into the given objects; returns (state, best weights)."""
    tensors, config = read_checkpoint(folder, run_key)
    source = str(folder)
    model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    check_state_dict(model, model_sd, source)
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    if best is not None:
        check_state_dict(model, best, source + " (best weights)")
    model.load_state_dict(model_sd, strict=True)
    try:
        optimizer.load_state_dict(_optimizer_state(tensors, config["optimizer"]))
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: optimizer state does not fit ({exc})") from None
    if scheduler is not None and config.get("scheduler") is not None:
        scheduler.load_state_dict(config["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    _set_rng_python(config["rng"]["python"])
    for name, gen in (generators or {}).items():
        if name in config["rng"]["numpy"]:
            gen.bit_generator.state = config["rng"]["numpy"][name]
    return TrainState.from_dict(config["state"]), best
