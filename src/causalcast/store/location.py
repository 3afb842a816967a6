"""Where a store's tables live, and the lock that serialises its local writers.

A store is a root URI: a local folder (default ``.causalcast/data``) or an object-store prefix
(``s3://bucket/prefix``) with deltalake storage options. Every table URI is built here, so
moving a store to object storage changes this module's input, not the code that reads and
writes tables.

Why a lock when Delta Lake commits are already atomic: a write first *reads* the stored bars it
overlaps to tell new bars from revisions; two writers racing between that read and their commit
could both decide a bar is new. Local writers therefore hold an exclusive file lock (``flock``,
released by the kernel when a writer is SIGKILLed) around read-decide-commit. On object
storage there is no such lock yet: each commit is still atomic (Delta's conditional put of the
next log entry), so nothing partial is ever visible, but two writers appending the same new bars
at the same moment could both store them. Until a lock provider is wired in, run one writer per
object-storage store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

DEFAULT_LOCATION = Path(".causalcast") / "data"
BARS_TABLE = "bars"
CHAINS_FOLDER = "chains"
LOCK_TIMEOUT_S = 120.0


class StoreBusyError(TimeoutError):
    """Another writer held the store's lock for longer than the timeout; nothing was
    written. Readers are never blocked by the lock."""


@dataclass(frozen=True)
class StoreLocation:
    """A store root plus the storage options deltalake needs for remote roots."""

    root: str
    storage_options: dict[str, str] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, where: str | Path | StoreLocation | None = None,
           storage_options: dict[str, str] | None = None) -> StoreLocation:
        """`where` as a location: None is the default store, a path is a local store."""
        if isinstance(where, StoreLocation):
            return where
        if where is None or str(where) == "":
            where = DEFAULT_LOCATION
        text = str(where)
        if "://" not in text:
            text = str(Path(text).expanduser().resolve())
        return cls(text.rstrip("/"), storage_options)

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    def table_uri(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def local_path(self, *parts: str) -> Path:
        if not self.is_local:
            raise ValueError(f"{self.root}: not a local store")
        return Path(self.root.removeprefix("file://"), *parts)

    @contextlib.contextmanager
    def writer_lock(self, name: str) -> Iterator[None]:
        """Exclusive for local stores (see module docstring); a no-op on object storage."""
        if not self.is_local:
            yield
            return
        folder = self.local_path(".locks")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.lock"
        lock = FileLock(str(path), timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise StoreBusyError(f"{path}: held by another process (a writer) for more than "
                                 f"{LOCK_TIMEOUT_S:g} s; nothing written, try again when it "
                                 "has finished") from None
        try:
            yield
        finally:
            lock.release()
