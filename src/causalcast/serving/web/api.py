"""JSON endpoints the dashboard reads (and anyone may call): registry versions with their
evidence, stage history, promotion and rollback through the gates, training runs with their
jobs, the walk-forward report's numbers and a symbol's recent closes.

All behind the API key when one is configured; promotion and rollback change state, so they
are never open. The registry is opened per request (SQLite, a few milliseconds) so that what
is shown is what is recorded now, not what the serving snapshot loaded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from causalcast.registry import (
    STAGES,
    GateRefused,
    ModelVersion,
    NotFoundError,
    Registry,
    RegistryError,
)
from causalcast.serving.security import require_api_key

router = APIRouter(tags=["dashboard"], dependencies=[Depends(require_api_key)])

MAX_BARS_SHOWN = 2_000
MAX_ID = 2**53          # SQLite integers are 64-bit; beyond this no version exists anyway


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version_id: int = Field(ge=1, le=MAX_ID, description="The version to move (registry id)")
    stage: str = Field("production", description=f"Target stage: {', '.join(STAGES)}")
    reason: str = Field("", max_length=500, description="Why (recorded in the stage history)")
    by: str = Field("dashboard", min_length=1, max_length=100, description="Who (recorded)")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="Model name to roll back")
    reason: str = Field("", max_length=500)
    by: str = Field("dashboard", min_length=1, max_length=100)


def _home(request: Request) -> Path:
    return Path(request.app.state.config.home)


@contextmanager
def _registry(request: Request) -> Iterator[Registry]:
    home = _home(request)
    if not (home / "registry" / "registry.db").exists():
        raise HTTPException(404, f"no model registry under {home}")
    registry = Registry.open(home, create=False)
    try:
        yield registry
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    finally:
        registry.close()


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
                    media_type="application/json")


def version_dict(v: ModelVersion, reg: Registry) -> dict[str, Any]:
    """The version's record, with (given the registry) its latest attached evaluation: the
    main job registers each final fit once and attaches its walk-forward evidence afterwards,
    so ``metrics`` alone would show a production model without its evidence. The pages read
    ``{**metrics, **evaluation}``, as the promotion gates and the forecasts' evidence do."""
    record = reg.evaluation_record(v.version_id)
    return {"ref": v.ref, **asdict(v),
            "evaluation": None if record is None else record.evaluation,
            "evaluated_at": None if record is None else record.created_at}


# ------------------------------------------------------------------ registry


@router.get("/v1/registry/versions")
async def list_versions(request: Request, name: str | None = None,
                        stage: str | None = None) -> Response:
    """Every version (newest last) with its metrics, lineage and stage."""
    def work() -> list[dict[str, Any]]:
        with _registry(request) as reg:
            try:
                return [version_dict(v, reg) for v in reg.versions(name, stage)]
            except RegistryError as exc:
                raise HTTPException(422, str(exc)) from exc
    return _json({"versions": await run_in_threadpool(work)})


@router.get("/v1/registry/versions/{version_id}")
async def show_version(request: Request,
                       version_id: int = PathParam(ge=1, le=MAX_ID)) -> Response:
    """One version, its stage history and what the promotion gates would say now."""
    def work() -> dict[str, Any]:
        with _registry(request) as reg:
            v = reg.get_version(version_id)
            history = [asdict(e) for e in reg.history(v.name) if e.version_id == v.version_id]
            gates = [g.to_dict() for g in reg.check_gates(v.version_id)]
            return {**version_dict(v, reg), "history": history, "gates": gates}
    return _json(await run_in_threadpool(work))


@router.get("/v1/registry/history")
async def history(request: Request, name: str | None = None) -> Response:
    def work() -> list[dict[str, Any]]:
        with _registry(request) as reg:
            return [asdict(e) for e in reg.history(name)]
    return _json({"history": await run_in_threadpool(work)})


@router.post("/v1/registry/promote", responses={409: {"description": "a gate refused"}})
async def promote(request: Request, body: PromoteRequest) -> Response:
    """Move a version to a stage; to production only if every default gate passes. A refusal
    answers 409 with every gate's verdict and changes nothing."""
    def work() -> dict[str, Any]:
        with _registry(request) as reg:
            try:
                result = reg.promote(body.version_id, stage=body.stage, by=body.by,
                                     reason=body.reason)
            except GateRefused as refused:
                raise HTTPException(409, {"error": str(refused),
                                          "gates": [r.to_dict() for r in refused.results]}
                                    ) from refused
            except NotFoundError:
                raise
            except RegistryError as exc:
                raise HTTPException(422, str(exc)) from exc
            return {"promoted": True, "version": version_dict(result.version, reg),
                    "gates": [r.to_dict() for r in result.gates]}
    return _json(await run_in_threadpool(work))


@router.post("/v1/registry/rollback", responses={409: {"description": "nothing to restore"}})
async def rollback(request: Request, body: RollbackRequest) -> Response:
    """Archive the production version of `name` and restore the one it replaced."""
    def work() -> dict[str, Any]:
        with _registry(request) as reg:
            try:
                restored = reg.rollback(body.name, by=body.by, reason=body.reason)
            except NotFoundError:
                raise
            except RegistryError as exc:
                raise HTTPException(409, str(exc)) from exc
            return {"restored": version_dict(restored, reg)}
    return _json(await run_in_threadpool(work))


@router.get("/v1/registry/runs")
async def runs(request: Request) -> Response:
    """Training runs, newest first, with job counts per status."""
    def work() -> list[dict[str, Any]]:
        with _registry(request) as reg:
            rows = [{**asdict(r), "jobs": reg.progress(r.run_id)} for r in reg.runs()]
        return sorted(rows, key=lambda r: r["created_at"], reverse=True)
    return _json({"runs": await run_in_threadpool(work)})


@router.get("/v1/registry/runs/{run_id}")
async def run_detail(request: Request, run_id: str) -> Response:
    """One run's jobs with their progress, errors and tracebacks."""
    def work() -> dict[str, Any]:
        with _registry(request) as reg:
            info = reg.get_run(run_id)
            jobs = [asdict(j) for j in reg.jobs(run_id)]
            return {**asdict(info), "progress": reg.progress(run_id), "jobs": jobs}
    return _json(await run_in_threadpool(work))


# ------------------------------------------------------------------ evaluation and data


@router.get("/v1/evaluation/report")
async def evaluation_report(request: Request) -> Response:
    """The walk-forward report's numbers (`report.json` beside `report.html` in the home
    folder, written by `causalcast run` / `causalcast report`), always as a list of results."""
    path = _home(request) / "report.json"
    if not path.is_file():
        raise HTTPException(404, f"no evaluation report at {path} (run `causalcast run`)")
    raw = await run_in_threadpool(path.read_bytes)
    items = json.loads(raw)
    return _json({"results": items if isinstance(items, list) else [items]})


@router.get("/v1/symbols/{symbol}/bars")
async def symbol_bars(request: Request, symbol: str,
                      n: int = Query(260, ge=2, le=MAX_BARS_SHOWN)) -> Response:
    """The last `n` closes the service forecasts `symbol` from (its serving data source)."""
    hub = request.app.state.hub
    if hub is None:
        raise HTTPException(503, "no forecasting models loaded")
    served = hub.state.by_symbol.get(symbol.upper())
    if not served:
        raise HTTPException(404, f"symbol {symbol!r}: no promoted model serves it")
    model = served[0]
    key_symbol = next(s for s in model.windows if s.upper() == symbol.upper())
    source = request.app.state.config.data_source or model.bundle.meta.get("data")
    dates, close = await run_in_threadpool(_closes, source, key_symbol,
                                           model.as_of.get(key_symbol))
    return _json({"symbol": key_symbol, "source": source, "dates": list(dates[-n:]),
                  "close": list(close[-n:])})


@lru_cache(maxsize=64)
def _closes(source: str, symbol: str, as_of: str | None) -> tuple[tuple[str, ...],
                                                                  tuple[float, ...]]:
    """A symbol's closes from its data source, loaded once per (source, symbol, last bar
    served): the serving snapshot's as-of changes when new data is loaded, and so the key."""
    from causalcast.data.resolve import resolve_source

    frames, _ = resolve_source(source, [symbol])
    frame = frames[symbol].iloc[-MAX_BARS_SHOWN:]
    return (tuple(d.isoformat() for d in frame.index),
            tuple(frame["close"].astype(float).tolist()))
