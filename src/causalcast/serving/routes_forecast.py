"""Forecast routes: one symbol or a batch, from the service's bars or from bars in the request.
Thin: the hub does the work (snapshot, cache, micro-batched forward pass)."""

from __future__ import annotations

import asyncio

import orjson
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request, Response

from causalcast.data.quality import DataValidationError, validate_ohlcv
from causalcast.serving.hub import ModelHub
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


async def _one(hub: ModelHub, req: ForecastRequest, where: list) -> dict:
    bars = _bars_frame(req, where)
    try:
        return await hub.forecast(req.symbol, bars, req.model)
    except UnknownSymbol as exc:
        raise HTTPException(404, f"symbol {req.symbol!r}: no promoted model serves it") from exc
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


@router.post("", response_model=ForecastResponse)
async def forecast(req: ForecastRequest, request: Request) -> Response:
    return _json(await _one(_hub(request), req, ["body"]))


@router.post("/batch", response_model=ForecastBatchResponse)
async def forecast_batch(req: ForecastBatchRequest, request: Request) -> Response:
    hub = _hub(request)
    results = await asyncio.gather(*(_one(hub, r, ["body", "requests", i])
                                     for i, r in enumerate(req.requests)))
    return _json({"results": results})
