"""What the PostgreSQL + object-storage registry adds beyond the conformance suite: opening
checks, serialised promotions, verification of objects on S3, the CLI with a database home, and
the skip/fail rule for missing server binaries."""

from __future__ import annotations

import pickle
import threading

import psycopg
import pytest
import torch
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.registry import (
    ArtifactError,
    DamagedError,
    Lineage,
    NotFoundError,
    Registry,
    RegistryError,
    postgres_schema,
)
from causalcast.weights import serialize
from tests.support import servers

pytestmark = pytest.mark.slow
LINEAGE = Lineage("c" * 64, {"lookback": 8}, {"n_folds": 2})
runner = CliRunner()


def _weights(seed: int) -> bytes:
    return serialize({"w": torch.full((3,), float(seed))}, {"seed": seed})[0]


def test_a_database_that_is_not_a_registry_is_refused_and_left_alone(
        postgres_url: str, s3_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int)")
    with pytest.raises(DamagedError, match="not a causalcast registry"):
        Registry.open(postgres_url, artifacts=s3_url)
    result = runner.invoke(app, ["registry", "list", "--home", postgres_url],
                           env={"CAUSALCAST_ARTIFACTS_URL": s3_url, "COLUMNS": "400"})
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "not a causalcast registry" in lines[0]
    with psycopg.connect(postgres_url) as conn:  # nothing was created in it
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE "
                                             "schemaname = 'public'")}
    assert tables == {"customers"}


def test_a_registry_from_a_newer_causalcast_is_refused(postgres_url: str, s3_url: str) -> None:
    Registry.open(postgres_url, artifacts=s3_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {postgres_schema.MIGRATION_TABLE} VALUES (%s, 'future', "
                     f"'2030-01-01')", (postgres_schema.LATEST + 1,))
    with pytest.raises(RegistryError, match="newer than this causalcast"):
        Registry.open(postgres_url, artifacts=s3_url)


def test_an_empty_database_is_not_created_over_stored_objects(postgres_url: str,
                                                               s3_url: str) -> None:
    with Registry.open(postgres_url, artifacts=s3_url) as reg:
        reg.artifacts.put(b"an object of an earlier registry")
    other = postgres_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{postgres_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{postgres_url.rsplit("/", 1)[1]}"')
    with pytest.raises(DamagedError, match="holds objects"):
        Registry.open(postgres_url, artifacts=s3_url)
    with pytest.raises(NotFoundError):
        Registry.open(postgres_url, artifacts=s3_url, create=False)


def test_concurrent_promotions_and_rollbacks_lose_no_update(postgres_url: str,
                                                            s3_url: str) -> None:
    """Four threads, each with its own registry (own pool), promote and roll back one name.
    Replaying the recorded history in order must reproduce every event's 'from' stage and the
    final stages: a lost update would show as an event whose 'from' is not what came before."""
    with Registry.open(postgres_url, artifacts=s3_url) as reg:
        ids = [reg.register_version("m", _weights(i), {}, {}, LINEAGE).version_id
               for i in range(6)]
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            with Registry.open(postgres_url, artifacts=s3_url) as mine:
                for i in range(8):
                    target = ids[(seed * 3 + i) % len(ids)]
                    try:
                        if i % 3 == 2:
                            mine.rollback("m")
                        else:
                            mine.promote(target, gates=[])
                    except RegistryError:  # already production / nothing to roll back to
                        pass
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with Registry.open(postgres_url, artifacts=s3_url) as reg:
        stages: dict[int, str] = {}
        events = reg.history("m")
        assert sum(e.action in ("promote", "rollback") for e in events) > 6
        for event in events:
            assert stages.get(event.version_id) == event.from_stage, event
            stages[event.version_id] = event.to_stage
        assert stages == {v.version_id: v.stage for v in reg.versions("m")}
        assert list(stages.values()).count("production") == 1
        assert reg.verify().ok


def test_a_corrupted_object_on_s3_is_refused_on_read_and_reported(postgres_url: str,
                                                                  s3_url: str) -> None:
    with Registry.open(postgres_url, artifacts=s3_url) as reg:
        v = reg.register_version("m", _weights(1), {}, {}, LINEAGE)
        store = reg.artifacts
        store.fs.pipe_file(store._path(v.artifact_sha256), b"tampered")
        with pytest.raises(ArtifactError, match="corrupt"):
            reg.load_artifact(v)
        assert any("corrupt" in p for p in reg.verify().problems)
        assert store.put(_weights(1)) == v.artifact_sha256  # healed by the verified bytes
        assert reg.verify().ok


def test_a_registry_pickles_with_its_artifact_store(postgres_url: str, s3_url: str) -> None:
    """Ray and process pools ship a Registry as its recipe; the copy reaches the same stores."""
    with Registry.open(postgres_url, artifacts=s3_url) as reg:
        v = reg.register_version("m", _weights(2), {}, {}, LINEAGE)
        with pickle.loads(pickle.dumps(reg)) as copy:
            assert copy.artifacts.url == s3_url and copy.load_artifact(v.ref) == _weights(2)


def test_the_registry_cli_works_on_a_database_home(postgres_url: str, s3_url: str) -> None:
    with Registry.open(postgres_url, artifacts=s3_url) as reg:
        reg.register_version("m", _weights(3), {}, {}, LINEAGE)
    env = {"CAUSALCAST_REGISTRY_URL": postgres_url, "CAUSALCAST_ARTIFACTS_URL": s3_url,
           "COLUMNS": "400"}
    listed = runner.invoke(app, ["registry", "list", "--json"], env=env)
    assert listed.exit_code == 0 and '"m:1"' in listed.output
    assert runner.invoke(app, ["registry", "verify"], env=env).exit_code == 0
    backup = runner.invoke(app, ["registry", "backup", "elsewhere"], env=env)
    assert backup.exit_code == 2 and "pg_dump" in backup.output


def test_file_urls_work_as_the_artifact_store(postgres_url: str, tmp_path) -> None:
    with Registry.open(postgres_url, artifacts=f"file://{tmp_path}/objects") as reg:
        v = reg.register_version("m", _weights(4), {}, {}, LINEAGE)
        assert reg.load_artifact(v) == _weights(4) and reg.verify().ok
    assert any((tmp_path / "objects").rglob("*"))


def test_a_database_home_without_an_artifact_store_is_one_clear_error(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAUSALCAST_ARTIFACTS_URL", raising=False)
    with pytest.raises(RegistryError, match="CAUSALCAST_ARTIFACTS_URL"):
        Registry.open(postgres_url)


@pytest.mark.parametrize("ci", ["true", ""])
def test_missing_server_binaries_skip_locally_but_fail_under_ci(
        ci: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected, match="apt-get install postgresql"):
        servers.missing("PostgreSQL server (initdb, pg_ctl) not found: install it "
                        "(Debian: apt-get install postgresql)")
