"""Option chains: the normalised schema, CSV/Parquet import, a yfinance adapter, validation.

Why one schema: the chain goes through validation, parity, implied volatility and the surface
fit, and is stored by the data store with exactly these columns (`CHAIN_COLUMNS`). Validation
never drops a row silently: every quote keeps its row and gets a `flag` ('' when usable) naming
the field and the problem; fits use only the unflagged rows and report the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from causalcast.options.inputs import OptionInputError

CHAIN_COLUMNS = ("expiry", "strike", "type", "bid", "ask", "last", "volume", "open_interest",
                 "spot", "as_of")
NUMERIC_COLUMNS = ("strike", "bid", "ask", "last", "volume", "open_interest", "spot")
YFINANCE_COLUMNS = ("contractSymbol", "lastTradeDate", "strike", "lastPrice", "bid", "ask",
                    "change", "percentChange", "volume", "openInterest", "impliedVolatility",
                    "inTheMoney", "contractSize", "currency")
YEAR_DAYS = 365.0
EXPIRY_HOUR_UTC = 20   # listed US options stop trading at 16:00 New York ≈ 20:00/21:00 UTC


class ChainError(OptionInputError):
    """A chain that cannot be used at all (missing columns, unreadable file, wrong types)."""


def _utc(values: Any, field: str) -> pd.Series:
    try:
        out = pd.to_datetime(pd.Series(values), utc=True)
    except (TypeError, ValueError) as exc:
        raise ChainError(f"{field}: not a date/time ({exc})") from exc
    if out.isna().any():
        row = int(np.flatnonzero(out.isna().to_numpy())[0])
        raise ChainError(f"{field}: row {row} is not a date/time")
    return out.astype("datetime64[ns, UTC]")


def normalise_chain(frame: pd.DataFrame) -> pd.DataFrame:
    """The chain in `CHAIN_COLUMNS` order and dtypes: expiry and as_of UTC timestamps (a bare
    expiry date means its close, `EXPIRY_HOUR_UTC`), numbers float64, type 'call'|'put'.
    Strings where numbers belong are refused naming the row and column, never coerced."""
    missing = [c for c in CHAIN_COLUMNS if c not in frame.columns
               and c not in ("last", "volume", "open_interest")]
    if missing:
        raise ChainError(f"chain: missing column(s) {missing}; need {list(CHAIN_COLUMNS)}")
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    expiry = _utc(frame["expiry"].to_numpy(), "expiry")
    bare = (expiry.dt.hour == 0) & (expiry.dt.minute == 0) & (expiry.dt.second == 0)
    out["expiry"] = expiry.where(~bare, expiry + pd.Timedelta(hours=EXPIRY_HOUR_UTC))
    for col in NUMERIC_COLUMNS:
        raw = frame[col] if col in frame.columns else pd.Series(np.nan, index=frame.index)
        raw = raw.reset_index(drop=True)
        if raw.dtype == bool:
            raise ChainError(f"{col}: booleans are not numbers")
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ChainError(f"{col}: row {row} is {raw.iloc[row]!r}, not a number")
        out[col] = values.astype("float64")
    out["type"] = frame["type"].astype(str).str.strip().str.lower().reset_index(drop=True) \
        .replace({"c": "call", "p": "put"})
    bad_type = ~out["type"].isin(("call", "put"))
    if bad_type.any():
        row = int(np.flatnonzero(bad_type.to_numpy())[0])
        raise ChainError(f"type: row {row} is {frame['type'].iloc[row]!r}, expected call|put")
    out["as_of"] = _utc(frame["as_of"].to_numpy(), "as_of")
    out["last"] = out["last"].astype("float64")
    return out[list(CHAIN_COLUMNS)]


def read_chain(path: str | Path) -> pd.DataFrame:
    """A normalised chain from CSV or Parquet."""
    path = Path(path)
    if not path.exists():
        raise ChainError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
    else:
        raise ChainError(f"{path}: expected a .csv or .parquet chain")
    return normalise_chain(frame)


def from_yfinance(calls: pd.DataFrame, puts: pd.DataFrame, expiry: Any, spot: float,
                  as_of: Any) -> pd.DataFrame:
    """One expiry of `yfinance.Ticker(...).option_chain(expiry)` (its .calls and .puts frames)
    in the normalised schema."""
    parts = []
    for kind, frame in (("call", calls), ("put", puts)):
        missing = [c for c in ("strike", "bid", "ask", "lastPrice", "volume", "openInterest")
                   if c not in frame.columns]
        if missing:
            raise ChainError(f"yfinance {kind}s: missing column(s) {missing}")
        parts.append(pd.DataFrame({
            "expiry": expiry, "strike": frame["strike"].to_numpy(), "type": kind,
            "bid": frame["bid"].to_numpy(), "ask": frame["ask"].to_numpy(),
            "last": frame["lastPrice"].to_numpy(), "volume": frame["volume"].to_numpy(),
            "open_interest": frame["openInterest"].to_numpy(), "spot": spot, "as_of": as_of}))
    return normalise_chain(pd.concat(parts, ignore_index=True))


def fetch_yfinance(symbol: str, ticker_factory: Any = None) -> pd.DataFrame:
    """Every expiry of a ticker's chain from yfinance. Offline, or when Yahoo answers nothing,
    one clear error line (`ChainError`) instead of a traceback."""
    try:
        if ticker_factory is None:
            import yfinance as yf

            ticker_factory = yf.Ticker
        ticker = ticker_factory(symbol)
        expiries = list(ticker.options)
        history = ticker.history(period="1d")
    except ImportError as exc:
        raise ChainError("yfinance is not installed: pip install yfinance") from exc
    except Exception as exc:  # network failures come in many types
        raise ChainError(f"{symbol}: could not fetch the option chain from yfinance "
                         f"({type(exc).__name__}); offline? load a CSV/Parquet chain") from exc
    if not expiries or history is None or len(history) == 0:
        raise ChainError(f"{symbol}: yfinance returned no option chain (offline, or no listed "
                         "options); load a CSV/Parquet chain")
    spot = float(history["Close"].iloc[-1])
    as_of = pd.Timestamp.now(tz="UTC")
    parts = []
    for expiry in expiries:
        chain = ticker.option_chain(expiry)
        parts.append(from_yfinance(chain.calls, chain.puts, expiry, spot, as_of))
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class ValidatedChain:
    """The chain with `tau` (years to expiry from as_of) and `flag` per row ('' = usable)."""

    frame: pd.DataFrame

    @property
    def usable(self) -> pd.DataFrame:
        return self.frame[self.frame["flag"] == ""]

    def excluded(self) -> list[dict[str, Any]]:
        bad = self.frame[self.frame["flag"] != ""]
        return [{"row": int(i), "expiry": str(r.expiry.date()), "strike": float(r.strike),
                 "type": r.type, "reason": r.flag} for i, r in bad.iterrows()]


def validate_chain(chain: pd.DataFrame, max_spread: float = 0.5) -> ValidatedChain:
    """Flag every quote a fit must not use, naming row and field.

    Chain-level faults (no rows, several spots or as-of times, spot ≤ 0) raise; quote-level
    ones flag: strike ≤ 0, expired (expiry ≤ as_of), missing/negative bid or ask, zero bid (no
    buyer: the mid is not a price), crossed (bid > ask), stale (spread wider than ``max_spread``
    of the mid), duplicate (expiry, strike, type)."""
    frame = normalise_chain(chain) if list(chain.columns)[:10] != list(CHAIN_COLUMNS) \
        else chain.reset_index(drop=True).copy()
    if frame.empty:
        raise ChainError("chain: no rows")
    for col in ("spot", "as_of"):
        if frame[col].nunique() != 1:
            raise ChainError(f"{col}: one chain has one {col}, found {frame[col].nunique()}")
    if not (frame["spot"].iloc[0] > 0):
        raise ChainError(f"spot: must be > 0, got {frame['spot'].iloc[0]!r}")
    frame["tau"] = (frame["expiry"] - frame["as_of"]).dt.total_seconds() / (YEAR_DAYS * 86400)
    flags = np.full(len(frame), "", dtype=object)
    mid = 0.5 * (frame["bid"] + frame["ask"])
    checks = [
        (~(frame["strike"] > 0), "strike: must be > 0"),
        (~(frame["tau"] > 0), "expiry: expired (not after as_of)"),
        (frame["bid"].isna() | (frame["bid"] < 0), "bid: missing or negative"),
        (frame["ask"].isna() | ~(frame["ask"] > 0), "ask: missing or not > 0"),
        (frame["bid"] == 0, "bid: zero (no buyer; the mid is not a price)"),
        (frame["bid"] > frame["ask"], "bid/ask: crossed (bid > ask)"),
        ((frame["ask"] - frame["bid"]) > max_spread * mid,
         f"bid/ask: stale (spread wider than {max_spread:.0%} of mid)"),
        (frame.duplicated(["expiry", "strike", "type"], keep="first"),
         "expiry/strike/type: duplicate quote"),
    ]
    for mask, reason in checks:
        m = mask.to_numpy() & (flags == "")
        flags[m] = reason
    frame["flag"] = flags
    frame["mid"] = mid
    return ValidatedChain(frame)
