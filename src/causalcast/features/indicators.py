"""Every technical indicator, each a pure function of bars at or before t, registered here.

Only pandas `rolling`, `ewm` and `expanding` (all one-pass, left-to-right) and element-wise
arithmetic are used, so a value at bar t is computed from the same operations whether the
series ends at t or continues: the property test in tests/test_causality.py checks this for
every entry of `INDICATORS`. Scale-dependent quantities are divided by a past price or a past
volatility so that one model can learn across symbols; the fold scaler (pipeline.FoldScaler)
standardises the rest using the training range only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from causalcast.data.quality import normalize_columns

TINY = 1e-12


@dataclass(frozen=True)
class Indicator:
    name: str
    fn: Callable[[Bars], pd.Series]
    warmup: int  # bars before the first value that can be finite
    description: str


INDICATORS: dict[str, Indicator] = {}


def indicator(name: str, warmup: int) -> Callable[[Callable[[Bars], pd.Series]],
                                                   Callable[[Bars], pd.Series]]:
    def register(fn: Callable[[Bars], pd.Series]) -> Callable[[Bars], pd.Series]:
        if name in INDICATORS:
            raise ValueError(f"indicator {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        INDICATORS[name] = Indicator(name, fn, warmup, doc[0] if doc else name)
        return fn
    return register


class Bars:
    """One symbol's bars with the common series computed once (all causal).

    Moving averages and volatilities are cached per window: several indicators share them
    (rv_20 feeds rv_20 and ret_1_vol_scaled; rv_5 and rv_60 feed their own columns and the
    ratio), and 50 symbols x 31 indicators must stay under a second."""

    def __init__(self, ohlcv: pd.DataFrame):
        self.open = ohlcv["open"].astype(float)
        self.high = ohlcv["high"].astype(float)
        self.low = ohlcv["low"].astype(float)
        self.close = ohlcv["close"].astype(float)
        self.volume = ohlcv["volume"].astype(float)
        self._cache: dict[tuple[str, int], pd.Series] = {}

    def _cached(self, kind: str, window: int, make: Callable[[], pd.Series]) -> pd.Series:
        key = (kind, window)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @cached_property
    def log_close(self) -> pd.Series:
        return np.log(self.close)

    @cached_property
    def ret(self) -> pd.Series:
        return self.log_close.diff()

    def ema(self, span: int) -> pd.Series:
        return self._cached("ema", span, lambda: self.close.ewm(
            span=span, adjust=False, min_periods=span).mean())

    def sma(self, window: int) -> pd.Series:
        return self._cached("sma", window, lambda: self.close.rolling(window).mean())

    def rv(self, window: int) -> pd.Series:
        return self._cached("rv", window, lambda: self.ret.rolling(window).std(ddof=0))

    @cached_property
    def true_range(self) -> pd.Series:
        high, low = self.high.to_numpy(), self.low.to_numpy()
        prev = self.close.shift(1).to_numpy()
        tr = np.maximum(high - low, np.maximum(np.abs(high - prev), np.abs(low - prev)))
        tr[np.isnan(prev)] = np.nan   # the first bar has no previous close
        return pd.Series(tr, index=self.close.index)


def safe_div(num: pd.Series, den: pd.Series, fill: float = 0.0) -> pd.Series:
    """num/den, with `fill` where the denominator is ~0 (flat prices, zero volume)."""
    out = num / den.where(den.abs() > TINY)
    return out.where(~(den.abs() <= TINY), fill)


def wilder(values: pd.Series, period: int) -> pd.Series:
    """Wilder smoothing with its textbook warm-up: the first value is the simple mean of the
    first `period` inputs, then avg_t = avg_{t-1} + (x_t - avg_{t-1}) / period.

    The recursion runs as a first-order IIR filter (`scipy.signal.lfilter`), which is
    sequential in time, so a prefix gives bit-identical values. Inputs are NaN only before
    their first value (a difference or a previous close), never in between."""
    x = values.to_numpy(dtype=float)
    out = np.full(len(x), np.nan)
    valid = np.flatnonzero(~np.isnan(x))
    if len(valid):
        start = int(valid[0])
        seed_at = start + period - 1
        if seed_at < len(x):
            seed = float(np.mean(x[start:seed_at + 1]))
            alpha = 1.0 / period
            out[seed_at] = seed
            if seed_at + 1 < len(x):
                out[seed_at + 1:], _ = lfilter([alpha], [1.0, alpha - 1.0], x[seed_at + 1:],
                                               zi=[(1.0 - alpha) * seed])
    return pd.Series(out, index=values.index)


# --- returns -------------------------------------------------------------------------------
for _lag in (1, 2, 5, 10, 20):
    def _ret(b: Bars, lag: int = _lag) -> pd.Series:
        return b.log_close - b.log_close.shift(lag)
    _ret.__doc__ = f"Log return over the last {_lag} bars."
    indicator(f"ret_{_lag}", warmup=_lag)(_ret)


@indicator("ret_1_vol_scaled", warmup=20)
def ret_1_vol_scaled(b: Bars) -> pd.Series:
    """Last return over trailing 20-bar volatility: a unit-free shock size."""
    return safe_div(b.ret, b.rv(20))


# --- trend ---------------------------------------------------------------------------------
for _w in (10, 50):
    def _sma_ratio(b: Bars, w: int = _w) -> pd.Series:
        return np.log(b.close / b.sma(w))
    _sma_ratio.__doc__ = f"Log distance of close from its {_w}-bar simple moving average."
    indicator(f"sma_ratio_{_w}", warmup=_w - 1)(_sma_ratio)

for _w in (12, 26):
    def _ema_ratio(b: Bars, w: int = _w) -> pd.Series:
        return np.log(b.close / b.ema(w))
    _ema_ratio.__doc__ = f"Log distance of close from its {_w}-bar exponential moving average."
    indicator(f"ema_ratio_{_w}", warmup=_w - 1)(_ema_ratio)


def _macd(b: Bars) -> pd.Series:
    return (b.ema(12) - b.ema(26)) / b.close


@indicator("macd", warmup=25)
def macd(b: Bars) -> pd.Series:
    """MACD line (EMA12 - EMA26) relative to price."""
    return _macd(b)


@indicator("macd_signal", warmup=33)
def macd_signal(b: Bars) -> pd.Series:
    """Nine-bar EMA of the MACD line."""
    return _macd(b).ewm(span=9, adjust=False, min_periods=9).mean()


@indicator("macd_hist", warmup=33)
def macd_hist(b: Bars) -> pd.Series:
    """MACD minus its signal line."""
    line = _macd(b)
    return line - line.ewm(span=9, adjust=False, min_periods=9).mean()


# --- oscillators ---------------------------------------------------------------------------
@indicator("rsi_14", warmup=14)
def rsi_14(b: Bars) -> pd.Series:
    """RSI(14) with Wilder smoothing, centred: RSI/100 - 1/2."""
    change = b.close.diff()
    gain = wilder(change.clip(lower=0), 14)
    loss = wilder((-change).clip(lower=0), 14)
    total = gain + loss
    return safe_div(gain, total, fill=0.5) - 0.5


@indicator("bb_pctb_20", warmup=19)
def bb_pctb_20(b: Bars) -> pd.Series:
    """Bollinger %b (20 bars, 2 sd), unclipped: outside [0, 1] when price leaves the bands."""
    mid = b.sma(20)
    sd = b.close.rolling(20).std(ddof=0)
    return safe_div(b.close - (mid - 2 * sd), 4 * sd, fill=0.5)


@indicator("stoch_k_14", warmup=13)
def stoch_k_14(b: Bars) -> pd.Series:
    """Stochastic %K(14): where the close sits in the 14-bar high-low range."""
    hh = b.high.rolling(14).max()
    ll = b.low.rolling(14).min()
    return safe_div(b.close - ll, hh - ll, fill=0.5)


# --- volatility ----------------------------------------------------------------------------
for _w in (5, 20, 60):
    def _rv(b: Bars, w: int = _w) -> pd.Series:
        return b.rv(w)
    _rv.__doc__ = f"Realised volatility: std of log returns over {_w} bars."
    indicator(f"rv_{_w}", warmup=_w)(_rv)


@indicator("rv_ratio_5_60", warmup=60)
def rv_ratio_5_60(b: Bars) -> pd.Series:
    """Log ratio of short to long realised volatility (volatility regime)."""
    return np.log(safe_div(b.rv(5), b.rv(60), fill=1.0).clip(lower=TINY))


@indicator("parkinson_20", warmup=19)
def parkinson_20(b: Bars) -> pd.Series:
    """Parkinson high-low volatility over 20 bars."""
    hl = np.log(b.high / b.low) ** 2
    return np.sqrt(hl.rolling(20).mean() / (4 * np.log(2)))


@indicator("atr_14", warmup=14)
def atr_14(b: Bars) -> pd.Series:
    """Average true range (Wilder, 14) relative to price."""
    return wilder(b.true_range, 14) / b.close


# --- volume --------------------------------------------------------------------------------
@indicator("volume_z_20", warmup=19)
def volume_z_20(b: Bars) -> pd.Series:
    """Z-score of log volume against the trailing 20 bars."""
    lv = np.log1p(b.volume)
    return safe_div(lv - lv.rolling(20).mean(), lv.rolling(20).std(ddof=0))


@indicator("volume_ratio_5_20", warmup=19)
def volume_ratio_5_20(b: Bars) -> pd.Series:
    """Log of 5-bar over 20-bar mean volume."""
    return np.log1p(b.volume.rolling(5).mean()) - np.log1p(b.volume.rolling(20).mean())


# --- bar shape ------------------------------------------------------------------------------
@indicator("range_hl", warmup=0)
def range_hl(b: Bars) -> pd.Series:
    """Log high-low range of the bar."""
    return np.log(b.high / b.low)


@indicator("gap", warmup=1)
def gap(b: Bars) -> pd.Series:
    """Opening gap: log(open / previous close)."""
    return np.log(b.open / b.close.shift(1))


@indicator("intraday_ret", warmup=0)
def intraday_ret(b: Bars) -> pd.Series:
    """Open-to-close log return."""
    return np.log(b.close / b.open)


@indicator("close_location", warmup=0)
def close_location(b: Bars) -> pd.Series:
    """Where the close sits in the bar's range, centred: 0 = mid-range."""
    return safe_div(b.close - b.low, b.high - b.low, fill=0.5) - 0.5


# --- distance from extremes -------------------------------------------------------------------
@indicator("dist_max_60", warmup=59)
def dist_max_60(b: Bars) -> pd.Series:
    """Log distance below the 60-bar high."""
    return np.log(b.close / b.high.rolling(60).max())


@indicator("dist_min_60", warmup=59)
def dist_min_60(b: Bars) -> pd.Series:
    """Log distance above the 60-bar low."""
    return np.log(b.close / b.low.rolling(60).min())


@indicator("drawdown", warmup=0)
def drawdown(b: Bars) -> pd.Series:
    """Log distance below the running (expanding) maximum close."""
    return b.log_close - b.log_close.cummax()


WARMUP = max(ind.warmup for ind in INDICATORS.values())


def build_features(ohlcv: pd.DataFrame, names: list[str] | None = None) -> pd.DataFrame:
    """All (or the named) registered indicators for one symbol, as float64 columns.

    Rows inside an indicator's warm-up are NaN; nothing is filled, so the pipeline can drop
    them explicitly. Yahoo-style column names (``Open``, ``Adj Close``, any case) are accepted;
    a missing OHLCV column is refused by name."""
    chosen = list(INDICATORS) if names is None else list(names)
    unknown = [n for n in chosen if n not in INDICATORS]
    if unknown:
        raise KeyError(f"features: unknown indicators {unknown}; see causalcast features --list")
    ohlcv = normalize_columns(ohlcv, "build_features")
    bars = Bars(ohlcv)
    columns = {}
    for name in chosen:
        values = INDICATORS[name].fn(bars)
        columns[name] = np.asarray(values, dtype=float)
    return pd.DataFrame(columns, index=ohlcv.index)
