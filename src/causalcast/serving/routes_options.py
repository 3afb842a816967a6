"""Option routes: prices and Greeks for a batch, and probabilities. Thin: validation is in the
schemas, pricing in causalcast.options (one batched forward pass per style, calls and puts
together)."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

import numpy as np
import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from causalcast.options.black_scholes import GREEKS, bsm_greeks, inconsistent_rows
from causalcast.options.inputs import (
    TRAINED_DOMAIN,
    OptionInputError,
    OptionInputs,
    domain_violations,
)
from causalcast.options.pricer import load_models, pinn_greeks
from causalcast.options.probability import pinn_prob_above, risk_neutral_prob_above
from causalcast.serving.arrow_codec import ARROW_STREAM
from causalcast.serving.loading import UnknownSymbol
from causalcast.serving.schemas import (
    OptionsColumnsRequest,
    OptionsColumnsResponse,
    OptionsPriceRequest,
    OptionsPriceResponse,
    ProbabilityRequest,
    ProbabilityResponse,
)
from causalcast.serving.security import require_api_key

ARROW_HELP = ("An Apache Arrow IPC stream: one table, a row per option, columns spot strike "
              "tau sigma [rate div kind style]; method and greeks in the schema metadata. "
              "Validated and answered like the JSON columns form; errors are JSON.")
router = APIRouter(prefix="/v1/options", tags=["options"], dependencies=[Depends(require_api_key)])
FIELDS = ("spot", "strike", "tau", "sigma", "rate", "div")
DOMAIN_FIELD = {"moneyness": "spot", "tau": "tau", "sigma": "sigma", "rate": "rate",
                "div": "div"}


def _unprocessable(loc: list, message: str) -> HTTPException:
    return HTTPException(422, [{"loc": loc, "msg": message, "type": "value_error"}])


Where = Callable[[int, str | None], list]


def _rows(i: int, field: str | None) -> list:
    """Where option ``i`` (and its ``field``, when one is at fault) is in a request of rows."""
    return ["body", "options", i] if field is None else ["body", "options", i, field]


def _columns(i: int, field: str | None) -> list:
    return ["body", "columns", i] if field is None else ["body", "columns", field, i]


def _check_domain(x: OptionInputs, rows: np.ndarray, where: Where) -> None:
    for name, mask in domain_violations(x).items():
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            lo, hi = getattr(TRAINED_DOMAIN, name)
            value = float(getattr(x, name)[i])
            what = "spot/strike" if name == "moneyness" else name
            raise _unprocessable(
                where(int(rows[i]), DOMAIN_FIELD[name]),
                f"{what} = {value:g} is outside the PINN's trained domain [{lo:g}, {hi:g}]; "
                "use method 'closed' for European options")


def price_arrays(columns: dict[str, np.ndarray], is_call: np.ndarray, american: np.ndarray,
                 method: str, greeks: bool, where: Where = _rows) -> dict[str, np.ndarray]:
    """Prices (and Greeks) of validated options, one batched pass per style. Raises the 422
    HTTPException naming the option and field (``where``) when a row cannot be priced, or
    has no finite, arbitrage-consistent answer (never a negative price or a NaN)."""
    n = len(is_call)
    keys = GREEKS if greeks else ("price",)
    out = {k: np.full(n, np.nan) for k in keys}
    for style, mask in (("european", ~american), ("american", american)):
        rows = np.flatnonzero(mask)
        if not len(rows):
            continue
        if style == "american" and method == "closed":
            raise _unprocessable(where(int(rows[0]), "style"),
                                 "american options have no closed form; use method 'pinn'")
        # The schema already refused non-finite, non-positive and unpriceable values.
        x = OptionInputs(*(columns[f][rows] for f in FIELDS))
        if method == "pinn":
            _check_domain(x, rows, where)
            result = pinn_greeks(load_models(), x, is_call[rows], style, greeks)
        else:
            result = bsm_greeks(x.spot, x.strike, x.tau, x.sigma, x.rate, x.div, is_call[rows])
        result = {k: result[k] for k in keys}
        bad = inconsistent_rows(x, is_call[rows], style == "american", result)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _unprocessable(where(int(rows[i]), None),
                                 f"option {int(rows[i])}: no finite, arbitrage-consistent "
                                 f"{method} price for these inputs")
        for k in keys:
            out[k][rows] = result[k]
    return out


_NUMBERS = attrgetter(*FIELDS)
_LABELS = attrgetter("kind", "style")


def price_request(req: OptionsPriceRequest) -> dict[str, np.ndarray]:
    """`price_arrays` for a request of option rows."""
    numbers = np.array(list(map(_NUMBERS, req.options)), dtype=float).reshape(-1, len(FIELDS))
    labels = list(map(_LABELS, req.options))
    n = len(labels)
    kinds, styles = zip(*labels, strict=True)
    return price_arrays({f: numbers[:, i] for i, f in enumerate(FIELDS)},
                        _label_mask(list(kinds), "call", n),
                        _label_mask(list(styles), "american", n), req.method, req.greeks)


def _label_mask(value: list[str] | str, wanted: str, n: int) -> np.ndarray:
    if isinstance(value, str):
        return np.full(n, value == wanted)
    return np.fromiter(map(wanted.__eq__, value), bool, n)


def price_columns(req: OptionsColumnsRequest) -> dict[str, np.ndarray]:
    """`price_arrays` for a request of option columns (scalars broadcast to every option)."""
    cols = req.columns
    n = len(cols)
    arrays = {f: np.broadcast_to(np.asarray(getattr(cols, f), dtype=float), (n,))
              for f in FIELDS}
    return price_arrays(arrays, _label_mask(cols.kind, "call", n),
                        _label_mask(cols.style, "american", n), req.method, req.greeks,
                        _columns)


def encode_prices(method: str, values: dict[str, np.ndarray]) -> bytes:
    """The response body. Serialised directly: re-validating 1000 result objects against the
    response model would cost more than pricing them (the model still documents the schema)."""
    keys = list(values)
    columns = [values[k].tolist() for k in keys]
    results = [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
    return orjson.dumps({"method": method, "results": results})


# Documents the Arrow alternative (answered by the fast path, see serving/options_arrow.py).
ARROW_DOC = {
    "requestBody": {"content": {ARROW_STREAM: {"schema": {"type": "string", "format": "binary",
                                                          "description": ARROW_HELP}}}},
    "responses": {"200": {"content": {ARROW_STREAM: {"schema": {
        "type": "string", "format": "binary",
        "description": "With Accept: " + ARROW_STREAM + ": one table, columns price and "
                       "(with greeks) delta gamma vega theta rho"}}}}}}


@router.post("/price", response_model=OptionsPriceResponse, openapi_extra=ARROW_DOC)
async def price(req: OptionsPriceRequest) -> Response:
    try:
        values = await run_in_threadpool(price_request, req)
    except OptionInputError as exc:
        raise _unprocessable(["body", "options"], str(exc)) from exc
    return Response(encode_prices(req.method, values), media_type="application/json")


def encode_columns(method: str, values: dict[str, np.ndarray]) -> bytes:
    return orjson.dumps({"method": method, "columns": values},
                        option=orjson.OPT_SERIALIZE_NUMPY)


@router.post("/price/columns", response_model=OptionsColumnsResponse, openapi_extra=ARROW_DOC)
async def price_columnar(req: OptionsColumnsRequest) -> Response:
    """The same pricing as /price for options sent as one array per field: the format for
    large batches, which parses and serialises several times faster than one object per
    option (see the serving benchmark)."""
    try:
        values = await run_in_threadpool(price_columns, req)
    except OptionInputError as exc:
        raise _unprocessable(["body", "columns"], str(exc)) from exc
    return Response(encode_columns(req.method, values), media_type="application/json")


@router.post("/probability", response_model=ProbabilityResponse)
async def probability(req: ProbabilityRequest, request: Request) -> dict:
    """Risk-neutral P(S_T > K) in closed form (always a number in [0, 1], or a 422), the
    network's estimate of it (null outside the trained domain), and optionally the forecast's
    real-world probability."""
    args = (req.spot, req.strike, req.tau, req.sigma, req.rate, req.div)
    risk_neutral = float(risk_neutral_prob_above(*args))
    if not 0.0 <= risk_neutral <= 1.0:   # NaN included
        raise _unprocessable(["body"], "no finite risk-neutral probability for these inputs")
    out: dict = {"risk_neutral": risk_neutral}
    try:
        pinn = float(pinn_prob_above(*args, on_out_of_domain="flag"))
    except OptionInputError:
        pinn = float("nan")
    # The network's estimate, clipped to a probability; null where it has none.
    out["pinn_implied"] = min(max(pinn, 0.0), 1.0) if np.isfinite(pinn) else None
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
