"""Content-addressed artifact store on a local filesystem.

An object is stored at ``objects/ab/cdef...`` where ``abcdef...`` is the SHA-256 of its bytes.
Writes go through `causalcast.io.atomic_write_bytes` (temporary name in the same folder, fsync,
``os.replace``, fsync of the folder), so an object name exists only once the complete bytes are on
disk: a writer killed mid-write leaves at most a hidden ``.<name>.*.tmp`` file, which
`digests` never lists and `remove_temp_files` later removes. Objects are immutable (mode 0444)
and reading re-hashes them, so a corrupted file is refused rather than loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from causalcast.io import atomic_write_bytes
from causalcast.registry.records import ArtifactError, RegistryError

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
#: Names the registry database the objects belong to (see `Registry.gc`).
OWNER_FILE = "OWNER"


def check_digest(digest: str) -> str:
    """Refuse anything that is not a lowercase 64-hex SHA-256 (it becomes a path)."""
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise RegistryError(f"artifact digest: expected 64 lowercase hex characters, "
                            f"got {digest!r}")
    return digest


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class FileArtifactStore:
    """`ArtifactStore` over a local folder (``root/objects``)."""

    def __init__(self, root: str | Path, *, create: bool = True) -> None:
        """``create=False`` (read-only use) makes no folder; a missing one lists no objects."""
        self.root = Path(root)
        self.objects = self.root / "objects"
        if create:
            self.objects.mkdir(parents=True, exist_ok=True)

    @property
    def _owner_file(self) -> Path:
        return self.objects / OWNER_FILE

    def read_owner(self) -> str | None:
        try:
            return self._owner_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def write_owner(self, owner: str) -> None:
        atomic_write_bytes(self._owner_file, owner.encode())

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.objects / digest[:2] / digest[2:]

    def location(self, digest: str) -> str:
        return str(self.path(digest))

    def put(self, data: bytes) -> str:
        """Write once; a second put of the same bytes only refreshes the modification time so
        that gc's grace period counts from the latest writer that means to reference it."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise RegistryError(f"artifact: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        digest = sha256_hex(data)
        target = self.path(digest)
        try:
            # Same name, same size and the stored bytes still hash to it: the object is there.
            # A damaged copy is healed below with the caller's verified bytes, so re-registering
            # never yields a version whose artifact cannot be read.
            if target.stat().st_size == len(data) and _hash_file(target) == digest:
                os.utime(target)
                return digest
        except FileNotFoundError:  # absent, or removed by gc between stat() and utime()
            pass
        try:
            atomic_write_bytes(target, data)
        except OSError as exc:  # disk full, read-only or vanished folder: nothing was stored
            raise RegistryError(f"artifact store {self.objects}: cannot write object {digest} "
                                f"({exc.strerror or exc}); nothing stored") from None
        # Immutable by convention and by mode. If a concurrent gc already took it, register
        # re-puts it under the lock.
        with contextlib.suppress(FileNotFoundError):
            os.chmod(target, 0o444)
        return digest

    def get(self, digest: str) -> bytes:
        target = self.path(digest)
        try:
            data = target.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact {digest}: missing ({target})") from exc
        actual = sha256_hex(data)
        if actual != digest:
            raise ArtifactError(f"artifact {digest}: corrupt, its bytes hash to {actual} "
                                f"({target})")
        return data

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return 0

    def digests(self) -> Iterator[str]:
        if not self.objects.is_dir():
            return
        for folder in sorted(self.objects.iterdir()):
            if not folder.is_dir() or len(folder.name) != 2:
                continue
            for entry in sorted(folder.iterdir()):
                digest = folder.name + entry.name
                if _HEX64.fullmatch(digest) and entry.is_file():
                    yield digest

    def age_seconds(self, digest: str) -> float:
        try:
            return time.time() - self.path(digest).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def check(self, digest: str) -> str | None:
        target = self.path(digest)
        try:
            actual = _hash_file(target)
        except FileNotFoundError:
            return f"artifact {digest}: missing ({target})"
        if actual != digest:
            return f"artifact {digest}: corrupt, its bytes hash to {actual} ({target})"
        return None

    def _temp_paths(self) -> Iterator[Path]:
        if not self.objects.is_dir():
            return
        for folder in self.objects.iterdir():
            if folder.is_dir():
                yield from (p for p in folder.iterdir()
                            if p.name.startswith(".") and p.name.endswith(".tmp"))

    def temp_files(self) -> list[str]:
        return sorted(str(p) for p in self._temp_paths())

    def remove_temp_files(self, older_than_s: float) -> int:
        """Remove temporary files of interrupted writes older than the grace period (a younger
        one may belong to a write in progress)."""
        removed = 0
        now = time.time()
        for path in list(self._temp_paths()):
            try:
                if now - path.stat().st_mtime >= older_than_s:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
