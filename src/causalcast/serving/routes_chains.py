"""Read-only option-chain routes: the chains held in the service's market data store (the
store beside the bars, written by ``causalcast options chain import|fetch``).

Why here: the dashboard's Options page needs a chain to show implied volatilities, the fitted
smile and the market's distribution, and a browser cannot read the store. The rows come back
in the chain schema the analytics routes take (`schemas_analytics.ChainRow`) with each quote's
validation flag recomputed on read (`validate_chain`, as everywhere else), so a client posts
the usable rows to ``/v1/options/implied-vol``, ``/surface`` or ``/strategy`` unchanged.
Same API-key rule as the other read routes; nothing here writes."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool

from causalcast.options.analytics.chain import ChainError, validate_chain
from causalcast.options.analytics.chain_source import read_stored, stored_chain_sizes
from causalcast.options.analytics.units import json_safe
from causalcast.serving.hub import serving_store
from causalcast.serving.security import require_api_key
from causalcast.store.schema import check_symbol

router = APIRouter(prefix="/v1/options/chains", tags=["options analytics"],
                   dependencies=[Depends(require_api_key)])

MAX_SYMBOL = 32
UNITS = {"strike, bid, ask, last, spot": "the underlying's currency per unit",
         "volume, open_interest": "contracts", "days": "calendar days from as_of to expiry",
         "as_of, expiry": "ISO 8601, UTC"}


def _unprocessable(where: str, field: str, msg: str) -> HTTPException:
    return HTTPException(422, [{"loc": [where, field], "msg": msg, "type": "value_error"}])


def _store(request: Request) -> str:
    config = request.app.state.config
    store = serving_store(config.home, config.store)   # the hub's store too
    if store is None:
        raise HTTPException(404, "no market data store: the service's home is a database; "
                                 "start it with --store")
    return store


def _iso(stamp: Any) -> str:
    return pd.Timestamp(stamp).isoformat()


def _listing(store: str) -> dict[str, Any]:
    try:
        sizes = stored_chain_sizes(store)
    except ValueError as exc:   # object storage: no folder to list
        raise HTTPException(501, f"listing chains needs a local store ({exc}); "
                                 "GET /v1/options/chains/{underlying} reads any store") from exc
    chains = []
    for underlying, snapshots in sizes.items():
        if not snapshots:
            continue
        latest = list(snapshots)[-1]
        chains.append({"underlying": underlying, "latest_as_of": _iso(latest),
                       "quotes": snapshots[latest],
                       "snapshots": [{"as_of": _iso(t), "quotes": n}
                                     for t, n in snapshots.items()]})
    return {"store": store, "chains": chains, "units": {"quotes": "rows of the snapshot "
                                                        "(calls and puts)", **UNITS}}


@router.get("")
async def list_chains(request: Request) -> dict[str, Any]:
    """The underlyings whose chains are stored, each with its snapshots (as-of times, oldest
    first) and their quote counts."""
    return await run_in_threadpool(_listing, _store(request))


def _snapshot(store: str, underlying: str, limit: pd.Timestamp | None) -> dict[str, Any]:
    from causalcast.store import ChainStore

    try:
        frame = read_stored(store, underlying, limit)
    except ChainError as exc:
        raise HTTPException(404, str(exc)) from exc
    checked = validate_chain(frame)
    rows = frame.copy()
    for col in ("expiry", "as_of"):
        rows[col] = [stamp.isoformat() for stamp in rows[col]]
    flags = [flag or None for flag in checked.frame["flag"]]
    expiries = [{"expiry": _iso(expiry), "days": float(group["tau"].iloc[0] * 365.0),
                 "quotes": len(group), "flagged": int((group["flag"] != "").sum())}
                for expiry, group in checked.frame.groupby("expiry")]
    return json_safe({
        "underlying": underlying, "as_of": _iso(frame["as_of"].iloc[0]),
        "spot": float(frame["spot"].iloc[0]),
        "snapshots": [_iso(t) for t in ChainStore(store).snapshots(underlying)],
        "quotes": len(frame), "flagged": sum(f is not None for f in flags),
        "expiries": expiries, "chain": rows.to_dict(orient="records"), "flags": flags,
        "units": {**UNITS, "flags": "null = usable; else the field and the problem (the "
                                    "analytics exclude that quote)"}})


@router.get("/{underlying}")
async def show_chain(
    request: Request,
    underlying: str = PathParam(min_length=1, max_length=MAX_SYMBOL,
                                description="The underlying's symbol (case-insensitive)"),
    as_of: str | None = Query(None, min_length=1, max_length=64,
                              description="The latest snapshot at or before this date/time "
                                          "(ISO 8601; a bare time is UTC); default the latest"),
) -> dict[str, Any]:
    """One stored snapshot: every quote in the chain schema the analytics routes take, each
    with its validation flag (recomputed on read), and a summary per expiry."""
    try:
        symbol = check_symbol(underlying)
    except ValueError as exc:
        raise _unprocessable("path", "underlying", str(exc)) from exc
    limit = None
    if as_of is not None:
        try:
            limit = pd.Timestamp(as_of)
        except (TypeError, ValueError) as exc:
            raise _unprocessable("query", "as_of", f"not a date or time: {as_of!r}") from exc
        if pd.isna(limit):
            raise _unprocessable("query", "as_of", f"not a date or time: {as_of!r}")
    return await run_in_threadpool(_snapshot, _store(request), symbol, limit)
