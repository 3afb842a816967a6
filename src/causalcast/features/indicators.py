"""Every technical indicator, each a pure function of bars at or before t, registered here.

Every rolling quantity depends on its own window only (sums as differences of running sums,
extremes by scipy's running max/min filters placed on the trailing window), every exponential
average and Wilder smoothing is a first-order recursion run left to right
(`scipy.signal.lfilter`), and the rest is element-wise arithmetic, so a value at bar t is the
same whether the series ends at t or continues: the property test in
tests/features/test_causality.py checks this for every entry of `INDICATORS`.
Everything works on numpy arrays: 50 symbols x 2520 bars x 31 indicators are about 3000 small
array operations, and pandas' per-call overhead (index alignment, Series construction) used to
be most of the time. Scale-dependent quantities are divided by a past price or a past
volatility so that one model can learn across symbols; the fold scaler (pipeline.FoldScaler)
standardises the rest using the training range only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.signal import lfilter

from causalcast.data.quality import normalize_columns

TINY = 1e-12
Array = np.ndarray


@dataclass(frozen=True)
class Indicator:
    name: str
    fn: Callable[[Bars], Array]
    warmup: int  # bars before the first value that can be finite
    description: str


INDICATORS: dict[str, Indicator] = {}


def indicator(name: str, warmup: int) -> Callable[[Callable[[Bars], Array]],
                                                   Callable[[Bars], Array]]:
    def register(fn: Callable[[Bars], Array]) -> Callable[[Bars], Array]:
        if name in INDICATORS:
            raise ValueError(f"indicator {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        INDICATORS[name] = Indicator(name, fn, warmup, doc[0] if doc else name)
        return fn
    return register


def rolling_sum(x: Array, window: int) -> Array:
    """Sum of the `window` bars ending at each t, as a difference of running sums (one pass);
    NaN before the first full window or when the window holds a NaN (as pandas' rolling with
    min_periods = window). A running sum is sequential, so a prefix gives the same values."""
    out = np.full(len(x), np.nan)
    if window > len(x):
        return out
    missing = np.isnan(x)
    total = np.concatenate(([0.0], np.cumsum(np.where(missing, 0.0, x))))
    out[window - 1:] = total[window:] - total[:-window]
    if missing.any():
        holes = np.concatenate(([0], np.cumsum(missing)))
        out[window - 1:][holes[window:] - holes[:-window] > 0] = np.nan
    return out


def rolling_mean(x: Array, window: int) -> Array:
    """Mean of the `window` bars ending at each t; the sums run on x - (first finite x), a
    past value, so a drifting price keeps its running sum small and its rounding too."""
    finite = np.flatnonzero(~np.isnan(x))
    ref = x[finite[0]] if len(finite) else 0.0
    return rolling_sum(x - ref, window) / window + ref


def rolling_max(x: Array, window: int) -> Array:
    """Maximum of the `window` bars ending at each t (inputs without NaN: highs, lows)."""
    out = np.full(len(x), np.nan)
    if window <= len(x):   # origin (w - 1) // 2 puts the filter's window at [t - w + 1, t]
        out[window - 1:] = maximum_filter1d(x, window, origin=(window - 1) // 2)[window - 1:]
    return out


def rolling_min(x: Array, window: int) -> Array:
    """Minimum of the `window` bars ending at each t (inputs without NaN: highs, lows)."""
    out = np.full(len(x), np.nan)
    if window <= len(x):
        out[window - 1:] = minimum_filter1d(x, window, origin=(window - 1) // 2)[window - 1:]
    return out


def rolling_std(x: Array, window: int) -> Array:
    """Population standard deviation (ddof 0) per window from running sums of y and y^2,
    y = x - (first finite x), a past value that keeps the sums small. A window whose values
    are all equal gets exactly 0 (flat prices must hit the `TINY` guards, and a difference of
    running sums leaves rounding noise), found exactly as max == min."""
    finite = np.flatnonzero(~np.isnan(x))
    y = x - (x[finite[0]] if len(finite) else 0.0)
    mean = rolling_sum(y, window) / window
    var = np.maximum(rolling_sum(y * y, window) / window - mean * mean, 0.0)
    sd = np.sqrt(var)
    filled = np.where(np.isnan(y), np.inf, y)      # a NaN window is NaN already
    sd[(rolling_max(filled, window) == rolling_min(filled, window)) & ~np.isnan(sd)] = 0.0
    return sd


def shift(x: Array, lag: int) -> Array:
    """x[t - lag] at t (NaN for the first `lag` bars)."""
    out = np.full(len(x), np.nan)
    if lag < len(x):
        out[lag:] = x[:len(x) - lag]
    return out


def ema(x: Array, span: int) -> Array:
    """Exponential moving average, alpha = 2 / (span + 1), seeded with the first finite value
    and shown from the span-th one on (pandas ewm(adjust=False, min_periods=span))."""
    out = np.full(len(x), np.nan)
    valid = np.flatnonzero(~np.isnan(x))
    if len(valid):
        start = int(valid[0])
        alpha = 2.0 / (span + 1)
        out[start] = x[start]
        if start + 1 < len(x):
            out[start + 1:], _ = lfilter([alpha], [1.0, alpha - 1.0], x[start + 1:],
                                         zi=[(1.0 - alpha) * x[start]])
        out[start:start + span - 1] = np.nan
    return out


class Bars:
    """One symbol's bars as float arrays, with the common series computed once (all causal).

    Moving averages and volatilities are cached per window: several indicators share them
    (rv_20 feeds rv_20 and ret_1_vol_scaled; rv_5 and rv_60 feed their own columns and the
    ratio)."""

    def __init__(self, ohlcv: pd.DataFrame):
        self.index = ohlcv.index
        self.open = ohlcv["open"].to_numpy(dtype=float)
        self.high = ohlcv["high"].to_numpy(dtype=float)
        self.low = ohlcv["low"].to_numpy(dtype=float)
        self.close = ohlcv["close"].to_numpy(dtype=float)
        self.volume = ohlcv["volume"].to_numpy(dtype=float)
        self._cache: dict[tuple[str, int], Array] = {}

    def _cached(self, kind: str, window: int, make: Callable[[], Array]) -> Array:
        key = (kind, window)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @cached_property
    def log_close(self) -> Array:
        return np.log(self.close)

    @cached_property
    def ret(self) -> Array:
        return self.log_close - shift(self.log_close, 1)

    def ema(self, span: int) -> Array:
        return self._cached("ema", span, lambda: ema(self.close, span))

    def sma(self, window: int) -> Array:
        return self._cached("sma", window, lambda: rolling_mean(self.close, window))

    def rv(self, window: int) -> Array:
        return self._cached("rv", window, lambda: rolling_std(self.ret, window))

    @cached_property
    def true_range(self) -> Array:
        prev = shift(self.close, 1)
        tr = np.maximum(self.high - self.low,
                        np.maximum(np.abs(self.high - prev), np.abs(self.low - prev)))
        tr[np.isnan(prev)] = np.nan   # the first bar has no previous close
        return tr


def safe_div(num: Array, den: Array, fill: float = 0.0) -> Array:
    """num/den, with `fill` where the denominator is ~0 (flat prices, zero volume)."""
    small = np.abs(den) <= TINY
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / np.where(small, np.nan, den)
    out[small] = fill
    return out


def wilder(values: Array, period: int) -> Array:
    """Wilder smoothing with its textbook warm-up: the first value is the simple mean of the
    first `period` inputs, then avg_t = avg_{t-1} + (x_t - avg_{t-1}) / period.

    The recursion runs as a first-order IIR filter (`scipy.signal.lfilter`), which is
    sequential in time, so a prefix gives bit-identical values. Inputs are NaN only before
    their first value (a difference or a previous close), never in between."""
    x = np.asarray(values, dtype=float)
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
    return out


# --- returns -------------------------------------------------------------------------------
for _lag in (1, 2, 5, 10, 20):
    def _ret(b: Bars, lag: int = _lag) -> Array:
        return b.log_close - shift(b.log_close, lag)
    _ret.__doc__ = f"Log return over the last {_lag} bars."
    indicator(f"ret_{_lag}", warmup=_lag)(_ret)


@indicator("ret_1_vol_scaled", warmup=20)
def ret_1_vol_scaled(b: Bars) -> Array:
    """Last return over trailing 20-bar volatility: a unit-free shock size."""
    return safe_div(b.ret, b.rv(20))


# --- trend ---------------------------------------------------------------------------------
for _w in (10, 50):
    def _sma_ratio(b: Bars, w: int = _w) -> Array:
        return np.log(b.close / b.sma(w))
    _sma_ratio.__doc__ = f"Log distance of close from its {_w}-bar simple moving average."
    indicator(f"sma_ratio_{_w}", warmup=_w - 1)(_sma_ratio)

for _w in (12, 26):
    def _ema_ratio(b: Bars, w: int = _w) -> Array:
        return np.log(b.close / b.ema(w))
    _ema_ratio.__doc__ = f"Log distance of close from its {_w}-bar exponential moving average."
    indicator(f"ema_ratio_{_w}", warmup=_w - 1)(_ema_ratio)


def _macd(b: Bars) -> Array:
    return (b.ema(12) - b.ema(26)) / b.close


@indicator("macd", warmup=25)
def macd(b: Bars) -> Array:
    """MACD line (EMA12 - EMA26) relative to price."""
    return _macd(b)


@indicator("macd_signal", warmup=33)
def macd_signal(b: Bars) -> Array:
    """Nine-bar EMA of the MACD line."""
    return ema(_macd(b), 9)


@indicator("macd_hist", warmup=33)
def macd_hist(b: Bars) -> Array:
    """MACD minus its signal line."""
    line = _macd(b)
    return line - ema(line, 9)


# --- oscillators ---------------------------------------------------------------------------
@indicator("rsi_14", warmup=14)
def rsi_14(b: Bars) -> Array:
    """RSI(14) with Wilder smoothing, centred: RSI/100 - 1/2."""
    change = b.close - shift(b.close, 1)
    gain = wilder(np.maximum(change, 0.0), 14)     # NaN stays NaN (the first bar)
    loss = wilder(np.maximum(-change, 0.0), 14)
    total = gain + loss
    return safe_div(gain, total, fill=0.5) - 0.5


@indicator("bb_pctb_20", warmup=19)
def bb_pctb_20(b: Bars) -> Array:
    """Bollinger %b (20 bars, 2 sd), unclipped: outside [0, 1] when price leaves the bands."""
    mid = b.sma(20)
    sd = rolling_std(b.close, 20)
    return safe_div(b.close - (mid - 2 * sd), 4 * sd, fill=0.5)


@indicator("stoch_k_14", warmup=13)
def stoch_k_14(b: Bars) -> Array:
    """Stochastic %K(14): where the close sits in the 14-bar high-low range."""
    hh = rolling_max(b.high, 14)
    ll = rolling_min(b.low, 14)
    return safe_div(b.close - ll, hh - ll, fill=0.5)


# --- volatility ----------------------------------------------------------------------------
for _w in (5, 20, 60):
    def _rv(b: Bars, w: int = _w) -> Array:
        return b.rv(w)
    _rv.__doc__ = f"Realised volatility: std of log returns over {_w} bars."
    indicator(f"rv_{_w}", warmup=_w)(_rv)


@indicator("rv_ratio_5_60", warmup=60)
def rv_ratio_5_60(b: Bars) -> Array:
    """Log ratio of short to long realised volatility (volatility regime)."""
    return np.log(np.maximum(safe_div(b.rv(5), b.rv(60), fill=1.0), TINY))


@indicator("parkinson_20", warmup=19)
def parkinson_20(b: Bars) -> Array:
    """Parkinson high-low volatility over 20 bars."""
    hl = np.log(b.high / b.low) ** 2
    # a mean of squares is >= 0; the running-sum mean can round a flat window to -1e-17
    return np.sqrt(np.maximum(rolling_mean(hl, 20), 0.0) / (4 * np.log(2)))


@indicator("atr_14", warmup=14)
def atr_14(b: Bars) -> Array:
    """Average true range (Wilder, 14) relative to price."""
    return wilder(b.true_range, 14) / b.close


# --- volume --------------------------------------------------------------------------------
@indicator("volume_z_20", warmup=19)
def volume_z_20(b: Bars) -> Array:
    """Z-score of log volume against the trailing 20 bars."""
    lv = np.log1p(b.volume)
    return safe_div(lv - rolling_mean(lv, 20), rolling_std(lv, 20))


@indicator("volume_ratio_5_20", warmup=19)
def volume_ratio_5_20(b: Bars) -> Array:
    """Log of 5-bar over 20-bar mean volume."""
    return (np.log1p(rolling_mean(b.volume, 5))
            - np.log1p(rolling_mean(b.volume, 20)))


# --- bar shape ------------------------------------------------------------------------------
@indicator("range_hl", warmup=0)
def range_hl(b: Bars) -> Array:
    """Log high-low range of the bar."""
    return np.log(b.high / b.low)


@indicator("gap", warmup=1)
def gap(b: Bars) -> Array:
    """Opening gap: log(open / previous close)."""
    return np.log(b.open / shift(b.close, 1))


@indicator("intraday_ret", warmup=0)
def intraday_ret(b: Bars) -> Array:
    """Open-to-close log return."""
    return np.log(b.close / b.open)


@indicator("close_location", warmup=0)
def close_location(b: Bars) -> Array:
    """Where the close sits in the bar's range, centred: 0 = mid-range."""
    return safe_div(b.close - b.low, b.high - b.low, fill=0.5) - 0.5


# --- distance from extremes -------------------------------------------------------------------
@indicator("dist_max_60", warmup=59)
def dist_max_60(b: Bars) -> Array:
    """Log distance below the 60-bar high."""
    return np.log(b.close / rolling_max(b.high, 60))


@indicator("dist_min_60", warmup=59)
def dist_min_60(b: Bars) -> Array:
    """Log distance above the 60-bar low."""
    return np.log(b.close / rolling_min(b.low, 60))


@indicator("drawdown", warmup=0)
def drawdown(b: Bars) -> Array:
    """Log distance below the running (expanding) maximum close."""
    return b.log_close - np.maximum.accumulate(b.log_close)


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
    values = np.empty((len(ohlcv), len(chosen)))
    for j, name in enumerate(chosen):
        values[:, j] = INDICATORS[name].fn(bars)
    return pd.DataFrame(values, index=ohlcv.index, columns=chosen)
