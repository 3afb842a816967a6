"""Storage backends the conformance suite runs against.

A backend is a picklable recipe for opening a `Registry` (worker processes of the concurrency
tests receive it and open their own). To add one (PostgreSQL + S3, ...), add an opener to
`OPENERS`; every test taking the ``backend`` fixture then runs against it too. An opener that
needs a server should ``pytest.skip`` when the server is not reachable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from causalcast.registry import Registry


def _sqlite_and_files(home: str, create: bool) -> Registry:
    return Registry.open(home, create=create)


OPENERS: dict[str, Callable[[str, bool], Registry]] = {
    "sqlite+files": _sqlite_and_files,
}


@dataclass(frozen=True)
class Backend:
    """Which stores (``kind``) and where (``home``: a folder, or a namespace for servers)."""

    kind: str
    home: str

    def open(self, create: bool = True) -> Registry:
        return OPENERS[self.kind](self.home, create)
