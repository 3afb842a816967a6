"""`causalcast serve` settings: port range, --home checks, the API key from a file or the
environment (never needed in argv), and /docs open, behind the key, or off."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.serving.app import create_app
from causalcast.serving.config import ServeConfig
from tests.support.serving import free_port

runner = CliRunner()


def one_line_error(args: list[str], env: dict | None = None) -> str:
    result = runner.invoke(app, ["serve", *args], env={"COLUMNS": "400", **(env or {})})
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize("port", ["99999", "0", "-1", "65536"])
def test_port_outside_range_is_refused(tmp_path, port):
    assert "--port" in one_line_error(["--home", str(tmp_path), "--port", port])


@pytest.mark.parametrize("url", ["sqlite:///x.db", "s3://bucket/registry"])
def test_url_looking_home_is_refused(tmp_path, url):
    os.chdir(tmp_path)
    line = one_line_error(["--home", url, "--port", "8000"])
    assert "--home" in line and "URL" in line
    assert not any(tmp_path.iterdir())   # no folder named 's3:' was made


def test_an_unreachable_postgresql_home_is_one_line_before_serving(tmp_path, monkeypatch):
    """A database home is served (replicas share one), but a wrong one fails at start-up."""
    os.chdir(tmp_path)
    monkeypatch.setenv("CAUSALCAST_ARTIFACTS_URL", f"file://{tmp_path}/objects")
    line = one_line_error(["--home", "postgresql://user:secret@127.0.0.1:1/causalcast",
                           "--port", "8000"])
    assert "--home" in line and "cannot connect" in line and "secret" not in line
    assert not any(tmp_path.iterdir())   # no folder named 'postgresql:' was made


def test_bad_settings_are_one_line(tmp_path):
    home = ["--home", str(tmp_path)]
    assert "--docs" in one_line_error([*home, "--docs", "public"])
    assert "--api-key-file" in one_line_error([*home, "--api-key-file", str(tmp_path / "no")])
    (tmp_path / "empty").write_text("\n")
    assert "empty" in one_line_error([*home, "--api-key-file", str(tmp_path / "empty")])
    assert "--docs key" in one_line_error([*home, "--docs", "key"],
                                          env={"CAUSALCAST_API_KEY": ""})
    assert "--poll" in one_line_error([*home, "--poll", "nan"])


@pytest.mark.slow
def test_key_from_file_stays_out_of_argv_and_empty_home_warns(tmp_path):
    """The key read from a file is enforced and appears nowhere in the process's command
    line; a --home without a registry is served (options) with a warning."""
    key = "k3y-from-file-7f2c"
    key_file = tmp_path / "key"
    key_file.write_text(key + "\n")
    home = tmp_path / "empty-home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CAUSALCAST_API_KEY"}
    proc = subprocess.Popen([sys.executable, "-m", "causalcast", "serve", "--home", str(home),
                             "--port", str(port), "--api-key-file", str(key_file)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        cmdline = open(f"/proc/{proc.pid}/cmdline", "rb").read()   # noqa: SIM115
        assert key.encode() not in cmdline
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/v1/models", headers={"X-API-Key": key}).status_code == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert "no model registry" in output and key not in output


@pytest.mark.parametrize(("docs", "without_key", "with_key"), [
    ("open", 200, 200), ("key", 401, 200), ("off", 404, 404)])
def test_docs_setting(tmp_path, docs, without_key, with_key):
    config = ServeConfig(home=tmp_path, api_key="s3cret", poll_seconds=0, docs=docs)
    with TestClient(create_app(config)) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == without_key, path
            res = client.get(path, headers={"X-API-Key": "s3cret"})
            assert res.status_code == with_key, path
        if with_key == 200:
            schema = client.get("/openapi.json", headers={"X-API-Key": "s3cret"}).json()
            assert "ForecastBatchRequest" in schema["components"]["schemas"]
            body = schema["paths"]["/v1/forecast/batch"]["post"]["requestBody"]
            assert body["content"]["application/json"]["schema"]["$ref"].endswith(
                "/ForecastBatchRequest")
