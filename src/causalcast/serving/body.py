"""Request bodies validated off the event loop, documented like FastAPI's own.

Why: FastAPI validates a body model on the event loop before the route runs, so a 1.8 MB
forecast batch (256 requests of bars) held the loop for most of a second and every other
request waited. Routes that can receive large bodies take the raw request instead and call
`parse_body`, which validates the bytes with the same pydantic model in a worker thread and
raises the same `RequestValidationError` (locations start with "body", as FastAPI's do).
`body_doc` and `add_body_schemas` keep such routes in the OpenAPI document.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

M = TypeVar("M", bound=BaseModel)
DOCUMENTED: list[type[BaseModel]] = []   # request models of routes that use parse_body


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: echo such rejected inputs back as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def error_json(errors: Any) -> bytes:
    """The body of a 422: ``{"detail": errors}``, whatever values the errors echo."""
    if isinstance(errors, list):
        errors = [{k: v for k, v in e.items() if k != "url"} if isinstance(e, dict) else e
                  for e in errors]
    # The standard library's encoder: errors echo inputs, which may be integers beyond 64 bits.
    return json.dumps({"detail": _finite(jsonable_encoder(errors))},
                      separators=(",", ":")).encode()


def body_errors(exc: ValidationError, prefix: tuple[Any, ...] = ("body",)) -> list[dict]:
    """Pydantic's errors in FastAPI's format (no URLs; the message already words the
    context). A body that is not JSON is not echoed back (it may be megabytes, or not even
    text)."""
    errors = []
    for error in exc.errors(include_url=False, include_context=False):
        error = {**error, "loc": (*prefix, *error["loc"])}
        if error["type"] == "json_invalid" or isinstance(error.get("input"), bytes):
            error.pop("input", None)
        errors.append(error)
    return errors


async def parse_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as ``model``, validated in a worker thread."""
    body = await request.body()
    try:
        return await run_in_threadpool(model.model_validate_json, body)
    except ValidationError as exc:
        raise RequestValidationError(body_errors(exc)) from None


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is ``model`` (validated by parse_body)."""
    DOCUMENTED.append(model)
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def add_body_schemas(app: FastAPI) -> None:
    """Generate the app's OpenAPI document with the schemas `body_doc` refers to."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        _, defs = models_json_schema([(m, "validation") for m in DOCUMENTED],
                                     ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
        app.openapi_schema = schema
        return schema
    app.openapi = openapi  # type: ignore[method-assign]
