"""The contract every metadata store + artifact store pair must honour, through `Registry`.

Runs once per backend of `backends.OPENERS`; the multi-process half is test_concurrency.py.
"""

from __future__ import annotations

import ast
import inspect

import pytest
import torch

from causalcast.registry import (
    ArtifactError,
    ArtifactStore,
    JobKey,
    Lineage,
    MetadataStore,
    NotFoundError,
    RegistryError,
    baseline_comparison,
    sha256_hex,
    significance_record,
)
from causalcast.registry import model_registry as registry_module
from causalcast.weights import serialize
from tests.registry.conformance.backends import Backend

LINEAGE = Lineage("c" * 64, {"lookback": 8}, {"n_folds": 2})
GOOD = {"val_mse": 0.5, "leakage_audit": {"passed": True, "n_failures": 0},
        "baseline_comparison": baseline_comparison("val_mse", 0.5, 1.0, lower_is_better=True),
        "significance": significance_record({"dm_vs_naive": 0.001, "direction": 0.002})}


def _weights(seed: int) -> bytes:
    return serialize({"w": torch.full((3,), float(seed))}, {"seed": seed})[0]


def _protocol_members(protocol: type) -> set[str]:
    return {n for n in vars(protocol) if not n.startswith("_")}


def _calls_on(attribute: str) -> set[str]:
    """Method names `Registry` calls as ``self.<attribute>.<name>`` (read from its source)."""
    tree = ast.parse(inspect.getsource(registry_module))
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == attribute and isinstance(node.value.value, ast.Name)
            and node.value.value.id in ("self", "reg")}


def test_every_method_registry_calls_is_declared_on_the_interfaces() -> None:
    assert _calls_on("meta") - _protocol_members(MetadataStore) == set()
    assert _calls_on("artifacts") - _protocol_members(ArtifactStore) == set()
    assert _calls_on("meta") and _calls_on("artifacts")


def test_the_stores_implement_the_interfaces(backend: Backend) -> None:
    with backend.open() as reg:
        assert isinstance(reg.meta, MetadataStore)
        assert isinstance(reg.artifacts, ArtifactStore)
        for name in _protocol_members(MetadataStore):
            assert callable(getattr(reg.meta, name)), name
        for name in _protocol_members(ArtifactStore):
            assert callable(getattr(reg.artifacts, name)), name


def test_artifacts_are_content_addressed_verified_and_idempotent(backend: Backend) -> None:
    with backend.open() as reg:
        store = reg.artifacts
        data = b"some model bytes" * 100
        digest = store.put(data)
        assert digest == sha256_hex(data) and store.put(data) == digest
        assert store.exists(digest) and store.get(digest) == data
        assert store.size(digest) == len(data) and store.check(digest) is None
        assert list(store.digests()) == [digest] and store.age_seconds(digest) < 60
        missing = sha256_hex(b"never stored")
        assert not store.exists(missing) and store.size(missing) == 0
        with pytest.raises(ArtifactError, match=missing):
            store.get(missing)
        with pytest.raises(RegistryError, match="digest"):
            store.get("../../etc/passwd")
        store.delete(digest)
        assert not store.exists(digest) and list(store.digests()) == []
        store.write_owner("2026-01-01T00:00:00+00:00")
        assert store.read_owner() == "2026-01-01T00:00:00+00:00"


def test_runs_jobs_and_epochs_round_trip(backend: Backend) -> None:
    with backend.open() as reg:
        run = reg.start_run("r1", name="n", config={"a": 1})
        assert reg.get_run(run).config == {"a": 1}
        key = JobKey("AAA", "lstm", 0)
        assert reg.plan_jobs(run, [key, ("BBB", "lstm", 0)]) == 2
        assert reg.job_started(run, key).status == "running"
        reg.log_epoch(run, key, 0, {"loss": 1.0})
        assert reg.epoch_metrics(run, key) == [{"epoch": 0, "loss": 1.0}]
        v = reg.register_version("lstm/AAA", b"w", {}, GOOD, LINEAGE, run_id=run, job=key)
        assert reg.jobs(run, "done")[0].version_id == v.version_id
        assert reg.progress(run) == {"pending": 1, "running": 0, "done": 1, "failed": 0,
                                     "total": 2}
        with pytest.raises(RegistryError, match="run_id"):
            reg.start_run("../escape")
        with pytest.raises(NotFoundError):
            reg.get_run("nope")


def test_versions_stages_and_rollback(backend: Backend) -> None:
    with backend.open() as reg:
        run = reg.start_run("r1")
        reg.record_audit(run, {"passed": True, "checks": []})
        a = reg.register_version("m", _weights(1), {}, GOOD, LINEAGE, run_id=run)
        b = reg.register_version("m", _weights(2), {}, GOOD, LINEAGE, run_id=run)
        assert (a.version, b.version, a.stage) == (1, 2, "candidate")
        reg.promote(a.ref)
        reg.promote(b.ref)
        assert reg.production("m").version_id == b.version_id
        assert reg.get_version("m@archived").version_id == a.version_id
        assert reg.rollback("m").version_id == a.version_id
        assert [e.action for e in reg.history("m")][-2:] == ["rollback", "rollback"]
        assert {d for _, _, d, _ in reg.meta.artifact_references()} == \
            reg.meta.referenced_digests() == {a.artifact_sha256, b.artifact_sha256}
        assert reg.meta.check_integrity() == [] and reg.verify().ok


def test_read_only_open_creates_nothing(backend: Backend) -> None:
    with pytest.raises(NotFoundError):
        backend.open(create=False)
    with backend.open() as reg:
        reg.register_version("m", b"x", {}, {}, LINEAGE)
    with backend.open(create=False) as reg:
        assert [v.ref for v in reg.versions()] == ["m:1"]
