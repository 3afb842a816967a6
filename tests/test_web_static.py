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

ROOT = Path(__file__).resolve().parents[1]
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
