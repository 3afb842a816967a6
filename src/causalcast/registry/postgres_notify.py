"""Stage changes announced by PostgreSQL LISTEN/NOTIFY, so serving replicas see a promotion at
once instead of at their next poll.

Every stage change (promote, stage, rollback) calls `notify_stage_change` inside its own
transaction: PostgreSQL delivers a notification only when that transaction commits, so a
listener is never woken for a promotion that was refused or rolled back, and by the time it is
woken the new production set is readable. `StageListener` holds one autocommit connection that
LISTENs on the channel; `wait(timeout)` returns as soon as a notification arrives, else after
``timeout``. Notifications are a shortcut, not the guarantee: a listener whose connection
broke, or a registry without NOTIFY (SQLite), is still correct because the caller's poll
interval remains the upper bound.
"""

from __future__ import annotations

import contextlib
import logging
import time

import psycopg

from causalcast.registry.urls import redact

log = logging.getLogger(__name__)
STAGE_CHANNEL = "causalcast_stages"
#: After a broken connection: how long before the listener connects again.
RECONNECT_S = 5.0


def notify_stage_change(db: psycopg.Connection, name: str) -> None:
    """Announce a stage change of ``name`` when the caller's transaction commits."""
    db.execute("SELECT pg_notify(%s, %s)", (STAGE_CHANNEL, name))


class StageListener:
    """Wakes its caller when any version's stage changes in one PostgreSQL registry."""

    def __init__(self, url: str) -> None:
        self.url, self.where = url, redact(url)
        self._conn: psycopg.Connection | None = None
        self._retry_at = 0.0
        self._connect()

    def _connect(self) -> None:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            conn.execute(f"LISTEN {STAGE_CHANNEL}")
        except psycopg.Error as exc:
            log.warning("registry %s: cannot listen for stage changes (%s); polling only "
                        "until it can", self.where, exc)
            self._retry_at = time.monotonic() + RECONNECT_S
            return
        self._conn = conn

    def wait(self, timeout: float) -> bool:
        """Block until a stage change is announced (True) or ``timeout`` seconds pass
        (False). Every pending announcement is consumed: a burst wakes the caller once."""
        deadline = time.monotonic() + timeout
        if self._conn is None and time.monotonic() >= self._retry_at:
            self._connect()
        if self._conn is None:
            time.sleep(max(deadline - time.monotonic(), 0.0))
            return False
        try:
            # Each generator is run to its end: a suspended one keeps the connection's lock.
            woken = bool(list(self._conn.notifies(timeout=timeout, stop_after=1)))
            if woken:
                list(self._conn.notifies(timeout=0.0))   # what else is already queued
            return woken
        except psycopg.Error as exc:  # server restarted, connection dropped: poll meanwhile
            log.warning("registry %s: stage listener lost its connection (%s)", self.where,
                        exc)
            self.close()
            self._retry_at = time.monotonic() + RECONNECT_S
            time.sleep(max(deadline - time.monotonic(), 0.0))
            return False

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # already broken
                conn.close()
