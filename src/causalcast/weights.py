"""Weights on disk: safetensors + a JSON config + a SHA-256 checksum (invariant 5).

A saved model is two files side by side:

* ``<name>.safetensors`` holds the tensors; its header metadata repeats the config JSON;
* ``<name>.json`` holds ``{"format", "config", "sha256", "tensors"}``.

Loading re-hashes the tensor file, compares it with the JSON, parses the header and checks that
its config matches: a truncated, corrupt or swapped file is refused with `WeightsError` before
any tensor reaches a model. Nothing is unpickled, so loading never executes code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from causalcast.io import atomic_write_bytes, atomic_write_json
from causalcast.weights_header import FORMAT, WeightsError
from causalcast.weights_header import read_header as _read_header


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def _canonical_header(data: bytes) -> bytes:
    """Rewrite the safetensors header as sorted-key JSON.

    safetensors keeps ``__metadata__`` in a hash map, so its key order (and with it the file's
    SHA-256) changes from call to call; content-addressed storage needs equal models to give
    equal bytes. Data offsets are relative to the end of the header, so only the header moves."""
    n, header = _read_header(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8-byte alignment
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


def serialize(tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> tuple[bytes, str]:
    """Tensor-file bytes and their SHA-256; bytes are deterministic for equal inputs."""
    clean = {k: v.detach().cpu().contiguous() for k, v in sorted(tensors.items())}
    data = _canonical_header(st_save(clean, metadata={"format": FORMAT,
                                                      "config": _canonical(config)}))
    return data, sha256_bytes(data)


def save_weights(path_stem: str | Path, tensors: dict[str, torch.Tensor],
                 config: dict[str, Any]) -> str:
    """Write ``stem.safetensors`` then ``stem.json`` atomically; returns the SHA-256.

    The JSON is written last, so a reader that finds it also finds the tensor file it names."""
    stem = Path(path_stem)
    data, digest = serialize(tensors, config)
    atomic_write_bytes(stem.with_suffix(".safetensors"), data)
    atomic_write_json(stem.with_suffix(".json"), {
        "format": FORMAT, "config": config, "sha256": digest,
        "tensors": {k: list(v.shape) for k, v in sorted(tensors.items())}})
    return digest


def parse(data: bytes, config: dict[str, Any] | None = None, sha256: str | None = None,
          source: str = "weights") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verify and decode tensor-file bytes (checksum, header, config agreement)."""
    if sha256 is not None and sha256_bytes(data) != sha256:
        raise WeightsError(f"{source}: checksum mismatch (file is corrupt or was replaced)")
    try:
        _, header = _read_header(data)
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises several types for bad bytes
        raise WeightsError(f"{source}: not a valid safetensors file ({exc})") from exc
    meta = header.get("__metadata__", {})
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{source}: format {meta.get('format')!r}, expected {FORMAT!r}")
    stored = json.loads(meta.get("config", "{}"))
    if config is not None and _canonical(config) != _canonical(stored):
        raise WeightsError(f"{source}: config in the JSON does not match the tensor file")
    return tensors, stored


def load_weights(path_stem: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load and verify ``stem.safetensors`` against ``stem.json``; raises `WeightsError`."""
    stem = Path(path_stem)
    meta_path = stem.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as exc:
        raise WeightsError(f"{meta_path}: missing") from exc
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{meta_path}: not valid JSON ({exc})") from exc
    for key in ("format", "config", "sha256"):
        if key not in meta:
            raise WeightsError(f"{meta_path}: field {key!r} missing")
    tensor_path = stem.with_suffix(".safetensors")
    try:
        data = tensor_path.read_bytes()
    except FileNotFoundError as exc:
        raise WeightsError(f"{tensor_path}: missing") from exc
    return parse(data, meta["config"], meta["sha256"], str(tensor_path))


def check_state_dict(module: torch.nn.Module, tensors: dict[str, torch.Tensor],
                     source: str = "weights") -> None:
    """Refuse tensors whose names or shapes do not match the module exactly."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
    wrong = [k for k in expected.keys() & got.keys() if expected[k] != got[k]]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing {sorted(missing)[:5]}")
        if extra:
            parts.append(f"unexpected {sorted(extra)[:5]}")
        if wrong:
            parts.append("shape mismatch " + ", ".join(
                f"{k}: {got[k]} != {expected[k]}" for k in sorted(wrong)[:5]))
        raise WeightsError(f"{source}: tensors do not fit the model ({'; '.join(parts)})")
