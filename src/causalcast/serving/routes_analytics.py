"""Options-analytics routes: implied volatility (arrays or a chain), the SVI surface, and
strategies. Thin: validation in `schemas_analytics`, work in `causalcast.options.analytics`;
input the analytics refuse becomes a 422 naming the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool

from causalcast.options.analytics.units import json_safe
from causalcast.options.inputs import OptionInputError
from causalcast.serving.schemas_analytics import (
    ImpliedVolRequest,
    StrategyRequest,
    SurfaceRequest,
)
from causalcast.serving.security import require_api_key

router = APIRouter(prefix="/v1/options", tags=["options analytics"],
                   dependencies=[Depends(require_api_key)])


def _fail(field: str, exc: Exception) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", field], "msg": str(exc), "type": "value_error"}])


def _chain(rows: list[Any]) -> Any:
    from causalcast.options.analytics.chain import validate_chain

    return validate_chain(pd.DataFrame([r.model_dump() for r in rows]))


def _implied_vol(req: ImpliedVolRequest) -> dict[str, Any]:
    from causalcast.options.analytics.american_iv import american_iv
    from causalcast.options.analytics.iv import european_iv
    from causalcast.options.analytics.parity import implied_forwards

    if req.chain is not None:
        usable = _chain(req.chain).usable
        if usable.empty:
            raise ValueError("every quote of the chain is flagged")
        fwd = implied_forwards(usable, req.rate)
        cols = {"price": usable["mid"].to_numpy(), "spot": usable["spot"].to_numpy(),
                "strike": usable["strike"].to_numpy(), "tau": usable["tau"].to_numpy(),
                "rate": req.rate, "div": np.array([fwd[e].div for e in usable["expiry"]]),
                "kind": usable["type"].to_numpy()}
    else:
        q = req.quotes
        assert q is not None
        cols = {k: np.asarray(getattr(q, k)) for k in ("price", "spot", "strike", "tau", "rate",
                                                       "div", "kind")}
    args = [cols[k] for k in ("price", "spot", "strike", "tau", "rate", "div", "kind")]
    extra: dict[str, Any] = {}
    if req.style == "american":
        res = american_iv(*args, polish=req.polish)
        method = res.method.ravel().tolist()
        if req.polish:
            residual = res.fd_residual
            extra["fd_residual"] = ([None] * res.iv.size if residual is None
                                    else residual.ravel().tolist())
    else:
        res = european_iv(*args)
        method = ["closed-form inversion"] * res.iv.size
    units = {"implied_volatility": "per year, 0.2 = 20%"}
    if extra:
        units["fd_residual"] = "price units: FD price at the network σ minus the quote"
    return json_safe({"style": req.style, "implied_volatility": res.iv.ravel().tolist(),
                      "reason": [r or None for r in res.reason.ravel().tolist()],
                      "method": [m or None for m in method], **extra, "units": units})


@router.post("/implied-vol")
async def implied_vol(req: ImpliedVolRequest) -> dict[str, Any]:
    try:
        return await run_in_threadpool(_implied_vol, req)
    except (OptionInputError, ValueError) as exc:
        raise _fail("chain" if req.chain is not None else "quotes", exc) from exc


def _surface(req: SurfaceRequest) -> dict[str, Any]:
    from causalcast.options.analytics.surface import fit_surface

    surf = fit_surface(_chain(req.chain), req.rate, req.style)
    report = surf.report()
    if req.smile_points:
        for entry, fitted in zip(report["expiries"], surf.slices, strict=True):
            entry["smile"] = fitted.smile(req.smile_points)
        report["units"]["smile"] = ("strike and fit_strike in price; implied_volatility per "
                                    "year (0.2 = 20%)")
    return json_safe(report)


@router.post("/surface")
async def surface(req: SurfaceRequest) -> dict[str, Any]:
    try:
        return await run_in_threadpool(_surface, req)
    except (OptionInputError, ValueError) as exc:
        raise _fail("chain", exc) from exc


def _strategy(req: StrategyRequest) -> dict[str, Any]:
    from causalcast.options.analytics.legs import Leg
    from causalcast.options.analytics.strategy import Market, evaluate, standard_laws
    from causalcast.options.analytics.surface import fit_surface

    surf = fit_surface(_chain(req.chain), req.rate) if req.chain is not None else None
    spot = req.spot if req.spot is not None else surf.spot
    mk = Market(spot, req.rate, req.div, req.sigma, surf)
    legs = [Leg(**leg.model_dump()) for leg in req.legs]
    forecast = req.forecast.model_dump() if req.forecast is not None else None
    return evaluate(legs, mk, standard_laws(mk, req.sigma, forecast), req.target,
                    tuple(req.dates), req.greeks_units)


@router.post("/strategy")
async def strategy(req: StrategyRequest) -> dict[str, Any]:
    try:
        return await run_in_threadpool(_strategy, req)
    except (OptionInputError, ValueError) as exc:
        raise _fail("legs", exc) from exc
