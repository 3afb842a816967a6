"""Content-addressed artifact store on any fsspec filesystem (``s3://bucket/prefix`` via
s3fs, ``file:///path``, ...), for registries whose writers and readers are on several hosts.

Same layout and promises as `file_artifacts.FileArtifactStore`: an object lives at
``<root>/objects/ab/cdef...`` named by the SHA-256 of its bytes, is written once, and every
read re-hashes it. Atomicity: the bytes are first written under a temporary name
(``objects/ab/.cdef....<random>.tmp``) and then moved onto the object name; on object storage
the move is a server-side copy, which, like any PUT, makes the object appear complete or not at
all. A writer killed mid-write leaves only the temporary name, which `digests` never lists and
`remove_temp_files` removes after the grace period.

Listing caches are off: several processes and hosts write the same prefix, and a cached listing
would show gc an object as absent (or present) when it is not. S3 endpoint and credentials come
from the usual ``AWS_*`` variables (``AWS_ENDPOINT_URL`` for an S3-compatible server).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from causalcast.registry.file_artifacts import OWNER_FILE, check_digest, sha256_hex
from causalcast.registry.records import ArtifactError, RegistryError

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TEMP = re.compile(r"\.[0-9a-f]{62}\.[0-9a-f]{32}\.tmp")


def _filesystem(url: str) -> tuple[Any, str]:
    protocol, _root = fsspec.core.split_protocol(url)
    protocol = protocol or "file"
    options: dict[str, Any] = {"skip_instance_cache": True}
    if protocol in ("s3", "s3a"):
        options["use_listings_cache"] = False
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
    try:
        fs = fsspec.filesystem(protocol, **options)
    except (ImportError, ValueError) as exc:
        raise RegistryError(f"--artifacts {url}: no filesystem for {protocol!r} ({exc}); "
                            f"install its fsspec package (s3fs for s3://)") from None
    return fs, fs._strip_protocol(url).rstrip("/")


class FsspecArtifactStore:
    """`ArtifactStore` over an fsspec URL (``<url>/objects``)."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url.rstrip("/")
        self.fs, root = _filesystem(url)
        self.objects = f"{root}/objects"
        if create:
            try:
                self.fs.makedirs(self.objects, exist_ok=True)
            except OSError as exc:
                raise RegistryError(f"--artifacts {url}: cannot create it ({exc})") from None

    # ------------------------------------------------------------------ names
    def _path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self.objects}/{digest[:2]}/{digest[2:]}"

    def location(self, digest: str) -> str:
        return f"{self.url}/objects/{digest[:2]}/{digest[2:]}"

    def _info(self, path: str) -> dict[str, Any] | None:
        try:
            return self.fs.info(path)
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ owner
    def read_owner(self) -> str | None:
        try:
            return self.fs.cat_file(f"{self.objects}/{OWNER_FILE}").decode().strip() or None
        except FileNotFoundError:
            return None

    def write_owner(self, owner: str) -> None:
        self._write_atomically(f"{self.objects}/{OWNER_FILE}", owner.encode())

    # ------------------------------------------------------------------ objects
    def _write_atomically(self, target: str, data: bytes) -> None:
        """Local disks: temporary name, then rename. Object storage: one PUT, which the
        server makes visible only complete (so a killed writer leaves nothing behind)."""
        folder, name = target.rsplit("/", 1)
        try:
            if isinstance(self.fs, LocalFileSystem):
                temp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
                self.fs.makedirs(folder, exist_ok=True)
                self.fs.pipe_file(temp, data)
                self.fs.mv(temp, target)
            else:
                self.fs.pipe_file(target, data)
        except OSError as exc:
            raise RegistryError(f"artifact store {self.url}: cannot write {target} ({exc}); "
                                f"nothing stored") from None

    def put(self, data: bytes) -> str:
        """Write once. Re-putting bytes that are stored intact rewrites nothing but refreshes
        the object's age (gc's grace period counts from the latest writer); a damaged copy is
        replaced by the caller's verified bytes."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise RegistryError(f"artifact: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        digest = sha256_hex(data)
        target = self._path(digest)
        if isinstance(self.fs, LocalFileSystem):
            info = self._info(target)
            if info is not None and info.get("size") == len(data) and self.check(digest) is None:
                os.utime(target)
                return digest
        # Object storage has no touch: writing the same bytes again (one PUT) is how its age is
        # refreshed, and it replaces a damaged copy too.
        self._write_atomically(target, data)
        return digest

    def get(self, digest: str) -> bytes:
        target = self._path(digest)
        try:
            data = self.fs.cat_file(target)
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact {digest}: missing ({self.location(digest)})") from exc
        actual = sha256_hex(data)
        if actual != digest:
            raise ArtifactError(f"artifact {digest}: corrupt, its bytes hash to {actual} "
                                f"({self.location(digest)})")
        return data

    def exists(self, digest: str) -> bool:
        info = self._info(self._path(digest))
        return info is not None and info.get("type") != "directory"

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(digest))

    def size(self, digest: str) -> int:
        info = self._info(self._path(digest))
        return 0 if info is None else int(info.get("size") or 0)

    def _listing(self) -> list[str]:
        try:
            return sorted(self.fs.find(self.objects))
        except FileNotFoundError:
            return []

    def digests(self) -> Iterator[str]:
        for path in self._listing():
            folder, name = path.rsplit("/", 2)[-2:]
            if _HEX64.fullmatch(folder + name) and len(folder) == 2:
                yield folder + name

    def _modified(self, info: dict[str, Any]) -> float:
        stamp = info.get("mtime", info.get("LastModified", info.get("last_modified")))
        if isinstance(stamp, datetime):
            return stamp.timestamp()
        return float(stamp) if stamp is not None else time.time()

    def age_seconds(self, digest: str) -> float:
        info = self._info(self._path(digest))
        return 0.0 if info is None else max(0.0, time.time() - self._modified(info))

    def check(self, digest: str) -> str | None:
        try:
            actual = sha256_hex(self.fs.cat_file(self._path(digest)))
        except FileNotFoundError:
            return f"artifact {digest}: missing ({self.location(digest)})"
        if actual != digest:
            return f"artifact {digest}: corrupt, its bytes hash to {actual} " \
                   f"({self.location(digest)})"
        return None

    def _temp_paths(self) -> list[str]:
        return [p for p in self._listing() if _TEMP.fullmatch(p.rsplit("/", 1)[-1])
                or p.rsplit("/", 1)[-1].startswith(f".{OWNER_FILE}.")]

    def temp_files(self) -> list[str]:
        return self._temp_paths()

    def remove_temp_files(self, older_than_s: float) -> int:
        """Remove temporary objects of interrupted writes older than the grace period."""
        removed = 0
        for path in self._temp_paths():
            info = self._info(path)
            if info is not None and time.time() - self._modified(info) >= older_than_s:
                try:
                    self.fs.rm_file(path)
                    removed += 1
                except FileNotFoundError:
                    continue
        return removed
