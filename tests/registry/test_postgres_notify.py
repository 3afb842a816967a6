"""Stage changes announced by LISTEN/NOTIFY (`registry.postgres_notify`): a listener wakes on
every committed promotion, stage change and rollback, never on a refused one or on a mere
registration, survives losing its connection, and a registry folder has none (SQLite polls)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import torch

from causalcast.registry import Lineage, Registry, RegistryError, postgres_notify
from causalcast.registry.networked import stage_listener
from causalcast.weights import serialize

pytestmark = pytest.mark.slow
LINEAGE = Lineage("d" * 64, {"lookback": 8}, {"n_folds": 2})
QUIET_S = 0.3      # long enough for a notification already committed to arrive
WOKEN_S = 30.0     # a woken wait returns long before this


def _weights(seed: int) -> bytes:
    return serialize({"w": torch.full((3,), float(seed))}, {"seed": seed})[0]


def test_a_listener_wakes_on_each_committed_stage_change_only(postgres_url: str, s3_url: str,
                                                              tmp_path: Path) -> None:
    assert stage_listener(tmp_path) is None and stage_listener(str(tmp_path)) is None
    with Registry.open(postgres_url, artifacts=s3_url) as reg:
        listener = stage_listener(postgres_url)
        try:
            first = reg.register_version("m", _weights(1), {}, {}, LINEAGE)
            second = reg.register_version("m", _weights(2), {}, {}, LINEAGE)
            assert not listener.wait(QUIET_S)             # registering changes no stage
            reg.promote(first.version_id, gates=())
            assert listener.wait(WOKEN_S)
            assert not listener.wait(QUIET_S)             # consumed: woken once per change
            with pytest.raises(RegistryError, match="already production"):
                reg.promote(first.version_id, gates=())
            assert not listener.wait(QUIET_S)             # refused: rolled back, not announced
            reg.promote(second.version_id, stage="archived")
            reg.promote(second.version_id, gates=())      # a burst of two: one wake-up
            assert listener.wait(WOKEN_S) and not listener.wait(QUIET_S)
            reg.rollback("m")
            assert listener.wait(WOKEN_S)
        finally:
            listener.close()


def test_a_listener_that_lost_its_connection_listens_again(
        postgres_url: str, s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_notify, "RECONNECT_S", 0.0)
    with Registry.open(postgres_url, artifacts=s3_url) as reg:
        version = reg.register_version("m", _weights(1), {}, {}, LINEAGE)
        listener = stage_listener(postgres_url)
        try:
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                              "query LIKE 'LISTEN%%' AND pid != pg_backend_pid()")
            assert not listener.wait(QUIET_S)   # the broken connection: no error, no wake-up
            assert not listener.wait(QUIET_S)   # connects and listens again
            reg.promote(version.version_id, stage="archived")
            assert listener.wait(WOKEN_S)
        finally:
            listener.close()
