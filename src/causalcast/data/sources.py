"""Loading OHLCV bars from CSV/Parquet folders and from the real samples shipped by packages.

Every loader returns the canonical frame: a tz-naive `DatetimeIndex` named ``date`` and float
columns ``open, high, low, close, volume``; validation (data.quality) runs on that frame.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from causalcast.data.quality import (
    REQUIRED_COLUMNS,
    DataReport,
    DataValidationError,
    Problem,
    canonical_name,
    require_columns,
    validate_ohlcv,
)

log = logging.getLogger(__name__)

DATE_ALIASES = ("date", "datetime", "timestamp", "time")
EXTRA_COLUMNS = ("adj_close", "dividends", "splits")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
SAMPLES = ("msft", "goog")


def _parse_dates(raw: pd.Series, source: str, line_offset: int) -> pd.DatetimeIndex:
    parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataValidationError(source, [
            Problem("date", f"row {r + 1} (line {r + line_offset})",
                    f"unparsable date {raw.iloc[r]!r}") for r in rows])
    return pd.DatetimeIndex(parsed).tz_convert(None).as_unit("ns")


def _parse_numbers(frame: pd.DataFrame, source: str, line_offset: int) -> pd.DataFrame:
    out = {}
    problems: list[Problem] = []
    for col in (*REQUIRED_COLUMNS, *EXTRA_COLUMNS):
        if col not in frame.columns:
            continue
        raw = frame[col]
        num = pd.to_numeric(raw, errors="coerce").astype(float)
        junk = num.isna().to_numpy() & raw.notna().to_numpy()
        if raw.dtype == object or pd.api.types.is_string_dtype(raw):
            junk &= ~raw.astype(str).str.strip().str.lower().isin(["nan", "", "null", "none"])
        for r in np.flatnonzero(junk):
            problems.append(Problem(col, f"row {r + 1} (line {r + line_offset})",
                                    f"not a number: {raw.iloc[r]!r}"))
        out[col] = num.to_numpy()
    if problems:
        raise DataValidationError(source, problems)
    return pd.DataFrame(out, index=frame.index)


def apply_adjustment(frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Open, high, low and close scaled by ``adj_close / close`` (split and dividend adjusted),
    and whether anything changed. Bars without an adjusted close (NaN) keep their raw prices:
    the factor there is 1, and a frame without ``adj_close`` comes back unchanged."""
    if "adj_close" not in frame.columns:
        return frame, False
    factor = (frame["adj_close"] / frame["close"]).to_numpy(dtype=float)
    factor = np.where(np.isfinite(factor), factor, 1.0)
    if np.allclose(factor, 1.0):
        return frame, False
    out = frame.copy()
    for col in ("open", "high", "low", "close"):
        out[col] = out[col].to_numpy(dtype=float) * factor
    return out, True


def to_canonical(frame: pd.DataFrame, source: str, *, adjust: bool = True,
                 line_offset: int = 2, keep_extra: bool = False) -> tuple[pd.DataFrame, bool]:
    """Rename Yahoo-style columns (any case), parse dates and numbers, optionally apply
    Adj Close. Returns the frame and whether prices were adjusted. With `keep_extra` the
    ``adj_close``, ``dividends`` and ``splits`` columns the input has are kept too (the store
    keeps raw and adjusted prices side by side)."""
    frame = frame.rename(columns=canonical_name)
    if isinstance(frame.index, pd.DatetimeIndex) and not any(
            a in frame.columns for a in DATE_ALIASES):
        frame = frame.reset_index(names="date")
    date_col = next((a for a in DATE_ALIASES if a in frame.columns), None)
    if date_col is None:
        raise DataValidationError(source, [Problem(
            "date", "header", f"missing column (have {list(frame.columns)})")])
    require_columns(frame, source)
    frame = frame.reset_index(drop=True)
    index = _parse_dates(frame[date_col], source, line_offset)
    numbers = _parse_numbers(frame, source, line_offset)
    numbers.index = index
    numbers.index.name = "date"
    adjusted = False
    if adjust:
        numbers, adjusted = apply_adjustment(numbers)
    columns = list(REQUIRED_COLUMNS)
    if keep_extra:
        columns += [c for c in EXTRA_COLUMNS if c in numbers.columns]
    return numbers[columns], adjusted


def read_file(path: Path, *, adjust: bool = True,
              keep_extra: bool = False) -> tuple[pd.DataFrame, bool]:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind not in ("csv", "parquet"):
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")
    raw = _read_raw(path, kind)
    return to_canonical(raw, str(path), adjust=adjust, line_offset=2 if kind == "csv" else 0,
                        keep_extra=keep_extra)


def _read_raw(path: Path, kind: str) -> pd.DataFrame:
    """The file's table as read, or a ValueError naming the file: a binary, empty or
    truncated file must not surface as a bare codec or parser message without its name."""
    try:
        if kind == "csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        return pd.read_parquet(path)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text CSV file (undecodable bytes; binary "
                         "or wrong encoding)") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty file (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # pyarrow's ArrowInvalid and kin: a damaged Parquet file
        if kind == "parquet":
            raise ValueError(f"{path}: not a readable Parquet file "
                             f"({type(exc).__name__}: {exc})") from None
        raise


def load_sample(name: str) -> pd.DataFrame:
    """A real daily sample from an installed package, loaded at run time (never copied here).

    ``msft``: MSFT 1986-2017 from pmdarima (MIT). ``goog``: GOOG 2004-2013 from backtesting.py
    (AGPL, installed with the ``[bench]`` extra only)."""
    key = name.lower()
    if key == "msft":
        from pmdarima.datasets import load_msft

        raw = load_msft()
    elif key == "goog":
        try:
            from backtesting.test import GOOG
        except ImportError as exc:
            raise ImportError("sample 'goog' needs backtesting.py: pip install "
                              "'causalcast[bench]'") from exc
        raw = GOOG.copy()
    else:
        raise ValueError(f"sample: unknown {name!r}; choose from {list(SAMPLES)}")
    frame, _ = to_canonical(raw, f"sample:{key}")
    return frame


def data_files(folder: Path) -> list[Path]:
    """The CSV/Parquet files of a folder, one per symbol (file stem, upper case)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"{folder}: no .csv or .parquet files")
    stems = [p.stem.upper() for p in files]
    dupes = {s for s in stems if stems.count(s) > 1}
    if dupes:
        raise ValueError(f"{folder}: more than one file for symbols {sorted(dupes)}")
    return files


def load_ohlcv(
    source: str | Path | Iterable[str | Path],
    *,
    symbols: Iterable[str] | None = None,
    repairs: frozenset[str] | set[str] = frozenset(),
    min_bars: int | None = None,
    adjust: bool = True,
    with_reports: bool = False,
) -> dict[str, pd.DataFrame] | tuple[dict[str, pd.DataFrame], dict[str, DataReport]]:
    """Load and validate bars, one frame per symbol (symbol = file stem, upper case).

    `source` is a folder of CSV/Parquet files, one file, ``sample:msft`` / ``sample:goog``, or a
    list of those. Invalid data raises `DataValidationError` naming file, field and place; the
    named `repairs` (see data.quality.REPAIRS) are the only changes ever made, and each is
    counted in the per-symbol `DataReport` returned when `with_reports` is true."""
    sources = [source] if isinstance(source, (str, Path)) else list(source)
    wanted = {s.upper() for s in symbols} if symbols is not None else None
    frames: dict[str, pd.DataFrame] = {}
    reports: dict[str, DataReport] = {}
    for src in sources:
        for symbol, frame, origin, adjusted in _iter_source(src, adjust):
            if wanted is not None and symbol not in wanted:
                continue
            if symbol in frames:
                raise ValueError(f"{origin}: symbol {symbol} loaded twice")
            clean, report = validate_ohlcv(frame, origin, min_bars=min_bars, repairs=repairs)
            report.adjusted = adjusted
            frames[symbol], reports[symbol] = clean, report
            for warning in report.warnings:
                log.info("%s: %s", origin, warning)
    if wanted is not None and (absent := wanted - frames.keys()):
        raise FileNotFoundError(f"symbols not found in {sources}: {sorted(absent)}")
    return (frames, reports) if with_reports else frames


def _iter_source(src: str | Path, adjust: bool):
    text = str(src)
    if text.lower().startswith("sample:"):
        name = text.split(":", 1)[1]
        yield name.upper(), load_sample(name), f"sample:{name.lower()}", False
        return
    path = Path(src)
    if path.is_dir():
        for file in data_files(path):
            frame, adjusted = read_file(file, adjust=adjust)
            yield file.stem.upper(), frame, str(file), adjusted
    elif path.is_file():
        frame, adjusted = read_file(path, adjust=adjust)
        yield path.stem.upper(), frame, str(path), adjusted
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")


def write_ohlcv(frames: dict[str, pd.DataFrame], folder: str | Path,
                fmt: str = "csv") -> list[Path]:
    """Write one Yahoo-style file per symbol, atomically (temp name, fsync, rename)."""
    from causalcast.io import atomic_write_bytes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for symbol, frame in frames.items():
        out = frame.rename(columns=str.capitalize).rename_axis("Date").reset_index()
        path = folder / f"{symbol}.{fmt}"
        if fmt == "csv":
            data = out.to_csv(index=False, float_format="%.10g").encode()
        elif fmt == "parquet":
            import io

            buffer = io.BytesIO()
            out.to_parquet(buffer, index=False)
            data = buffer.getvalue()
        else:
            raise ValueError(f"fmt: unsupported {fmt!r}; use csv or parquet")
        atomic_write_bytes(path, data)
        paths.append(path)
    return paths
