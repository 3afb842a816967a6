"""Storage backends the conformance suite runs against.

A backend is a picklable recipe for opening a `Registry` (worker processes of the concurrency
tests receive it and open their own). To add one, add an opener to `OPENERS` (and, if it needs
servers, say in conftest.py how to make its ``home``); every test taking the ``backend``
fixture then runs against it too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from causalcast.registry import Registry


@dataclass(frozen=True)
class Backend:
    """Which stores (``kind``) and where: ``home`` (a folder, or a database URL), ``artifacts``
    (an object-store URL, for server backends) and ``env`` (variables the stores read, e.g.
    the S3 endpoint, set in every process that opens it)."""

    kind: str
    home: str
    artifacts: str = ""
    env: tuple[tuple[str, str], ...] = field(default=())

    def open(self, create: bool = True) -> Registry:
        os.environ.update(dict(self.env))
        return OPENERS[self.kind](self, create)


def _sqlite_and_files(backend: Backend, create: bool) -> Registry:
    return Registry.open(backend.home, create=create)


def _postgres_and_s3(backend: Backend, create: bool) -> Registry:
    return Registry.open(backend.home, create=create, artifacts=backend.artifacts)


OPENERS: dict[str, Callable[[Backend, bool], Registry]] = {
    "sqlite+files": _sqlite_and_files,
    "postgres+s3": _postgres_and_s3,
}
