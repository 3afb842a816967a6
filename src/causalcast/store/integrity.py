"""Damage in a local store is found, named in one line and refused, never read around.

Why a check of our own before deltalake reads: deltalake treats an empty latest commit file
as "no such commit" and silently serves the previous version, and its errors for a damaged
commit or data file are multi-line backtraces that do not name the file. The checks here are
cheap (the commit log is small JSON; data files are only inspected once a read has failed),
and they change nothing on disk: the evidence is left as found.

Known limit: a Delta table has no head pointer outside its log, so a *deleted* newest commit
file is indistinguishable from a table that never had that commit; the store then serves the
previous version (every earlier commit is still checked). Flipped bytes inside a Parquet data
page are not detected either: deltalake writes no page checksums.
"""

from __future__ import annotations

import json
from pathlib import Path

LOG_FOLDER = "_delta_log"


class StoreDamagedError(ValueError):
    """A store file is missing, empty, unreadable or replaced; the message names it."""


def first_line(exc: BaseException) -> str:
    """An error's first line: deltalake appends backtraces and colour codes below it."""
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def check_log(table_dir: Path) -> None:
    """Every commit file of the table's log is a regular, non-empty file of JSON lines, and
    the versions run without a gap from the first to the last."""
    log = table_dir / LOG_FOLDER
    if not log.is_dir():
        return   # no table yet
    commits = sorted(p for p in log.iterdir() if p.suffix == ".json" and p.stem.isdigit())
    for path in commits:
        if path.is_symlink():
            raise StoreDamagedError(f"{path}: commit file replaced by a symlink; refusing to "
                                    "read the store")
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreDamagedError(f"{path}: unreadable commit file ({first_line(exc)})"
                                    ) from None
        if not text.strip():
            raise StoreDamagedError(f"{path}: empty commit file (truncated); refusing to "
                                    "read the store")
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError as exc:
                raise StoreDamagedError(f"{path}: damaged commit file, line {number} "
                                        f"({first_line(exc)})") from None
    versions = [int(p.stem) for p in commits]
    if versions:
        missing = sorted(set(range(versions[0], versions[-1] + 1)) - set(versions))
        if missing:
            raise StoreDamagedError(f"{log / f'{missing[0]:020d}.json'}: commit file missing "
                                    f"({len(missing)} missing between versions {versions[0]} "
                                    f"and {versions[-1]})")


def find_damaged_file(file_uris: list[str], *, deep: bool = True) -> str | None:
    """The first local data file of a table version (`DeltaTable.file_uris()`) that is
    missing, a symlink or (with `deep`) not readable Parquet, as a one-line message; None if
    every file passes."""
    from urllib.parse import unquote

    import pyarrow.parquet as pq

    for uri in file_uris:
        path = Path(unquote(uri.removeprefix("file://")))
        if path.is_symlink():
            return f"{path}: data file replaced by a symlink"
        if not path.is_file():
            return f"{path}: data file missing"
        if not deep:
            continue
        try:
            pq.read_table(path)
        except Exception as exc:  # pyarrow's ArrowInvalid, OSError and kin
            return f"{path}: damaged data file ({first_line(exc)})"
    return None


def read_failure(file_uris: list[str] | None, exc: BaseException,
                 where: str) -> StoreDamagedError:
    """The error to raise when reading a table version failed: the damaged file named when
    it can be found (local stores), else the first line of what the reader said."""
    found = None if file_uris is None else find_damaged_file(file_uris)
    return StoreDamagedError(found or f"{where}: cannot read the table ({first_line(exc)})")
