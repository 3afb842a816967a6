"""HTML pages (one shell, one script per page), static assets and the offline API docs.

The pages hold no data, so they are served without the API key; the data they fetch comes
from the JSON API, which asks for the key when one is configured (the page then asks for it
and keeps it in the tab's sessionStorage)."""

from __future__ import annotations

import html
import mimetypes
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

STATIC = Path(__file__).parent / "static"
ASSETS = "/ui/static"

# path -> (page id, title); the order is the navigation's.
PAGES: dict[str, tuple[str, str]] = {
    "/": ("overview", "Overview"),
    "/ui/symbol": ("symbol", "Symbol"),
    "/ui/options": ("options", "Options"),
    "/ui/models": ("models", "Models"),
    "/ui/runs": ("runs", "Runs"),
    "/ui/evaluation": ("evaluation", "Evaluation"),
}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def _shell() -> str:
    return (STATIC / "shell.html").read_text(encoding="utf-8")


def render_page(path: str) -> str:
    page, title = PAGES[path]
    current = ' aria-current="page"'
    nav = "".join(f'<a href="{href}"{current if href == path else ""}>{label}</a>'
                  for href, (_, label) in PAGES.items())
    return (_shell().replace("{{title}}", html.escape(title)).replace("{{page}}", page)
            .replace("{{nav}}", nav).replace("{{assets}}", ASSETS))


def _page_route(path: str) -> None:
    async def page() -> HTMLResponse:
        return HTMLResponse(render_page(path), headers={"cache-control": "no-cache"})

    page.__name__ = f"page_{PAGES[path][0]}"
    router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)


for _path in PAGES:
    _page_route(_path)


@router.get(ASSETS + "/{name:path}")
async def static_asset(name: str) -> FileResponse:
    """Files of the package's static folder only (no `..`, no absolute paths)."""
    target = (STATIC / name).resolve()
    if STATIC.resolve() not in target.parents or not target.is_file():
        raise HTTPException(404, f"no asset {name!r}")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return FileResponse(target, media_type=media_type,
                        headers={"cache-control": "public, max-age=3600"})


def docs_router(app: FastAPI, *, behind_key: bool) -> APIRouter:
    """/openapi.json, /docs and /redoc, the two pages built from the package's own copies of
    Swagger UI and ReDoc (FastAPI's defaults load them from a CDN). ``behind_key`` (the
    ``docs="key"`` setting) puts all three behind the API key: a browser does not send the
    header by itself, so that mode is for clients and tools that do."""
    from causalcast.serving.security import require_api_key

    docs = APIRouter(include_in_schema=False,
                     dependencies=[Depends(require_api_key)] if behind_key else [])

    @docs.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @docs.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="causalcast - API",
            swagger_js_url=f"{ASSETS}/vendor/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/vendor/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.svg",
            # the validator badge would fetch from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None})

    @docs.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="causalcast - API",
                              redoc_js_url=f"{ASSETS}/vendor/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/favicon.svg",
                              with_google_fonts=False)

    return docs
