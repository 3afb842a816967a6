"""Opening a registry that lives on servers: PostgreSQL metadata + fsspec artifacts.

`Registry.open` comes here when ``home`` is a ``postgresql://`` URL. The cross-store lock
(register vs gc, see `model_registry`) becomes a PostgreSQL session advisory lock, which every
host reaches and which the server releases when its holder's connection dies. Readers that
follow promotions (serving replicas) listen for them with `stage_listener`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from causalcast.registry.records import DamagedError, RegistryError
from causalcast.registry.urls import is_database_url, redact

ARTIFACTS_ENV = "CAUSALCAST_ARTIFACTS_URL"
#: Advisory lock key of the register/gc lock ("causa" + 2).
REGISTRY_LOCK = 0x6361757361_02


def artifacts_url(url: str, artifacts: str | None) -> str:
    """The artifact store of a database registry: given, else ``CAUSALCAST_ARTIFACTS_URL``."""
    chosen = artifacts or os.environ.get(ARTIFACTS_ENV)
    if not chosen:
        raise RegistryError(f"registry {redact(url)}: a database registry needs an artifact "
                            f"store: pass --artifacts s3://bucket/prefix (or any fsspec URL) or "
                            f"set {ARTIFACTS_ENV}")
    return chosen


def open_networked(url: str, artifacts: str | None, *, create: bool, busy_timeout_s: float
                   ) -> tuple[Any, Any,
                              Callable[[], AbstractContextManager[Any]], str]:
    """(metadata store, artifact store, cross-store lock, artifact URL) of a database home."""
    try:
        from causalcast.registry.postgres_store import PostgresStore
    except ImportError as exc:
        raise RegistryError(f"--home {redact(url)}: PostgreSQL registries need "
                            f"psycopg: pip install 'causalcast[postgres]' ({exc})") from None
    from causalcast.registry.fsspec_artifacts import FsspecArtifactStore

    where = artifacts_url(url, artifacts)
    store = FsspecArtifactStore(where, create=create)

    def refuse_over_objects() -> None:
        if next(store.digests(), None) is not None:
            raise DamagedError(f"artifact store {where}: holds objects but the database holds "
                               f"no registry; refusing to start an empty registry over them "
                               f"(restore the database, or use another artifact location)")

    meta = PostgresStore(url, create=create, busy_timeout_s=busy_timeout_s,
                         before_create=refuse_over_objects)
    return meta, store, lambda: meta.session_lock(REGISTRY_LOCK), where


def stage_listener(home: object) -> Any:
    """A `postgres_notify.StageListener` on a database home, woken by every committed stage
    change; None for a registry folder (SQLite has no NOTIFY: its readers poll)."""
    if not is_database_url(str(home)):
        return None
    from causalcast.registry.postgres_notify import StageListener

    return StageListener(str(home))
