"""Files users already have -> bar batches for the store (one symbol per file, the file stem).

CSV and Parquet, Yahoo-style (``Date, Open, ..., Adj Close``) or lower-case columns; prices are
read *raw* with the adjusted close kept beside them, so the store never loses either.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from causalcast.data.sources import SUFFIXES, data_files, read_file


def files_of(paths: Iterable[str | Path]) -> list[Path]:
    """Every data file named, folders expanded; each symbol (file stem) at most once."""
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files += data_files(path)
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise ValueError(f"{path}: unsupported file type {path.suffix!r}; "
                                 "use .csv or .parquet")
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    stems = [f.stem.upper() for f in files]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise ValueError(f"import: more than one file for symbols {dupes}")
    return files


def read_batches(paths: Iterable[str | Path]) -> dict[str, pd.DataFrame]:
    """One raw frame (plus ``adj_close``/``dividends``/``splits`` where present) per symbol."""
    out = {}
    for file in files_of(paths):
        frame, _ = read_file(file, adjust=False, keep_extra=True)
        out[file.stem.upper()] = frame
    return out
