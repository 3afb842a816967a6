"""Yahoo Finance through `yfinance` (optional extra: ``pip install 'causalcast[yahoo]'``).

Bars are requested unadjusted (``auto_adjust=False``) with corporate actions, so the store
keeps Yahoo's ``Close`` (split-adjusted by Yahoo, not dividend-adjusted) next to ``Adj Close``
(split- and dividend-adjusted) and the ``Dividends`` / ``Stock Splits`` of each bar.

Timestamps: daily bars are stamped with their exchange-local trading date (midnight); intraday
bars are converted to UTC. Both stored tz-naive (UTC), like every canonical frame.
"""

from __future__ import annotations

import logging

import pandas as pd

from causalcast.data.quality import normalize_columns
from causalcast.store.sources.base import SourceError

INTERVALS = ("1d", "1h", "30m", "15m", "5m", "1m", "1wk")
# What Yahoo serves when no start is given: all daily history; intraday only recent days.
DEFAULT_PERIOD = {"1h": "730d", "30m": "60d", "15m": "60d", "5m": "60d", "1m": "7d"}
KEEP = ("open", "high", "low", "close", "volume", "adj_close", "dividends", "splits")


def is_intraday(interval: str) -> bool:
    return interval.endswith(("m", "h")) and not interval.endswith("mo")


def canonical_yahoo(frame: pd.DataFrame, symbol: str, interval: str) -> pd.DataFrame:
    """One ticker's frame as `Ticker.history` (flat columns) or one ticker's slice of
    `yfinance.download` returns it -> a canonical frame with the extra columns kept."""
    source = f"yahoo {symbol}"
    frame = normalize_columns(frame, source)
    frame = frame[[c for c in KEEP if c in frame.columns]].astype(float)
    frame = frame.dropna(how="all", subset=["open", "high", "low", "close"])
    index = pd.DatetimeIndex(frame.index)
    if is_intraday(interval):
        index = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
    elif index.tz is not None:
        index = index.tz_localize(None).normalize()   # local trading date
    frame = frame.set_axis(index.as_unit("ns").rename("date"))
    if "splits" in frame.columns:
        frame["splits"] = frame["splits"].fillna(0.0)
    if "dividends" in frame.columns:
        frame["dividends"] = frame["dividends"].fillna(0.0)
    return frame


def drop_unfinished(raw: pd.DataFrame, interval: str,
                    now: pd.Timestamp | None = None) -> pd.DataFrame:
    """Without the bar still forming: Yahoo returns today's daily bar (and the current hour's)
    while the session runs, and storing it would make tomorrow's update a revision. A daily bar
    dated the exchange-local today, or an intraday bar whose period has not ended, is left out.
    """
    if raw.empty:
        return raw
    index = pd.DatetimeIndex(raw.index)
    tz = index.tz or "UTC"
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_convert(tz) if now.tz is not None else now.tz_localize(tz)
    if index.tz is None:
        index = index.tz_localize(tz)
    if is_intraday(interval):
        step = pd.Timedelta(interval.replace("m", "min"))
        finished = index + step <= now
    else:
        finished = index.normalize() < now.normalize()
    return raw[finished]


def split_download(frame: pd.DataFrame, interval: str) -> dict[str, pd.DataFrame]:
    """`yfinance.download` output (columns MultiIndex (Price, Ticker), or (Ticker, Price)
    with ``group_by='ticker'``) -> one canonical frame per ticker."""
    if not isinstance(frame.columns, pd.MultiIndex):
        raise ValueError("yahoo: expected MultiIndex columns (Price, Ticker) from download")
    names = list(frame.columns.names)
    level = names.index("Ticker") if "Ticker" in names else 1
    out = {}
    for ticker in frame.columns.get_level_values(level).unique():
        part = frame.xs(ticker, axis=1, level=level)
        out[str(ticker).upper()] = canonical_yahoo(part, str(ticker).upper(), interval)
    return out


class YahooSource:
    """`BarSource` for Yahoo Finance (one request per symbol, so a failure names its symbol)."""

    name = "yahoo"

    def fetch(self, symbols: list[str], *, start: str | None, end: str | None,
              interval: str) -> dict[str, pd.DataFrame]:
        if interval not in INTERVALS:
            raise ValueError(f"--interval: yahoo serves {list(INTERVALS)}, got {interval!r}")
        try:
            import yfinance as yf
        except ImportError:
            raise SourceError("yahoo: yfinance is not installed; pip install "
                              "'causalcast[yahoo]'") from None
        logging.getLogger("yfinance").setLevel(logging.CRITICAL)
        out = {}
        for symbol in symbols:
            try:
                period = None if start else DEFAULT_PERIOD.get(interval, "max")
                raw = yf.Ticker(symbol).history(period=period, start=start, end=end,
                                                interval=interval,
                                                auto_adjust=False, actions=True,
                                                raise_errors=True)
            except Exception as exc:  # the vendor's errors are many; all end here as one line
                cause = (str(exc).splitlines() or [type(exc).__name__])[0]
                cause = cause.split(". See ")[0]  # drop curl's pointer to its manual
                raise SourceError(f"yahoo: cannot fetch {symbol} ({interval}): "
                                  f"{type(exc).__name__}: {cause}") from None
            if raw is None or raw.empty:
                raise SourceError(f"yahoo: no bars for {symbol} ({interval}) between "
                                  f"{start or 'the first bar'} and {end or 'now'}")
            out[symbol.upper()] = canonical_yahoo(drop_unfinished(raw, interval),
                                                  symbol.upper(), interval)
        return out
