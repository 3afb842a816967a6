"""The FastAPI application: assembled here, routes in routes_*.py, work in hub.py and
causalcast.options. Everything expensive happens at start-up (or on reload), never per request."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from causalcast import __version__
from causalcast.options.pricer import load_models as load_option_networks
from causalcast.options.pricer import price_options
from causalcast.registry.urls import as_home
from causalcast.serving import (
    routes_admin,
    routes_analytics,
    routes_chains,
    routes_forecast,
    routes_options,
    web,
)
from causalcast.serving.body import add_body_schemas, error_json
from causalcast.serving.config import ServeConfig
from causalcast.serving.fastpath import FastPath
from causalcast.serving.hub import ModelHub
from causalcast.serving.middleware import BodyLimit, Metrics, Telemetry

log = logging.getLogger(__name__)
GIL_SWITCH_S = 0.0005   # CPython's switch interval while the prediction log's writer runs


async def _validation_error(request: Request, exc: Exception) -> Response:
    """422 naming each field at fault (the default handler cannot encode a NaN it rejects)."""
    assert isinstance(exc, RequestValidationError)
    return Response(error_json(exc.errors()), status_code=422, media_type="application/json")


# Every route module's router; a new module (e.g. routes_analytics) adds its router here.
ROUTERS = (routes_admin.router, routes_forecast.router, routes_options.router,
           routes_analytics.router, routes_chains.router)


def registry_exists(home: Path) -> bool:
    """Whether ``home`` holds a registry (damaged or not: a damaged one is reported by the
    hub as degraded, never mistaken for 'no registry')."""
    from causalcast.registry import NotFoundError, Registry

    try:
        Registry.open(home, create=False).close()
    except NotFoundError:
        return False
    except Exception:
        log.warning("registry under %s could not be opened", home, exc_info=True)
    return True


def _prediction_log(config: ServeConfig):
    """The background writer of the prediction log (docs/monitoring.md), if enabled."""
    if not config.prediction_log:
        return None
    from causalcast.monitoring.predlog import PredictionLog

    # The log's writer thread drops and retakes the GIL around every row it hands to SQLite.
    # An event loop coming back from epoll while the writer holds the GIL waits on it, and
    # when the writer keeps winning the retake race that wait ends only at CPython's forced
    # switch — up to the switch interval, 5 ms by default, on a request's latency. 0.5 ms
    # bounds that wait; without a second busy thread the interval changes nothing.
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))
    return PredictionLog(config.home, flush_ms=config.log_flush_ms,
                         max_rows=config.log_batch_rows)


def create_app(config: ServeConfig | None = None) -> FastAPI:
    config = config or ServeConfig()
    metrics = Metrics()
    has_registry = registry_exists(config.home)
    hub = ModelHub(config.home, data_source=config.data_source, cache_items=config.cache_items,
                   max_batch=config.max_batch, metrics=metrics,
                   store=config.store,
                   prediction_log=_prediction_log(config)) if has_registry else None
    monitor = None

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
            # Per version: one that cannot load is reported, not fatal. Only an unreadable
            # registry raises here, and readyz then says degraded.
            with contextlib.suppress(Exception):
                hub.reload()
            if config.poll_seconds > 0:
                hub.watch(config.poll_seconds)
            if config.monitor_seconds > 0:
                from causalcast.monitoring.service_loop import ServiceMonitor

                nonlocal monitor
                monitor = ServiceMonitor(hub, config.monitor_seconds, metrics)
                monitor.start()
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
        if monitor is not None:
            monitor.close()
        if hub is not None:
            hub.close()   # flushes the prediction log: a SIGTERM loses no logged forecast

    app = FastAPI(title="causalcast", version=__version__, lifespan=lifespan,
                  description="Forecasts, option prices, Greeks and probabilities.",
                  docs_url=None, redoc_url=None, openapi_url=None)  # web.install serves them
    app.state.config = config
    app.state.metrics = metrics
    app.state.hub = hub
    app.state.options_ready = False
    app.state.fastpath_hits = 0
    app.state.options_versions = {}
    app.add_exception_handler(RequestValidationError, _validation_error)
    for router in ROUTERS:
        app.include_router(router)
    web.install(app, docs=config.docs)  # dashboard and offline /docs, /redoc, /openapi.json
    add_body_schemas(app)
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
    raw["home"] = as_home(raw["home"])
    return create_app(ServeConfig(**raw))
