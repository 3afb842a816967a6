"""The dashboard's assets without a browser: the package's static folder is the build of
web/src (plus the vendored npm files), pages and the API docs reference no external host,
assets cannot escape the static folder, and the front-end logic passes its node tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from causalcast.serving.app import create_app
from causalcast.serving.config import ServeConfig
from causalcast.serving.web.pages import PAGES, STATIC
from tests.support.frames import weights_file

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
EXTERNAL = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?(?:https?:)?//""", re.I)
VENDOR = ("uPlot.iife.min.js", "uPlot.min.css", "swagger-ui-bundle.js", "swagger-ui.css",
          "redoc.standalone.js")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # no `with`: the lifespan (option networks, models) is not needed to serve pages
    return TestClient(create_app(ServeConfig(home=tmp_path_factory.mktemp("empty"),
                                             api_key="secret")))


def test_static_folder_is_the_build_of_web_src():
    sources = sorted(p.relative_to(WEB / "src") for p in (WEB / "src").rglob("*") if p.is_file())
    assert sources
    for rel in sources:
        built = STATIC / rel
        assert built.is_file(), f"{rel} missing from the package: run `make web`"
        assert built.read_bytes() == (WEB / "src" / rel).read_bytes(), \
            f"{rel} differs from web/src: run `make web`"
    for name in VENDOR:
        assert (STATIC / "vendor" / name).stat().st_size > 1000, name


@pytest.mark.parametrize("path", [*PAGES, "/docs", "/redoc"])
def test_pages_reference_no_external_host_and_need_no_key(client, path):
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert not EXTERNAL.findall(r.text), EXTERNAL.findall(r.text)
    for ref in re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text):
        if ref.startswith("/ui/static/"):
            assert client.get(ref).status_code == 200, ref


def test_vendored_assets_fetch_nothing_from_a_cdn():
    for name in VENDOR:
        text = (STATIC / "vendor" / name).read_text(encoding="utf-8", errors="replace")
        assert "cdn." not in text and "fonts.googleapis" not in text, name


@pytest.mark.parametrize("path", ["/ui/static/../pages.py", "/ui/static/%2e%2e/pages.py",
                                  "/ui/static/nope.js", "/ui/static/vendor"])
def test_assets_cannot_escape_the_static_folder(client, path):
    assert client.get(path).status_code == 404


def test_data_endpoints_and_actions_need_the_key(client):
    assert client.get("/v1/registry/versions").status_code == 401
    assert client.post("/v1/registry/promote", json={"version_id": 1}).status_code == 401
    assert client.post("/v1/registry/rollback", json={"name": "x"}).status_code == 401
    headers = {"X-API-Key": "secret"}
    r = client.get("/v1/registry/versions", headers=headers)
    assert r.status_code == 404 and "no model registry" in r.json()["detail"]
    r = client.post("/v1/registry/promote", json={"version_id": 0}, headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "version_id"]


def test_front_end_logic_node_tests():
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required for the front-end tests (apt-get install nodejs)")
        pytest.skip("node not installed: front-end unit tests not run")
    done = subprocess.run([node, "--test", "test/"], cwd=WEB, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"# pass [1-9]", done.stdout) and "# fail 0" in done.stdout, done.stdout


def _evidence(p: float) -> dict:
    """What `evaluation.promotion_metrics` records, with the given p-values."""
    from causalcast.registry import baseline_comparison, significance_record

    return {"leakage_audit": {"passed": True, "status": "passed"},
            "baseline_comparison": baseline_comparison("val_mse_h1", 0.9, 1.0,
                                                       lower_is_better=True),
            "significance": significance_record({"dm_vs_naive": p, "direction": p})}


def test_promote_and_rollback_endpoints_go_through_the_gates(tmp_path):
    from causalcast.registry import Lineage, Registry

    with Registry.open(tmp_path) as reg:
        ids = [reg.register_version("m", weights_file(k), {}, metrics,
                                    Lineage("0" * 64, {}, {})).version_id
               for k, metrics in enumerate([_evidence(0.001), _evidence(0.002),
                                            _evidence(0.4)])]
    client = TestClient(create_app(ServeConfig(home=tmp_path, api_key="secret")))
    key = {"X-API-Key": "secret"}

    def production() -> int | None:
        with Registry.open(tmp_path) as reg:
            v = reg.production("m")
            return v and v.version_id

    assert client.post("/v1/registry/promote", json={"version_id": ids[0]}).status_code == 401
    assert production() is None
    for vid in ids[:2]:
        r = client.post("/v1/registry/promote", json={"version_id": vid, "reason": "t"},
                        headers=key)
        assert r.status_code == 200 and r.json()["version"]["stage"] == "production", r.text
        assert {g["gate"] for g in r.json()["gates"] if g["passed"]} >= {
            "leakage_audit", "beats_naive_baseline", "significant_vs_naive"}
    assert production() == ids[1]
    refused = client.post("/v1/registry/promote", json={"version_id": ids[2]}, headers=key)
    assert refused.status_code == 409
    verdicts = {g["gate"]: g["passed"] for g in refused.json()["detail"]["gates"]}
    assert verdicts["significant_vs_naive"] is False and verdicts["leakage_audit"] is True
    assert production() == ids[1]
    shown = client.get(f"/v1/registry/versions/{ids[2]}", headers=key).json()
    assert [g["passed"] for g in shown["gates"] if g["gate"] == "significant_vs_naive"] == [False]
    assert client.post("/v1/registry/rollback", json={"name": "m"}).status_code == 401
    r = client.post("/v1/registry/rollback", json={"name": "m", "reason": "t"}, headers=key)
    assert r.status_code == 200 and r.json()["restored"]["version_id"] == ids[0]
    assert production() == ids[0]
    history = client.get("/v1/registry/history?name=m", headers=key).json()["history"]
    assert [(e["version"], e["action"], e["to_stage"]) for e in history
            if e["by"] == "dashboard"] == [
        (1, "promote", "production"), (1, "replaced", "archived"), (2, "promote", "production"),
        (2, "rollback", "archived"), (1, "rollback", "production")]


def test_version_rows_carry_their_attached_evaluation(tmp_path):
    """The main job attaches walk-forward evidence after registering a fit: the pages get
    it with the version (the latest attachment), and null where none is attached."""
    from causalcast.registry import Lineage, Registry

    with Registry.open(tmp_path) as reg:
        bare, evaluated = (reg.register_version("m", weights_file(k), {}, {"val_loss": 1.0},
                                                Lineage("0" * 64, {}, {})) for k in range(2))
        reg.attach_evaluation(evaluated.ref, {"walk_forward": {"accuracy": 0.5}}, by="t")
        reg.attach_evaluation(evaluated.ref, {"walk_forward": {"accuracy": 0.6}}, by="t")
    client = TestClient(create_app(ServeConfig(home=tmp_path, api_key="secret")))
    key = {"X-API-Key": "secret"}
    rows = {v["ref"]: v for v in client.get("/v1/registry/versions", headers=key).json()
            ["versions"]}
    assert rows[bare.ref]["evaluation"] is None and rows[bare.ref]["evaluated_at"] is None
    assert rows[evaluated.ref]["evaluation"] == {"walk_forward": {"accuracy": 0.6}}
    assert rows[evaluated.ref]["metrics"] == {"val_loss": 1.0}     # the record, unchanged
    assert rows[evaluated.ref]["evaluated_at"]
    one = client.get(f"/v1/registry/versions/{evaluated.version_id}", headers=key).json()
    assert one["evaluation"] == rows[evaluated.ref]["evaluation"]
