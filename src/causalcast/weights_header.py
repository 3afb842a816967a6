"""The safetensors header of a causalcast weights file, read and checked without torch.

A weights file (see `causalcast.weights`) is an 8-byte little-endian header length, a JSON
header (tensor names, dtypes, shapes, byte ranges, and ``__metadata__`` with the format and
the config JSON), then the tensor bytes. `check_weights_header` proves everything the loader
relies on before any tensor is built, so the registry can refuse to promote an artifact that
cannot be loaded, and `registry recover` can read a version's config from its artifact, both
without importing torch.
"""

from __future__ import annotations

import json
import math
from typing import Any

FORMAT = "causalcast-weights-v1"
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
             "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
_MAX_HEADER = 100_000_000


class WeightsError(ValueError):
    """Corrupt, truncated or mismatched weights."""


def read_header(data: bytes) -> tuple[int, dict[str, Any]]:
    """(length, parsed JSON) of a safetensors file's header."""
    n = int.from_bytes(data[:8], "little")
    return n, json.loads(data[8:8 + n])


def check_weights_header(data: bytes, source: str = "weights") -> dict[str, Any]:
    """The embedded config of a well-formed causalcast weights file; `WeightsError` naming
    ``source`` and the defect otherwise (too short, header out of bounds or not JSON, unknown
    dtype, a tensor's byte range not matching its shape or not covering the data, wrong
    format, config not a JSON object)."""
    if len(data) < 8:
        raise WeightsError(f"{source}: {len(data)} bytes, too short for a safetensors file")
    n = int.from_bytes(data[:8], "little")
    if not 2 <= n <= min(len(data) - 8, _MAX_HEADER):
        raise WeightsError(f"{source}: safetensors header length {n} does not fit the "
                           f"{len(data)}-byte file (truncated or not a weights file)")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, ValueError):
        raise WeightsError(f"{source}: safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{source}: safetensors header is not a JSON object")
    body = len(data) - 8 - n
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, stop) = entry["dtype"], entry["shape"], entry["data_offsets"]
            size = _ITEMSIZE[dtype] * math.prod(int(d) for d in shape)
        except (KeyError, TypeError, ValueError):
            raise WeightsError(f"{source}: tensor {name!r} has a malformed header entry "
                               f"{entry!r}") from None
        if not 0 <= start <= stop <= body or stop - start != size:
            raise WeightsError(f"{source}: tensor {name!r} bytes {start}..{stop} do not match "
                               f"its shape {shape} {dtype} within {body} data bytes")
        end = max(end, stop)
    if end != body:
        raise WeightsError(f"{source}: {body} data bytes but the tensors cover {end}")
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{source}: format {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        config = json.loads(meta.get("config", "{}"))
    except ValueError:
        raise WeightsError(f"{source}: embedded config is not valid JSON") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{source}: embedded config is not a JSON object")
    return config
