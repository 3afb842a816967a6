"""Throwaway servers for tests that need real ones: a PostgreSQL cluster and an S3-compatible
object store (moto's server), both on loopback, started once per session and stopped after it.

The fixtures are registered for every test by ``pytest_plugins`` in tests/conftest.py (a
session server starts only when a test asks for it): ``postgres_url`` is a fresh database per
test (``CREATE DATABASE``), ``s3_url`` a fresh bucket per test. Without the server binaries
the tests skip with one line saying what to install; with ``CI=true`` they fail instead, so CI
cannot go green by skipping them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing(message: str) -> None:
    """Skip (fail under CI=true) because a server binary is not installed; ``message`` says
    what to install."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " [CI=true: missing binaries fail the run]", pytrace=False)
    pytest.skip(message)


def postgres_bindir() -> Path | None:
    """The server binaries (``initdb``, ``pg_ctl``): PATH first, else Debian's folders."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob(POSTGRES_BIN_GLOB), key=lambda p: int(Path(p).parent.name)
                        if Path(p).parent.name.isdigit() else 0)
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


@dataclass
class PostgresServer:
    """A running throwaway cluster (trust authentication on 127.0.0.1 only)."""

    port: int
    datadir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_postgres_user(args: list[str]) -> list[str]:
    """Run as the unprivileged ``postgres`` user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return args
    return ["su", PG_USER, "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in args)]


class ServerUnavailable(RuntimeError):
    """A server cannot run here (binaries or packages missing); the message says what to
    install."""


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A throwaway cluster in a temporary folder (as the ``postgres`` user when root), on a
    free port, stopped and deleted on exit. Also used by benchmarks/registry.py."""
    bindir = postgres_bindir()
    if bindir is None:
        raise ServerUnavailable("PostgreSQL server (initdb, pg_ctl) not found: install it "
                                "(Debian: apt-get install postgresql)")
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(PG_USER)
        except KeyError:
            raise ServerUnavailable(f"user {PG_USER!r} to run PostgreSQL not found: install "
                                    f"it (apt-get install postgresql)") from None
    base = Path(tempfile.mkdtemp(prefix="causalcast-pg-"))
    datadir, sockdir = base / "data", base / "sock"
    sockdir.mkdir()
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
        os.chown(sockdir, user.pw_uid, user.pw_gid)
    port = free_port()
    log = base / "server.log"
    try:
        subprocess.run(_as_postgres_user([str(bindir / "initdb"), "-D", str(datadir), "-U",
                                          PG_USER, "-A", "trust", "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True)
        options = (f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections=200 -c shared_buffers=32MB")
        subprocess.run(_as_postgres_user([str(bindir / "pg_ctl"), "-D", str(datadir), "-l",
                                          str(log), "-o", options, "-w", "start"]),
                       check=True, capture_output=True)
        yield PostgresServer(port, datadir)
    finally:
        if datadir.exists():
            subprocess.run(_as_postgres_user([str(bindir / "pg_ctl"), "-D", str(datadir),
                                              "-m", "immediate", "-w", "stop"]),
                           capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg not found: install it (pip install 'causalcast[postgres]')")
    try:
        with running_postgres() as server:
            yield server
    except ServerUnavailable as exc:
        missing(str(exc))


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database for this test."""
    return postgres_server.create_database()


@dataclass
class S3Server:
    """moto's S3-compatible server; `env` holds the AWS_* variables that reach it."""

    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}

    def create_bucket(self, prefix: str = "t") -> str:
        """A new empty bucket; returns ``s3://bucket``."""
        import boto3

        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="test",
                     aws_secret_access_key="test", region_name="us-east-1"
                     ).create_bucket(Bucket=name)
        return f"s3://{name}"


@contextlib.contextmanager
def running_s3() -> Iterator[S3Server]:
    """moto's S3 server in a subprocess on a free loopback port, killed on exit."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        raise ServerUnavailable(f"S3 test server ({exc.name}) not found: install it "
                                f"(pip install 'causalcast[dev,postgres]')") from None
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto S3 server did not start") from None
                time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.kill()
        server.wait()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        with running_s3() as server:
            yield server
    except ServerUnavailable as exc:
        missing(str(exc))


@pytest.fixture
def s3_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket for this test, with the AWS_* variables set for this process."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server.create_bucket() + "/registry"
