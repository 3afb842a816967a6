"""The dashboard: HTML pages, their static assets and the small JSON endpoints they read, all
served by `causalcast serve` itself, plus `/docs` and `/redoc` from local copies of Swagger UI
and ReDoc (no CDN: the service works on a machine without internet).

The pages are thin clients of the JSON API: every number they show comes from an endpoint
anyone can call, behind the same API key. `install(app)` is the one entry point."""

from __future__ import annotations

from fastapi import FastAPI

from causalcast.serving.web import api, pages


def install(app: FastAPI) -> None:
    """Add the dashboard, its JSON endpoints and the offline API docs to `app`, replacing
    FastAPI's default `/docs` and `/redoc` (which load their scripts from a CDN)."""
    cdn_docs = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.router.routes[:] = [r for r in app.router.routes
                            if getattr(r, "path", None) not in cdn_docs]
    app.include_router(pages.router)
    app.include_router(api.router)
