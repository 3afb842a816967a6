"""Where a training loop runs: ``--device auto|cpu|cuda`` resolved once, with a clear error.

The device is placement, not identity (like the thread count): it is not part of a job's
key. The trainer puts the model and its batches there; checkpoints are written as CPU tensors
and the trained model returns to the CPU (see `trainer.Trainer`).
"""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N`` -> a device;
    a `ValueError` naming the option when the machine cannot honour it."""
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device: no CUDA device on this machine for {name!r}; use cpu "
                             f"or auto")
        device = torch.device(text)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device: {name!r} requested but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
        return device
    raise ValueError(f"device: choose from {', '.join(DEVICES)} (or cuda:N), got {name!r}")
