"""The dashboard: HTML pages, their static assets and the small JSON endpoints they read, all
served by `causalcast serve` itself, plus `/docs` and `/redoc` from local copies of Swagger UI
and ReDoc (no CDN: the service works on a machine without internet).

The pages are thin clients of the JSON API: every number they show comes from an endpoint
anyone can call, behind the same API key. `install(app)` is the one entry point."""

from __future__ import annotations

from fastapi import FastAPI

from causalcast.serving.web import api, pages


def install(app: FastAPI, *, docs: str = "open") -> None:
    """Add the dashboard, its JSON endpoints and the offline API docs to `app`. ``docs`` is
    the service's docs setting: ``open``, ``key`` (docs and schema behind the API key) or
    ``off`` (no /docs, /redoc or /openapi.json). Create the app with FastAPI's own docs
    routes switched off (``docs_url=None, redoc_url=None, openapi_url=None``)."""
    app.include_router(pages.router)
    app.include_router(api.router)
    if docs != "off":
        app.include_router(pages.docs_router(app, behind_key=docs == "key"))
