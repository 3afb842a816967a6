"""Issue 12 item 6: a corrupt latest checkpoint falls back to the newest good one, logged."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from causalcast.training.checkpoint import (
    POINTER,
    CheckpointError,
    TrainState,
    has_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)

RUN = "run-key"


def _parts(seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Linear(3, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=0.01)


def _save_two(folder: Path) -> tuple[dict, dict]:
    """Two checkpoints (epochs 1 and 2) with different weights; returns both state dicts."""
    saved = []
    model, opt = _parts(0)
    for epoch in (1, 2):
        model(torch.ones(4, 3)).sum().backward()
        opt.step()
        save_checkpoint(folder, model=model, optimizer=opt, scheduler=None,
                        state=TrainState(epoch=epoch), best=None, run_key=RUN)
        saved.append({k: v.clone() for k, v in model.state_dict().items()})
    return saved[0], saved[1]


def _restore(folder: Path) -> tuple[TrainState, nn.Module]:
    model, opt = _parts(1)
    state, _ = restore_checkpoint(folder, model=model, optimizer=opt, scheduler=None,
                                  run_key=RUN)
    return state, model


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _latest(folder: Path) -> str:
    return json.loads((folder / POINTER).read_text())["stem"]


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("fault", ["flip tensors", "truncate json", "delete tensors",
                                   "garble pointer", "delete pointer"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(
        tmp_path: Path, fault: str, caplog: pytest.LogCaptureFixture) -> None:
    first, second = _save_two(tmp_path)
    stem = tmp_path / _latest(tmp_path)
    if fault == "flip tensors":
        _flip(stem.with_suffix(".safetensors"))
    elif fault == "truncate json":
        stem.with_suffix(".json").write_bytes(b"")
    elif fault == "delete tensors":
        stem.with_suffix(".safetensors").unlink()
    elif fault == "garble pointer":
        (tmp_path / POINTER).write_bytes(b"\x00garbage")
    else:
        (tmp_path / POINTER).unlink()
    assert has_checkpoint(tmp_path)
    with caplog.at_level(logging.WARNING, logger="causalcast.training.checkpoint"):
        state, model = _restore(tmp_path)
    pointer_damaged = fault in ("garble pointer", "delete pointer")
    # A damaged pointer alone leaves the newest checkpoint usable; a damaged checkpoint costs
    # one checkpoint of work.
    assert state.epoch == (2 if pointer_damaged else 1)
    assert _same(model.state_dict(), second if pointer_damaged else first)
    assert any("newest good checkpoint" in r.message for r in caplog.records)


def test_an_intact_latest_checkpoint_is_used_without_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, second = _save_two(tmp_path)
    with caplog.at_level(logging.WARNING):
        state, model = _restore(tmp_path)
    assert state.epoch == 2 and _same(model.state_dict(), second) and not caplog.records


def test_every_checkpoint_damaged_is_refused_naming_each(tmp_path: Path) -> None:
    _save_two(tmp_path)
    for tensors in tmp_path.glob("ckpt-*.safetensors"):
        _flip(tensors)
    with pytest.raises(CheckpointError, match=r"no usable checkpoint.*checksum mismatch"):
        _restore(tmp_path)


def test_a_checkpoint_of_another_run_is_refused_not_skipped(tmp_path: Path) -> None:
    _save_two(tmp_path)
    model, opt = _parts(1)
    with pytest.raises(CheckpointError, match="different run"):
        restore_checkpoint(tmp_path, model=model, optimizer=opt, scheduler=None,
                           run_key="another")
