"""The FastAPI application: assembled here, routes in routes_*.py, work in hub.py and
causalcast.options. Everything expensive happens at start-up (or on reload), never per request."""

from __future__ import annotations

import gc
import logging
import math
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from causalcast import __version__
from causalcast.options.pricer import load_models as load_option_networks
from causalcast.options.pricer import price_options
from causalcast.serving import routes_admin, routes_analytics, routes_forecast, routes_options
from causalcast.serving.config import ServeConfig
from causalcast.serving.fastpath import FastPath
from causalcast.serving.hub import ModelHub
from causalcast.serving.middleware import BodyLimit, Metrics, Telemetry

log = logging.getLogger(__name__)


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: echo such rejected inputs back as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each field at fault (the default handler cannot encode a NaN it rejects)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "url"} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(
        errors, custom_encoder={float: lambda f: f if math.isfinite(f) else str(f)}))})


def create_app(config: ServeConfig | None = None) -> FastAPI:
    config = config or ServeConfig()
    metrics = Metrics()
    has_registry = (Path(config.home) / "registry" / "registry.db").exists()
    hub = ModelHub(config.home, data_source=config.data_source, cache_items=config.cache_items,
                   max_batch=config.max_batch, metrics=metrics) if has_registry else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        torch.set_num_threads(1)   # one core for the event loop, one for forward passes
        networks = load_option_networks()
        # Compile the European network into its table (~0.4 s) and price one option so the
        # numba kernel is compiled (or loaded from its on-disk cache) before the first request.
        networks.european_jet.tabulate()
        price_options(100.0, 100.0, 0.5, 0.2, kind="both", models=networks)
        app.state.options_versions = dict(networks.sha256)
        app.state.options_ready = True
        if hub is not None:
            try:
                hub.reload()
            except Exception:  # readyz reports it; options keep working
                log.exception("could not load promoted models")
            if config.poll_seconds > 0:
                hub.watch(config.poll_seconds)
        # Everything loaded so far lives as long as the process: move it out of the garbage
        # collector's generations, so full collections under load stay short.
        gc.collect()
        gc.freeze()
        # A 1000-option request of rows creates ~2000 short-lived container objects; with the
        # default gen-0 threshold (700) the collector ran several times per request and the
        # older generations' passes put 50-100 ms into 1 % of requests (in-process p99 60 ms
        # -> 4.9 ms with this setting; max 117 -> 17 ms). Garbage here is acyclic and freed by
        # reference counting anyway; the collector only has to find the rare cycle.
        gc.set_threshold(100_000, 50, 100)
        yield
        if hub is not None:
            hub.close()

    app = FastAPI(title="causalcast", version=__version__, lifespan=lifespan,
                  description="Forecasts, option prices, Greeks and probabilities.")
    app.state.config = config
    app.state.metrics = metrics
    app.state.hub = hub
    app.state.options_ready = False
    app.state.fastpath_hits = 0
    app.state.options_versions = {}
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(routes_admin.router)
    app.include_router(routes_forecast.router)
    app.include_router(routes_options.router)
    app.include_router(routes_analytics.router)
    app.add_middleware(FastPath, state=app.state)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(Telemetry, metrics=metrics)
    return app


CONFIG_ENV = "CAUSALCAST_SERVE_CONFIG"


def app_from_env() -> FastAPI:
    """Factory for multi-process serving (`causalcast serve --workers N`): each worker process
    builds its own app from the JSON config the parent put in the environment."""
    import json
    import os

    raw = json.loads(os.environ[CONFIG_ENV])
    raw["home"] = Path(raw["home"])
    return create_app(ServeConfig(**raw))
