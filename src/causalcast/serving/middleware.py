"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs ~0.3 ms per request on this CPU).

* `BodyLimit`: 413 for a body over the limit, by Content-Length or by counting a chunked body.
* `Telemetry`: Prometheus latency histogram and request/error counters per route template.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class BodyTooLarge(Exception):
    pass


async def _reply(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (b'{"detail":"request body larger than %d bytes"}' % self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await _reply(send, 413, message)
                    return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _reply(send, 413, message)


class Metrics:
    """The service's Prometheus collectors, in their own registry (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram("causalcast_request_seconds", "Request latency",
                                 ["route", "method"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.requests = Counter("causalcast_requests", "Requests", ["route", "method", "status"],
                                registry=self.registry)
        self.errors = Counter("causalcast_errors", "Responses with status >= 500",
                              ["route"], registry=self.registry)
        self.models = Gauge("causalcast_loaded_model", "Loaded model versions (1 = serving)",
                            ["symbol", "model", "version"], registry=self.registry)
        self.cache_hits = Counter("causalcast_forecast_cache_hits", "Forecast cache hits",
                                  registry=self.registry)
        self.batch_size = Histogram("causalcast_forward_batch_size", "Windows per forward pass",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                                    registry=self.registry)


class Telemetry:
    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, capture)
        finally:
            name = scope.get("causalcast.route") or getattr(scope.get("route"), "path", None) \
                or "unmatched"
            method = scope.get("method", "")
            self.metrics.latency.labels(name, method).observe(time.perf_counter() - start)
            self.metrics.requests.labels(name, method, str(status)).inc()
            if status >= 500:
                self.metrics.errors.labels(name).inc()
