"""Option routes: prices and Greeks for a batch, and probabilities. Thin: validation is in the
schemas, pricing in causalcast.options (one batched forward pass per style, calls and puts
together)."""

from __future__ import annotations

import numpy as np
import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from causalcast.options.inputs import TRAINED_DOMAIN, OptionInputError, as_inputs, domain_violations
from causalcast.options.pricer import price_options
from causalcast.options.probability import pinn_prob_above, risk_neutral_prob_above
from causalcast.serving.hub import UnknownSymbol
from causalcast.serving.schemas import (
    OptionsPriceRequest,
    OptionsPriceResponse,
    ProbabilityRequest,
    ProbabilityResponse,
)
from causalcast.serving.security import require_api_key

router = APIRouter(prefix="/v1/options", tags=["options"], dependencies=[Depends(require_api_key)])
FIELDS = ("spot", "strike", "tau", "sigma", "rate", "div")
DOMAIN_FIELD = {"moneyness": "spot", "tau": "tau", "sigma": "sigma", "rate": "rate",
                "div": "div"}


def _unprocessable(loc: list, message: str) -> HTTPException:
    return HTTPException(422, [{"loc": loc, "msg": message, "type": "value_error"}])


def _check_domain(columns: dict[str, np.ndarray], rows: np.ndarray) -> None:
    x = as_inputs(*(columns[f][rows] for f in FIELDS))
    for name, mask in domain_violations(x).items():
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            lo, hi = getattr(TRAINED_DOMAIN, name)
            value = float(getattr(x, name)[i])
            what = "spot/strike" if name == "moneyness" else name
            raise _unprocessable(
                ["body", "options", int(rows[i]), DOMAIN_FIELD[name]],
                f"{what} = {value:g} is outside the PINN's trained domain [{lo:g}, {hi:g}]; "
                "use method 'closed' for European options")


def _price(req: OptionsPriceRequest) -> dict[str, np.ndarray]:
    n = len(req.options)
    columns = {f: np.fromiter((getattr(o, f) for o in req.options), float, n) for f in FIELDS}
    is_call = np.fromiter((o.kind == "call" for o in req.options), bool, n)
    american = np.fromiter((o.style == "american" for o in req.options), bool, n)
    keys = ("price", "delta", "gamma", "vega", "theta", "rho") if req.greeks else ("price",)
    out = {k: np.full(n, np.nan) for k in keys}
    for style, mask in (("european", ~american), ("american", american)):
        rows = np.flatnonzero(mask)
        if not len(rows):
            continue
        method = req.method
        if style == "american" and method == "closed":
            raise _unprocessable(["body", "options", int(rows[0]), "style"],
                                 "american options have no closed form; use method 'pinn'")
        if method == "pinn":
            _check_domain(columns, rows)
        result = price_options(*(columns[f][rows] for f in FIELDS), kind=is_call[rows],
                               style=style, method=method, greeks=req.greeks)
        for k in keys:
            out[k][rows] = result[k]
    return out


@router.post("/price", response_model=OptionsPriceResponse)
async def price(req: OptionsPriceRequest) -> Response:
    try:
        values = await run_in_threadpool(_price, req)
    except OptionInputError as exc:
        raise _unprocessable(["body", "options"], str(exc)) from exc
    keys = list(values)
    columns = [values[k].tolist() for k in keys]
    results = [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
    # Serialised directly: re-validating 1000 result objects against the response model
    # would cost more than pricing them (the model still documents the schema).
    return Response(orjson.dumps({"method": req.method, "results": results}),
                    media_type="application/json")


@router.post("/probability", response_model=ProbabilityResponse)
async def probability(req: ProbabilityRequest, request: Request) -> dict:
    args = (req.spot, req.strike, req.tau, req.sigma, req.rate, req.div)
    out: dict = {"risk_neutral": float(risk_neutral_prob_above(*args))}
    try:
        out["pinn_implied"] = float(pinn_prob_above(*args, on_out_of_domain="flag"))
    except OptionInputError:
        out["pinn_implied"] = None
    if out.get("pinn_implied") is not None and not np.isfinite(out["pinn_implied"]):
        out["pinn_implied"] = None
    if req.symbol is not None:
        hub = request.app.state.hub
        if hub is None:
            raise HTTPException(404, f"symbol {req.symbol!r}: no forecasting models loaded")
        try:
            implied = await hub.prob_above(req.symbol, req.spot, req.strike, req.tau,
                                           req.horizon)
        except UnknownSymbol as exc:
            raise HTTPException(404, f"symbol {req.symbol!r}: no promoted model") from exc
        except ValueError as exc:
            raise _unprocessable(["body", "horizon"], str(exc)) from exc
        out.update(implied)
    return out
