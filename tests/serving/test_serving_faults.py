"""The service stays honest when an artifact is bad (issue 12, item 2): a version that cannot
load is reported and left out, the others are served, and nothing archived is served again."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from causalcast.registry import Registry
from causalcast.serving.app import create_app
from causalcast.serving.config import ServeConfig
from tests.support.serving import train_and_register

pytestmark = pytest.mark.slow   # 5-12 s each: real registries, a watcher polling them

INTERNALS = ("/", "\\", "Traceback", "Error", "Exception", ".py", "sha256")


def corrupt_artifact(home: Path, ref: str) -> None:
    """Flip bytes in the middle of every file holding version ``ref``'s artifact on disk (the
    registry's object, found by its content hash whatever the store's layout, and the training
    job's copy)."""
    with Registry.open(home, create=False) as registry:
        digest = registry.get_version(ref).artifact_sha256
    found = 0
    for path in home.rglob("*"):
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
            data = bytearray(path.read_bytes())
            mid = len(data) // 2
            data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
            os.chmod(path, 0o644)
            path.write_bytes(bytes(data))
            found += 1
    assert found, f"object of {ref} not found under {home}"


def assert_public(text: str) -> None:
    """Nothing an unauthenticated caller may not see: paths, exception names, tracebacks."""
    for fragment in INTERNALS:
        assert fragment not in text, (fragment, text)


def served_versions(client: TestClient) -> set[str]:
    return {m["version"] for m in client.get("/v1/models").json()["models"]}


def test_corrupt_artifact_promoted_while_serving(tmp_path):
    """A replacement whose artifact is damaged: /readyz says degraded naming it, the version it
    replaced (now archived) is no longer served, the other model still is."""
    train_and_register(tmp_path, models=("ridge", "drift"))
    app = create_app(ServeConfig(home=tmp_path, api_key=None, poll_seconds=0.2))
    with TestClient(app) as client:
        assert client.get("/readyz").json()["status"] == "ok"
        assert served_versions(client) == {"ridge-global:1", "drift-global:1"}
        (new_ref,) = train_and_register(tmp_path, models=("ridge",), seed=1)
        corrupt_artifact(tmp_path, new_ref)
        deadline = time.time() + 30
        while time.time() < deadline and client.get("/readyz").json()["status"] == "ok":
            time.sleep(0.1)
        ready = client.get("/readyz")
        body = ready.json()
        assert ready.status_code == 200 and body["status"] == "degraded", body
        assert new_ref in body["detail"]
        assert body["problems"] == [{"version": new_ref, "name": "ridge-global",
                                     "status": "failed", "reason": body["problems"][0]["reason"]}]
        assert "integrity" in body["problems"][0]["reason"]
        assert_public(ready.text)
        # The archived ridge-global:1 is not served; drift-global is.
        assert served_versions(client) == {"drift-global:1"}
        models = client.get("/v1/models").json()
        assert models["status"] == "degraded" and models["problems"] == body["problems"]
        for symbol in ("SYN000", "SYN001"):
            res = client.post("/v1/forecast", json={"symbol": symbol, "model": "ridge-global"})
            assert res.status_code == 404, res.text
            res = client.post("/v1/forecast", json={"symbol": symbol})
            assert res.status_code == 200 and res.json()["model"] == "drift-global"
        # An explicit reload retries, reports the failure and still serves the rest.
        reload = client.post("/v1/admin/reload")
        assert reload.status_code == 200
        assert reload.json()["models"] == ["drift-global:1"]
        assert [p["version"] for p in reload.json()["problems"]] == [new_ref]
        # Rolling back restores a loadable production version: healthy again.
        with Registry.open(tmp_path, create=False) as registry:
            registry.rollback("ridge-global", reason="bad artifact")
        deadline = time.time() + 30
        while time.time() < deadline and client.get("/readyz").json()["status"] != "ok":
            time.sleep(0.1)
        assert client.get("/readyz").json()["status"] == "ok"
        assert served_versions(client) == {"ridge-global:1", "drift-global:1"}


def test_corrupt_artifact_at_start_up_does_not_stop_the_others(tmp_path):
    train_and_register(tmp_path, models=("ridge", "drift"))
    corrupt_artifact(tmp_path, "drift-global:1")
    with TestClient(create_app(ServeConfig(home=tmp_path, poll_seconds=0))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "degraded" and "drift-global:1" in body["detail"]
        assert_public(ready.text)
        assert str(tmp_path) not in ready.text
        assert served_versions(client) == {"ridge-global:1"}
        res = client.post("/v1/forecast", json={"symbol": "SYN002"})
        assert res.status_code == 200 and res.json()["model_versions"] == ["ridge-global:1"]


@pytest.mark.parametrize("api_key", [None, "k"])
def test_readyz_with_an_unreadable_registry_flags_served_versions_stale(tmp_path, api_key):
    """When the registry cannot be read the service cannot know what was archived: what it
    serves is flagged stale (degraded), and nothing internal is shown."""
    train_and_register(tmp_path, models=("drift",))
    app = create_app(ServeConfig(home=tmp_path, api_key=api_key, poll_seconds=0.1))
    with TestClient(app) as client:
        assert client.get("/readyz").json()["status"] == "ok"
        registry_dir = tmp_path / "registry"
        hidden = tmp_path / "registry-moved"
        registry_dir.rename(hidden)
        try:
            deadline = time.time() + 20
            while time.time() < deadline and client.get("/readyz").json()["status"] == "ok":
                time.sleep(0.1)
            ready = client.get("/readyz")
            body = ready.json()
            assert body["status"] == "degraded"
            assert [(p["version"], p["status"]) for p in body["problems"]] == [
                ("drift-global:1", "stale")]
            assert_public(ready.text)
        finally:
            hidden.rename(registry_dir)
        deadline = time.time() + 20
        while time.time() < deadline and client.get("/readyz").json()["status"] != "ok":
            time.sleep(0.1)
        assert client.get("/readyz").json()["status"] == "ok"
