"""Models, health, readiness, metrics and the admin reload."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from causalcast.serving.schemas import Health, ModelsResponse
from causalcast.serving.security import require_api_key

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health)
async def healthz() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request, response: Response) -> dict:
    """Readiness: option networks loaded, and forecasting models unless none are promoted."""
    hub = request.app.state.hub
    if not request.app.state.options_ready:
        response.status_code = 503
        return {"status": "loading", "detail": "option networks not loaded"}
    if hub is not None and hub.state.error:
        response.status_code = 503
        return {"status": "degraded", "detail": hub.state.error}
    return {"status": "ok", "detail": f"{len(hub.state.models) if hub else 0} models"}


@router.get("/v1/models", response_model=ModelsResponse,
            dependencies=[Depends(require_api_key)])
async def models(request: Request) -> dict:
    hub = request.app.state.hub
    rows = []
    if hub is not None:
        for symbol, served_models in sorted(hub.state.by_symbol.items()):
            for rank, served in enumerate(served_models):
                rows.append({"symbol": symbol, "model": served.name, "version": served.version,
                             "stage": "production" if rank else "production (default)",
                             "as_of": served.as_of.get(symbol)})
    return {"models": rows, "options": request.app.state.options_versions}


@router.get("/metrics", dependencies=[Depends(require_api_key)])
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


@router.post("/v1/admin/reload", dependencies=[Depends(require_api_key)])
async def reload(request: Request) -> dict:
    hub = request.app.state.hub
    if hub is None:
        raise HTTPException(404, "no model registry configured")
    from fastapi.concurrency import run_in_threadpool

    try:
        state = await run_in_threadpool(hub.reload)
    except Exception as exc:  # the old models keep serving
        raise HTTPException(500, f"reload failed, previous models still served: {exc}") from exc
    return {"reloaded": True, "models": [m.version for m in state.models]}
