"""Fast paths for the requests that carry the load, answered without FastAPI's routing,
dependency injection and JSON handling:

* ``POST /v1/forecast`` with only a symbol (and optionally a model name), answered from the hub
  (about 0.3 ms of a 2-core budget per request);
* ``POST /v1/options/price`` and ``/v1/options/price/columns``, validated by pydantic
  straight from the JSON bytes (`model_validate_json`, in Rust) instead of ``json.loads`` plus
  validation of a thousand Python dicts — about 2 ms of a 1000-option request — and priced in
  the event loop: each worker owns one core, so a thread hop would only add latency.

Option pricing in Apache Arrow (`serving/arrow_codec.py`) is answered here in full: an Arrow
request body (``Content-Type: application/vnd.apache.arrow.stream``) is decoded, validated by
the same request model as JSON columns and priced, and its errors are worded as the JSON
route's; an ``Accept`` naming the Arrow type gets the result as an Arrow table (for JSON
bodies too).

For JSON, each handles only requests whose outcome it can decide exactly as the full route
would: the
right API key when one is configured; for forecasts a JSON object with keys from {symbol,
model}, a non-empty symbol of at most 32 characters, a model name of at most 64 characters or
null, and a symbol the hub serves; for options a body the request model accepts and options
that can all be priced. Anything else — bars in the body, an unknown symbol, a bad key,
malformed JSON, an option outside the trained domain — is replayed unchanged to the full
FastAPI route, which produces the response (and the error message) for it.
tests/serving/test_serving.py checks that both paths give identical bodies.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson

from causalcast.serving import arrow_codec
from causalcast.serving.arrow_codec import ARROW_STREAM, accepts_arrow, is_arrow
from causalcast.serving.middleware import ASGIApp, Message, Receive, Scope, Send
from causalcast.serving.options_arrow import price_arrow
from causalcast.serving.routes_options import (
    encode_columns,
    encode_prices,
    price_columns,
    price_request,
)
from causalcast.serving.schemas import OptionsColumnsRequest, OptionsPriceRequest

FORECAST = "/v1/forecast"
OPTIONS_PRICE = "/v1/options/price"
OPTIONS_COLUMNS = "/v1/options/price/columns"
ALLOWED_KEYS = frozenset({"symbol", "model"})


JSON = b"application/json"
ARROW = ARROW_STREAM.encode()
Reply = tuple[int, bytes, bytes]   # status, content type, body


class FastPath:
    def __init__(self, app: ASGIApp, state: Any):
        self.app = app
        self.state = state   # the FastAPI app.state (config, hub)
        self.handlers = {
            FORECAST: self._forecast,
            OPTIONS_PRICE: _options(OptionsPriceRequest, price_request, encode_prices),
            OPTIONS_COLUMNS: _options(OptionsColumnsRequest, price_columns, encode_columns)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope.get("path", "")) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":   # client went away
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = dict(scope.get("headers", []))
        reply = await handler(body, headers) if self._authorised(headers) else None
        if reply is None:
            await self.app(scope, _replay(body, receive), send)
            return
        status, content_type, payload = reply
        scope["causalcast.route"] = scope["path"]
        self.state.fastpath_hits += 1
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    async def _forecast(self, body: bytes, headers: dict[bytes, bytes]) -> Reply | None:
        hub = self.state.hub
        if hub is None:
            return None
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(request, dict) or not request.keys() <= ALLOWED_KEYS:
            return None
        symbol, model = request.get("symbol"), request.get("model")
        if not isinstance(symbol, str) or not 1 <= len(symbol) <= 32:
            return None
        if model is not None and (not isinstance(model, str) or len(model) > 64):
            return None
        try:   # an unknown symbol or model raises before the cache or the metrics are touched
            return 200, JSON, orjson.dumps(await hub.forecast(symbol, None, model))
        except Exception:
            return None

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        expected: str | None = self.state.config.api_key
        if not expected:
            return True
        return hmac.compare_digest(headers.get(b"x-api-key", b""), expected.encode())


def _options(model: Any, price: Any, encode: Any) -> Any:
    """A handler for an option-pricing route: the route's own request model, pricing and
    encoding functions, without FastAPI around them; Arrow in and out (see the module)."""
    async def handle(body: bytes, headers: dict[bytes, bytes]) -> Reply | None:
        arrow_out = accepts_arrow(headers.get(b"accept"))
        if is_arrow(headers.get(b"content-type")):
            return price_arrow(body, arrow_out)
        try:
            request = model.model_validate_json(body)
            values = price(request)
        except Exception:   # invalid or unpriceable: the full route words the error
            return None
        if arrow_out:
            return 200, ARROW, arrow_codec.encode(values, {"method": request.method})
        return 200, JSON, encode(request.method, values)
    return handle


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay
