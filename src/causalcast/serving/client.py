"""A small client for the service's bulk option pricing in Apache Arrow (standard library
HTTP, so it needs nothing beyond causalcast's own dependencies).

    from causalcast.serving.client import price_options_arrow
    result = price_options_arrow("http://127.0.0.1:8000",
                                 {"spot": spots, "strike": 100.0, "tau": taus, "sigma": 0.2,
                                  "kind": kinds}, greeks=True)
    result["price"], result["delta"]        # numpy arrays, in request order

`encode_options` and `decode_result` are the two halves for callers with their own HTTP
client (httpx, aiohttp, requests): POST the bytes with ``Content-Type`` and ``Accept`` set
to `ARROW_STREAM`. Errors come back as JSON and are raised as `ServiceError` with the
service's detail (which names the field and row at fault).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from causalcast.serving.arrow_codec import ARROW_STREAM

NUMBER_FIELDS = ("spot", "strike", "tau", "sigma", "rate", "div")


class ServiceError(RuntimeError):
    """The service refused a request; ``status`` and ``detail`` are its answer."""

    def __init__(self, status: int, detail: Any):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def encode_options(columns: Mapping[str, Any], method: str = "pinn",
                   greeks: bool = True) -> bytes:
    """An Arrow IPC stream of options: one column per field (spot, strike, tau, sigma, rate,
    div as numbers; kind 'call'/'put' and style 'european'/'american' as strings). A scalar
    applies to every option; at least one field must be an array."""
    lengths = {k: len(v) for k, v in columns.items() if np.ndim(v) == 1}
    if not lengths:
        raise ValueError("columns: at least one field must be an array of options")
    n = max(lengths.values())
    arrays = {}
    for name, value in columns.items():
        values = np.broadcast_to(np.asarray(value), (n,)) if np.ndim(value) == 0 else value
        arrays[name] = pa.array(np.asarray(values, dtype=np.float64)
                                if name in NUMBER_FIELDS else np.asarray(values).astype(str))
    table = pa.table(arrays, metadata={"method": method, "greeks": str(bool(greeks)).lower()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_result(body: bytes) -> dict[str, np.ndarray]:
    """The service's Arrow answer as numpy arrays (price, and delta gamma vega theta rho)."""
    with pa.ipc.open_stream(pa.py_buffer(body)) as reader:
        table = reader.read_all()
    return {name: table.column(name).to_numpy() for name in table.column_names}


def price_options_arrow(url: str, columns: Mapping[str, Any], method: str = "pinn",
                        greeks: bool = True, api_key: str | None = None,
                        timeout: float = 30.0) -> dict[str, np.ndarray]:
    """POST the options to ``url``/v1/options/price/columns in Arrow and return the arrays."""
    headers = {"Content-Type": ARROW_STREAM, "Accept": ARROW_STREAM}
    if api_key:
        headers["X-API-Key"] = api_key
    request = urllib.request.Request(url.rstrip("/") + "/v1/options/price/columns",
                                     data=encode_options(columns, method, greeks),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return decode_result(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            detail = json.loads(raw)["detail"]
        except (ValueError, KeyError, TypeError):
            detail = raw.decode("utf-8", "replace")
        raise ServiceError(exc.code, detail) from None
