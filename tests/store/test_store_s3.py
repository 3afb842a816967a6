"""The store on object storage: the same commands against an S3-compatible server (moto, on
loopback), with credentials and endpoint from the usual AWS_* variables, no code change."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.frames import random_ohlcv, yahoo_csv

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_env():
    pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    try:
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                              aws_secret_access_key="test", region_name="us-east-1")
        for _ in range(100):
            try:
                client.create_bucket(Bucket="causalcast-store")
                break
            except Exception:
                time.sleep(0.1)
        else:
            pytest.fail("moto server did not start")
        yield {**os.environ, **env}
    finally:
        server.kill()
        server.wait()


def test_import_append_revise_and_read_an_old_version_on_s3(s3_env, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "causalcast", "data", *args,
                               "--store", "s3://causalcast-store/bars-test"],
                              capture_output=True, text=True, env=s3_env, timeout=120)

    frame = random_ohlcv(60, seed=3)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    yahoo_csv(frame.iloc[:40], tmp_path / "a" / "AAA.csv")
    changed = frame.iloc[30:].copy()
    changed.iloc[0, changed.columns.get_loc("volume")] += 1
    yahoo_csv(changed, tmp_path / "b" / "AAA.csv")
    assert cli("import", str(tmp_path / "a")).returncode == 0
    refused = cli("import", str(tmp_path / "b"))
    assert refused.returncode == 2 and "volume" in refused.stderr
    out = cli("import", str(tmp_path / "b"), "--revise", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["added"] == {"AAA": 20}
    listed = json.loads(cli("list", "--json").stdout)
    assert [(r["symbol"], r["bars"], r["version"]) for r in listed] == [("AAA", 60, 1)]
    old = json.loads(cli("show", "AAA", "--as-of-version", "0", "--json", "--tail", "100").stdout)
    assert old["bars"] == 40
