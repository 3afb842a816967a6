"""Apache Arrow IPC stream bodies: the binary bulk format for routes that take and return
columns of numbers (option pricing now, implied volatilities next).

Why: for 1000 options JSON, not pricing, was the cost (parsing a thousand objects and
printing six thousand floats as text). An Arrow stream is the columns' bytes plus a small
schema, so decoding and encoding cost microseconds per column.

A request is one Arrow IPC *stream* (`Content-Type: application/vnd.apache.arrow.stream`)
holding one table whose columns are the route's fields, one row per item. Request-wide
parameters (for option pricing: ``method``, ``greeks``) travel as the schema's key-value
metadata, as UTF-8 text ("true"/"false" for booleans); other metadata keys (pandas writes its
own) are ignored. The decoded columns are validated by the same pydantic model as the JSON
body, so the same errors come back — always as JSON (`application/json`), with locations in
the JSON columns form: ``["body", "columns", field, row]``.

A response in Arrow is sent when the request's ``Accept`` names the Arrow stream type; it is
one table with a column per result field (price, delta, ...) in request order and the
parameters used in the schema metadata.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

ARROW_STREAM = "application/vnd.apache.arrow.stream"
BOOLEANS = {"true": True, "false": False}


class ArrowBodyError(ValueError):
    """The body is not a readable Arrow IPC stream of one table."""


def _media_types(header: bytes | str | None) -> list[str]:
    if not header:
        return []
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    return [part.split(";")[0].strip().lower() for part in text.split(",")]


def is_arrow(content_type: bytes | str | None) -> bool:
    """Whether a Content-Type header says the body is an Arrow stream."""
    return ARROW_STREAM in _media_types(content_type)


def accepts_arrow(accept: bytes | str | None) -> bool:
    """Whether an Accept header asks for an Arrow stream (explicitly: */* means JSON)."""
    return ARROW_STREAM in _media_types(accept)


def read_table(body: bytes) -> pa.Table:
    """The one table of an IPC stream; `ArrowBodyError` for anything else."""
    try:
        with pa.ipc.open_stream(pa.py_buffer(body)) as reader:
            table = reader.read_all()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ArrowBodyError("body: not an Apache Arrow IPC stream "
                             f"({ARROW_STREAM})") from exc
    names = table.column_names
    if len(set(names)) != len(names):
        raise ArrowBodyError("body: the table has duplicate column names")
    return table


def parameters_of(table: pa.Table, parameters: tuple[str, ...]) -> dict[str, Any]:
    """Request parameters from the schema metadata ("true"/"false" become booleans)."""
    metadata = table.schema.metadata or {}
    params: dict[str, Any] = {}
    for key in parameters:
        raw = metadata.get(key.encode())
        if raw is not None:
            text = raw.decode("utf-8", "replace")
            params[key] = BOOLEANS.get(text.strip().lower(), text)
    return params


def decode(body: bytes, parameters: tuple[str, ...] = ()) -> tuple[dict[str, list[Any]],
                                                                  dict[str, Any]]:
    """(columns as Python lists, request parameters from the schema metadata).

    Values come back as Python objects (floats, ints, strings, booleans, None) so that the
    route's pydantic model judges them exactly as it judges JSON: a boolean or string column
    where numbers belong is refused, as is a null."""
    table = read_table(body)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    return columns, parameters_of(table, parameters)


def encode(columns: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """One table, one column per entry (float64 arrays stay float64), as an IPC stream of one
    record batch (built straight from the arrays: a third of the cost of going through a
    `pa.Table`, about 60 against 170 µs for 1000 options with Greeks)."""
    batch = pa.RecordBatch.from_arrays([pa.array(np.asarray(v)) for v in columns.values()],
                                       names=list(columns), metadata=metadata or None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()
