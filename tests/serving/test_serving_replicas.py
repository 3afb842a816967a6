"""Several serving replicas against one PostgreSQL registry (artifacts on S3): a promotion is
picked up by every replica within its poll interval (plus the reload), under a request loop,
with zero failed requests and every response from exactly one version; and, announced by
LISTEN/NOTIFY, long before the poll interval when that is long."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from causalcast.registry import Registry
from causalcast.serving.hub import ModelHub
from tests.support.serving import Server, train_and_register

pytestmark = pytest.mark.slow
POLL_S = 0.5
#: Poll interval + loading the new version (torch import is already done) on a shared 2-core box.
PICKUP_BOUND_S = POLL_S + 15.0
#: A poll no test waits for: a promotion seen before it was announced, not polled.
LONG_POLL_S = 600.0


def test_two_replicas_pick_up_a_promotion_with_no_failed_or_mixed_response(
        tmp_path: Path, postgres_url: str, s3_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAUSALCAST_ARTIFACTS_URL", s3_url)  # the servers inherit it
    old_ref = train_and_register(tmp_path, models=("ridge",), registry_home=postgres_url)[0]
    replicas = [Server(postgres_url, "--poll", str(POLL_S)) for _ in range(2)]
    try:
        for replica in replicas:
            replica.wait_ready(timeout=180)
        responses: list[tuple[int, int, list[str], float]] = []
        stop = threading.Event()

        def hammer(index: int) -> None:
            with httpx.Client(base_url=replicas[index].url, timeout=10) as http:
                while not stop.is_set():
                    r = http.post("/v1/forecast", json={"symbol": "SYN001",
                                                        "model": "ridge-global"})
                    body = r.json() if r.status_code == 200 else {}
                    responses.append((index, r.status_code, body.get("model_versions") or [],
                                      time.monotonic()))

        threads = [threading.Thread(target=hammer, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        new_ref = train_and_register(tmp_path, models=("ridge",), seed=1,
                                     registry_home=postgres_url)[0]
        promoted_at = time.monotonic()
        deadline = promoted_at + PICKUP_BOUND_S + 5
        while time.monotonic() < deadline and not all(
                any(i == r and v == [new_ref] for i, _, v, _ in list(responses)) for r in (0, 1)):
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        for replica in replicas:
            replica.stop()
    assert responses and all(code == 200 for _, code, _, _ in responses), \
        {code for _, code, _, _ in responses}
    assert all(versions in ([old_ref], [new_ref]) for _, _, versions, _ in responses)
    for replica in (0, 1):
        first_new = min(t for i, _, v, t in responses if i == replica and v == [new_ref])
        print(f"replica {replica}: new version served {first_new - promoted_at:.2f} s after "
              f"the promotion ({len(responses)} responses in all)")
        assert first_new - promoted_at < PICKUP_BOUND_S
        late_old = [t for i, _, v, t in responses if i == replica and v == [old_ref]
                    and t > first_new + 1.0]
        assert not late_old  # once switched, a replica never serves the old version again


def test_a_replica_with_a_long_poll_sees_a_promotion_when_it_is_announced(
        tmp_path: Path, postgres_url: str, s3_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAUSALCAST_ARTIFACTS_URL", s3_url)
    train_and_register(tmp_path, models=("ridge",), registry_home=postgres_url)
    hub = ModelHub(postgres_url)
    hub.reload()
    hub.watch(LONG_POLL_S)
    try:
        new_ref = train_and_register(tmp_path, models=("ridge",), seed=1,
                                     registry_home=postgres_url)[0]
        promoted_at = time.monotonic()
        with Registry.open(postgres_url, create=False) as reg:
            new_id = reg.get_version(new_ref).version_id
        while new_id not in hub.state.production_ids \
                and time.monotonic() < promoted_at + PICKUP_BOUND_S:
            time.sleep(0.02)
        seen = time.monotonic() - promoted_at
    finally:
        hub.close()
    assert new_id in hub.state.production_ids and hub.reloads == 2
    print(f"poll {LONG_POLL_S:.0f} s: promotion served by the hub {seen:.2f} s after it "
          f"(notified, then reloaded)")
