"""Validation of OHLCV bars, with errors that say which file, which row or date, and what is wrong.

Nothing is repaired silently: every repair is opt-in by name, logged, and counted in the
returned `DataReport`, so a report always says how far the data on disk differs from the data
the models saw.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_COLUMNS = (*PRICE_COLUMNS, "volume")
ADJ_ALIASES = ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close")
SPLIT_ALIASES = ("stock splits", "stock_splits", "splits")
REPAIRS = frozenset({"sort", "drop_duplicates", "drop_nonfinite", "fix_high_low",
                     "drop_nonpositive", "clip_volume"})
MAX_PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class Problem:
    """One defect: where (`location`: a date or a row), which field, and what is wrong."""

    field: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.field} at {self.location}: {self.message}"


class DataValidationError(ValueError):
    """Raised for bad input; names the source, the field and the place of every problem."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - MAX_PROBLEMS_SHOWN
        suffix = f"; ... and {more} more" if more > 0 else ""
        super().__init__(f"{source}: {shown}{suffix}")


@dataclass
class DataReport:
    """What validation found and what (opt-in) repairs changed, per source."""

    source: str
    n_bars: int = 0
    start: str | None = None
    end: str | None = None
    bar_spacing: str | None = None
    repairs: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    adjusted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "n_bars": self.n_bars, "start": self.start, "end": self.end,
            "bar_spacing": self.bar_spacing, "repairs": dict(self.repairs),
            "warnings": list(self.warnings), "adjusted": self.adjusted,
        }


def _ns(index: pd.Index) -> np.ndarray:
    """Timestamps as int64 nanoseconds whatever the index resolution (pandas 3 parses to us)."""
    return pd.DatetimeIndex(index).as_unit("ns").asi8


def _where(index: pd.Index, mask: np.ndarray) -> list[str]:
    return [_fmt_ts(ts) for ts in index[mask]]


def _fmt_ts(ts: Any) -> str:
    ts = pd.Timestamp(ts)
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()


def _repair(report: DataReport, name: str, count: int, repairs: frozenset[str]) -> bool:
    if name not in repairs or count == 0:
        return False
    report.repairs[name] = report.repairs.get(name, 0) + count
    log.warning("%s: repair %r changed %d bars", report.source, name, count)
    return True


def _check_order(df: pd.DataFrame, report: DataReport, repairs: frozenset[str]) -> pd.DataFrame:
    idx = df.index
    back = np.flatnonzero(np.diff(_ns(idx)) < 0) + 1
    if len(back):
        if not _repair(report, "sort", len(back), repairs):
            raise DataValidationError(report.source, [
                Problem("date", _fmt_ts(idx[i]),
                        f"timestamps not sorted: comes after {_fmt_ts(idx[i - 1])} (repair: sort)")
                for i in back])
        df = df.sort_index(kind="stable")
    dup = df.index.duplicated(keep="last")
    if dup.any():
        if not _repair(report, "drop_duplicates", int(dup.sum()), repairs):
            raise DataValidationError(report.source, [
                Problem("date", loc, "duplicate timestamp (repair: drop_duplicates keeps last)")
                for loc in _where(df.index, dup)])
        df = df[~dup]
    return df


def _matrix(df: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """Columns as one float matrix, column by column: selecting a sub-frame first costs more
    than the checks for the one-bar batches the store validates on every append."""
    return np.column_stack([df[c].to_numpy(dtype=float) for c in columns])


def _check_values(df: pd.DataFrame, report: DataReport, repairs: frozenset[str]) -> pd.DataFrame:
    values = _matrix(df, REQUIRED_COLUMNS)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = bad.any(axis=1)
        if not _repair(report, "drop_nonfinite", int(rows.sum()), repairs):
            problems = [Problem(REQUIRED_COLUMNS[j], _fmt_ts(df.index[i]),
                                f"{'NaN' if np.isnan(values[i, j]) else 'infinite'} value")
                        for i, j in zip(*np.nonzero(bad), strict=True)]
            raise DataValidationError(report.source, problems)
        df = df[~rows]
    prices = _matrix(df, PRICE_COLUMNS)
    nonpos = prices <= 0
    if nonpos.any():
        rows = nonpos.any(axis=1)
        if not _repair(report, "drop_nonpositive", int(rows.sum()), repairs):
            raise DataValidationError(report.source, [
                Problem(PRICE_COLUMNS[j], _fmt_ts(df.index[i]),
                        f"price must be > 0, got {prices[i, j]:g}")
                for i, j in zip(*np.nonzero(nonpos), strict=True)])
        df = df[~rows]
    return _check_bar_shape(df, report, repairs)


def _check_bar_shape(df: pd.DataFrame, report: DataReport,
                     repairs: frozenset[str]) -> pd.DataFrame:
    o, h, lo, c = (df[k].to_numpy(dtype=float) for k in PRICE_COLUMNS)
    high_bad = h < np.maximum(o, c)
    low_bad = lo > np.minimum(o, c)
    if high_bad.any() or low_bad.any():
        count = int((high_bad | low_bad).sum())
        if not _repair(report, "fix_high_low", count, repairs):
            problems = [Problem("high", _fmt_ts(df.index[i]),
                                f"high {h[i]:g} below max(open, close) {max(o[i], c[i]):g}")
                        for i in np.flatnonzero(high_bad)]
            problems += [Problem("low", _fmt_ts(df.index[i]),
                                 f"low {lo[i]:g} above min(open, close) {min(o[i], c[i]):g}")
                         for i in np.flatnonzero(low_bad)]
            raise DataValidationError(report.source, problems)
        df = df.copy()
        df["high"] = np.maximum.reduce([h, o, c])
        df["low"] = np.minimum.reduce([lo, o, c])
    vol = df["volume"].to_numpy(dtype=float)
    neg = vol < 0
    if neg.any():
        if not _repair(report, "clip_volume", int(neg.sum()), repairs):
            raise DataValidationError(report.source, [
                Problem("volume", loc, "negative volume") for loc in _where(df.index, neg)])
        df = df.copy()
        df.loc[neg, "volume"] = 0.0
    return df


def _report_gaps(df: pd.DataFrame, report: DataReport, gap_factor: float) -> None:
    """Weekend and holiday gaps are normal; a gap far above the usual spacing is reported."""
    if len(df) < 3:
        return
    steps = np.diff(_ns(df.index))
    spacing = float(np.median(steps))
    report.bar_spacing = str(pd.Timedelta(int(spacing)))
    day = pd.Timedelta(days=1).value
    # Daily bars: a long weekend is 4 calendar days; intraday: overnight/weekend closures are
    # normal, so compare with a trading-week closure rather than the bar spacing.
    limit = max(gap_factor * spacing, 5 * day) if spacing >= day / 2 else 4 * day
    for i in np.flatnonzero(steps > limit):
        gap = pd.Timedelta(int(steps[i]))
        report.warnings.append(
            f"date at {_fmt_ts(df.index[i + 1])}: gap of {gap} since {_fmt_ts(df.index[i])} "
            f"(usual spacing {pd.Timedelta(int(spacing))})")


def canonical_name(column: object) -> str:
    """``"Adj Close"`` -> ``adj_close``, ``"Stock Splits"`` -> ``splits``, ``" Open"`` ->
    ``open``: the one mapping from vendor column names to the names every stage reads."""
    name = str(column).strip().lower()
    if name in ADJ_ALIASES:
        return "adj_close"
    if name in SPLIT_ALIASES:
        return "splits"
    return name


def normalize_columns(frame: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """The frame with canonical column names (Yahoo-style ``Open``/``Adj Close``, any case),
    refused with a `DataValidationError` naming each missing OHLCV column.

    Users arrive with frames from yfinance, CSV exports and notebooks; renaming here once means
    features, the leakage audit and the forecast APIs never fail with ``KeyError: 'open'``.
    Names only: prices are never adjusted here (see data.sources.apply_adjustment)."""
    if all(isinstance(c, str) and c == canonical_name(c) for c in frame.columns):
        renamed = frame
    else:
        renamed = frame.rename(columns=canonical_name)
        if renamed.columns.duplicated().any():
            dupes = sorted(set(renamed.columns[renamed.columns.duplicated()]))
            raise DataValidationError(source, [
                Problem(c, "header", f"more than one column maps to {c!r} "
                        f"(have {list(frame.columns)})") for c in dupes])
    require_columns(renamed, source)
    return renamed


def require_columns(frame: pd.DataFrame, source: str) -> None:
    """Every OHLCV column present, or one problem per missing column naming what there is."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(source, [
            Problem(c, "header", f"missing column (have {list(frame.columns)})")
            for c in missing])


def validate_ohlcv(
    df: pd.DataFrame,
    source: str = "data",
    *,
    min_bars: int | None = None,
    repairs: frozenset[str] | set[str] = frozenset(),
    gap_factor: float = 7.0,
) -> tuple[pd.DataFrame, DataReport]:
    """Check an OHLCV frame (DatetimeIndex; columns in any case, Yahoo-style names accepted and
    returned canonical) and return it unchanged unless a named repair was asked for. Raises
    `DataValidationError` naming field and place."""
    repairs = frozenset(repairs)
    unknown = repairs - REPAIRS
    if unknown:
        raise ValueError(f"repairs: unknown {sorted(unknown)}; choose from {sorted(REPAIRS)}")
    report = DataReport(source=source)
    df = normalize_columns(df, source)
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataValidationError(source, [Problem("date", "index", "not a DatetimeIndex")])
    df = _check_order(df, report, repairs)
    df = _check_values(df, report, repairs)
    if min_bars is not None and len(df) < min_bars:
        raise DataValidationError(source, [Problem(
            "bars", f"{len(df)} bars",
            f"fewer bars than needed: {min_bars} (lookback + largest horizon + split needs)")])
    _report_gaps(df, report, gap_factor)
    report.n_bars = len(df)
    if len(df):
        report.start, report.end = _fmt_ts(df.index[0]), _fmt_ts(df.index[-1])
    return df, report

