"""Forecast routes: one symbol or a batch, from the service's bars or from bars in the request.
Thin: the hub does the work (snapshot, cache, micro-batched forward pass)."""

from __future__ import annotations

import asyncio

import orjson
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from causalcast.data.quality import DataValidationError, validate_ohlcv
from causalcast.serving.body import body_doc, parse_body
from causalcast.serving.hub import ModelHub, Prepared
from causalcast.serving.loading import UnknownSymbol
from causalcast.serving.schemas import (
    ForecastBatchRequest,
    ForecastBatchResponse,
    ForecastRequest,
    ForecastResponse,
)
from causalcast.serving.security import require_api_key

router = APIRouter(prefix="/v1/forecast", tags=["forecast"],
                   dependencies=[Depends(require_api_key)])


def _bars_frame(req: ForecastRequest, where: list) -> pd.DataFrame | None:
    if req.bars is None:
        return None
    frame = pd.DataFrame([b.model_dump() for b in req.bars]).set_index("date")
    frame.index = pd.DatetimeIndex(frame.index).tz_localize(None).as_unit("ns")
    try:
        frame, _ = validate_ohlcv(frame, "bars")
    except DataValidationError as exc:
        raise HTTPException(422, [{"loc": [*where, "bars"], "msg": str(exc),
                                   "type": "value_error"}]) from exc
    return frame


def _prepare(hub: ModelHub, req: ForecastRequest, where: list) -> Prepared:
    """Bars to frame, features and window: CPU work, run in a worker thread."""
    bars = _bars_frame(req, where)
    try:
        return hub.prepare(req.symbol, bars, req.model)
    except UnknownSymbol as exc:
        raise HTTPException(404, f"symbol {req.symbol!r}: no promoted model serves it, and "
                            "no production global model with a pooled scaler has bars for "
                            "it (send recent bars, or add it to the store)") from exc
    except ValueError as exc:   # too few bars for the lookback and warm-up, etc.
        raise HTTPException(422, [{"loc": [*where, "bars"], "msg": str(exc),
                                   "type": "value_error"}]) from exc


def _hub(request: Request) -> ModelHub:
    hub: ModelHub | None = request.app.state.hub
    if hub is None:
        raise HTTPException(503, "no forecasting models loaded")
    return hub


def _json(payload: dict) -> Response:
    """Responses are built by the hub from floats it controls; serialise them directly rather
    than re-validating against the response model (which still documents the schema)."""
    return Response(orjson.dumps(payload), media_type="application/json")


@router.post("", response_model=ForecastResponse, openapi_extra=body_doc(ForecastRequest))
async def forecast(request: Request) -> Response:
    """One symbol's forecast, from the service's bars or from bars in the request. Only a
    precomputed window is answered on the event loop; request bars, or a symbol read from the
    store, cost features (and I/O) and run in a worker thread."""
    req = await parse_body(request, ForecastRequest)
    hub = _hub(request)
    if req.bars is None and req.symbol.upper() in hub.state.by_symbol:   # precomputed window
        prepared = _prepare(hub, req, ["body"])
    else:
        prepared = await run_in_threadpool(_prepare, hub, req, ["body"])
    return _json(await hub.answer(prepared))


@router.post("/batch", response_model=ForecastBatchResponse,
             openapi_extra=body_doc(ForecastBatchRequest))
async def forecast_batch(request: Request) -> Response:
    """Many forecasts in one request. Parsing, validation and features run in a worker
    thread, so a large batch does not hold up other requests; the forward passes are
    micro-batched like single requests."""
    req = await parse_body(request, ForecastBatchRequest)
    hub = _hub(request)
    prepared = await run_in_threadpool(
        lambda: [_prepare(hub, r, ["body", "requests", i]) for i, r in enumerate(req.requests)])
    results = await asyncio.gather(*(hub.answer(p) for p in prepared))
    return _json({"results": results})
