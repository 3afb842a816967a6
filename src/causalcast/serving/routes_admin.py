"""Models, health, readiness, metrics and the admin reload."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from causalcast.serving.schemas import Health, Liveness, ModelsResponse, MonitorResponse
from causalcast.serving.security import require_api_key

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Liveness)
async def healthz() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


def _problems(request: Request) -> tuple[str, str, list[dict]]:
    """(status, detail, problems) of the forecasting models; public wording only."""
    hub = request.app.state.hub
    if hub is None:
        return "ok", "0 models", []
    state = hub.state
    problems = [p.as_dict() for p in state.problems]
    served = f"{len(state.models)} models served"
    if not state.degraded:
        return "ok", served + _monitoring(hub), problems
    parts = [f"{p.version} {p.status}: {p.reason}" for p in state.problems]
    if state.error:
        parts.insert(0, state.error)
    return "degraded", f"{served}; " + "; ".join(parts) + _monitoring(hub), problems


def _monitoring(hub) -> str:
    """Live monitoring verdicts that are not ok, for the readiness detail (fixed wording
    from causalcast.monitoring; the service stays ready: degraded versions keep serving)."""
    flagged = [f"{r['version']} {r['status']}: {'; '.join(r['reasons'][:2])}"
               for r in hub.monitor_reports.values() if r["status"] in ("watch", "degraded")]
    return ("; monitoring: " + " | ".join(flagged)) if flagged else ""


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request, response: Response) -> dict:
    """Readiness. 503 only while the option networks load; once they have, 200 with status
    ``ok`` or ``degraded``: some production version is not served (``failed``) or cannot be
    confirmed current because the registry could not be read (``stale``). Each problem names
    the version and the reason in fixed words (no paths: this route needs no key)."""
    if not request.app.state.options_ready:
        response.status_code = 503
        return {"status": "loading", "detail": "option networks not loaded"}
    status, detail, problems = _problems(request)
    return {"status": status, "detail": detail, "problems": problems}


@router.get("/v1/models", response_model=ModelsResponse,
            dependencies=[Depends(require_api_key)])
async def models(request: Request) -> dict:
    """The served versions per symbol, and the production versions not served (problems)."""
    hub = request.app.state.hub
    rows = []
    if hub is not None:
        for symbol, served_models in sorted(hub.state.by_symbol.items()):
            for rank, served in enumerate(served_models):
                report = hub.monitor_reports.get(served.version_id, {})
                rows.append({"symbol": symbol, "model": served.name, "version": served.version,
                             "stage": "production" if rank else "production (default)",
                             "as_of": served.as_of.get(symbol),
                             "monitor_status": report.get("status", "unknown"),
                             "monitor_reasons": report.get("reasons", [])})
    status, _, problems = _problems(request)
    return {"models": rows, "options": request.app.state.options_versions, "status": status,
            "problems": problems}


@router.get("/v1/monitor", response_model=MonitorResponse,
            dependencies=[Depends(require_api_key)])
async def monitor(request: Request) -> dict:
    """The live monitor's latest report per production version (what `causalcast monitor
    status --json` prints), as the service's last scoring pass left it."""
    from causalcast.registry.lineage import nonfinite_to_none

    hub = request.app.state.hub
    reports = [] if hub is None else list(hub.monitor_reports.values())
    return {"reports": nonfinite_to_none(sorted(reports, key=lambda r: r["version"])),
            "every_seconds": request.app.state.config.monitor_seconds}


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
    except Exception as exc:  # logged by reload; the served versions are flagged stale
        raise HTTPException(503, "registry could not be read; the versions served are "
                            "flagged stale (see /readyz)") from exc
    return {"reloaded": True, "models": [m.version for m in state.models],
            "problems": [p.as_dict() for p in state.problems]}
