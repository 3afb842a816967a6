"""Registry behaviour in one process: artifacts, lineage, jobs, versions, stages, gates, verify, gc.

The multi-process acceptance tests (stress, SIGKILL, gc while writing) are in
test_registry_concurrency.py.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.config import load_settings
from causalcast.data.synthetic import make_universe
from causalcast.registry import (
    GATES,
    ArtifactError,
    ArtifactStore,
    GateRefused,
    JobKey,
    Lineage,
    MetadataStore,
    NotFoundError,
    Registry,
    RegistryError,
    baseline_comparison,
    fingerprint_frames,
    register_gate,
    significance_record,
)
from causalcast.registry.model_registry import MIN_TEMP_AGE_S
from causalcast.registry.schema import MIGRATIONS
from causalcast.weights import serialize, sha256_bytes

FP = "f" * 64
KEY = JobKey("AAA", "lstm", 0)
SIGNIFICANT = significance_record({"dm_vs_naive": 0.001, "direction": 0.002})


def lineage(**kw: object) -> Lineage:
    return Lineage(FP, {"lookback": 8}, {"n_folds": 2}, **kw)


def good_metrics(model: float = 0.9, base: float = 1.0) -> dict:
    return {"val_mse": model, "leakage_audit": {"passed": True, "n_failures": 0},
            "baseline_comparison": baseline_comparison("val_mse", model, base,
                                                       lower_is_better=True),
            "significance": SIGNIFICANT}


def weights(seed: int) -> bytes:
    gen = torch.Generator().manual_seed(seed)
    return serialize({"w": torch.randn(8, 8, generator=gen)}, {"seed": seed})[0]


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    registry = Registry.open(tmp_path)
    yield registry
    registry.close()


def snapshot(reg: Registry) -> tuple:
    return ([(v.version_id, v.stage) for v in reg.versions()], len(reg.history()),
            sorted(reg.artifacts.digests()), [(j.key, j.status) for r in reg.runs()
                                              for j in reg.jobs(r.run_id)])


# ---------------------------------------------------------------- storage basics
def test_opens_in_wal_mode_with_schema_and_implements_the_interfaces(reg: Registry) -> None:
    db = sqlite3.connect(reg.meta.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_migrations").fetchall() == \
        [(m[0],) for m in MIGRATIONS]
    assert isinstance(reg.meta, MetadataStore) and isinstance(reg.artifacts, ArtifactStore)


def test_refuses_a_registry_from_a_newer_schema(tmp_path: Path) -> None:
    Registry.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / "registry" / "registry.db")
    db.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'later')")
    db.commit()
    db.close()
    with pytest.raises(RegistryError, match="schema version 99 is newer"):
        Registry.open(tmp_path)


def test_read_only_open_refuses_a_missing_registry(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no registry under"):
        Registry.open(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


def test_artifacts_are_content_addressed_immutable_and_verified(reg: Registry) -> None:
    data = weights(1)
    digest = reg.artifacts.put(data)
    assert digest == sha256_bytes(data)
    path = reg.artifacts.path(digest)
    assert path.parent.name == digest[:2] and path.name == digest[2:]
    assert path.stat().st_mode & 0o777 == 0o444
    assert reg.artifacts.put(data) == digest and list(reg.artifacts.digests()) == [digest]
    assert reg.artifacts.get(digest) == data
    os.chmod(path, 0o644)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one flipped bit
    with pytest.raises(ArtifactError, match="corrupt"):
        reg.artifacts.get(digest)
    with pytest.raises(RegistryError, match="64 lowercase hex"):
        reg.artifacts.get("../../etc/passwd")


def test_temporary_files_of_interrupted_writes_are_not_objects(reg: Registry) -> None:
    digest = reg.artifacts.put(b"complete")
    leftover = reg.artifacts.path(digest).parent / f".{digest[2:]}.abc123.tmp"
    leftover.write_bytes(b"compl")  # what a SIGKILL mid-write leaves
    assert list(reg.artifacts.digests()) == [digest]
    assert reg.artifacts.temp_files() == [str(leftover)]
    report = reg.verify()
    assert report.ok and report.n_temp_files == 1
    assert reg.gc(grace_s=0).temp_removed == 0  # could be a write in progress
    old = time.time() - MIN_TEMP_AGE_S - 1
    os.utime(leftover, (old, old))
    assert reg.gc(grace_s=0).temp_removed == 1 and not leftover.exists()


def test_weights_serialize_is_byte_identical_across_calls_and_processes() -> None:
    """Content addressing needs equal models to give equal bytes (safetensors alone orders its
    metadata map differently from call to call)."""
    code = ("import torch,sys; from causalcast.weights import serialize;"
            "g=torch.Generator().manual_seed(3);"
            "sys.stdout.write(serialize({'b': torch.randn(4, generator=g), 'a': torch.ones(2)},"
            "{'x': 1, 'y': 'z', 'w': [1]})[1])")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout
    gen = torch.Generator().manual_seed(3)
    tensors = {"b": torch.randn(4, generator=gen), "a": torch.ones(2)}
    here = {serialize(tensors, {"x": 1, "y": "z", "w": [1]})[1] for _ in range(20)}
    assert here == {other}


# ---------------------------------------------------------------- lineage
frames_strategy = st.dictionaries(
    st.sampled_from(["AAA", "BBB", "CCC"]),
    st.integers(2, 30).flatmap(lambda n: st.tuples(
        st.just(n), st.integers(0, 2**31 - 1))), min_size=1)


def _frames(spec: dict[str, tuple[int, int]]) -> dict[str, pd.DataFrame]:
    out = {}
    for symbol, (n, seed) in spec.items():
        rng = np.random.default_rng(seed)
        out[symbol] = pd.DataFrame(
            {"open": rng.random(n), "close": rng.random(n),
             "volume": rng.integers(0, 10**6, n)},
            index=pd.date_range("2020-01-01", periods=n, freq="D", name="date"))
    return out


@settings(max_examples=40, deadline=None)
@given(frames_strategy, st.randoms(use_true_random=False))
def test_fingerprint_ignores_order_and_sees_every_value(spec: dict, rnd) -> None:
    frames = _frames(spec)
    base = fingerprint_frames(frames)
    shuffled = {s: frames[s][rnd.sample(list(frames[s].columns), 3)]
                for s in rnd.sample(list(frames), len(frames))}
    assert fingerprint_frames(shuffled) == base
    as_float = {s: f.astype({"volume": "float64"}) for s, f in frames.items()}
    assert fingerprint_frames(as_float) == base
    symbol = rnd.choice(sorted(frames))
    changed = {s: f.copy() for s, f in frames.items()}
    row, col = rnd.randrange(len(changed[symbol])), rnd.randrange(3)
    changed[symbol].iloc[row, col] = changed[symbol].iloc[row, col] + 1
    assert fingerprint_frames(changed) != base
    fewer = {s: f.iloc[:-1] for s, f in frames.items()}
    assert fingerprint_frames(fewer) != base


def test_lineage_from_settings_records_data_features_split_and_code() -> None:
    settings_ = load_settings(overrides={"seed": 7})
    frames = make_universe(2, 300, seed=1).frames
    lin = Lineage.from_settings(settings_, frames, symbol="*", model="lstm", fold=0)
    assert lin.data_fingerprint == fingerprint_frames(frames)
    assert lin.feature_config["lookback"] == settings_.features.lookback
    assert lin.split_config["embargo"] == settings_.split.embargo
    assert lin.seed == 7 and lin.code["package"]
    with pytest.raises(RegistryError, match="data_fingerprint"):
        Lineage("not-a-hash", {}, {})


# ---------------------------------------------------------------- runs and jobs
def test_job_lifecycle_failure_traceback_retry_and_completion(reg: Registry) -> None:
    run = reg.start_run("r1", name="test", config={"profile": "quick"})
    keys = [KEY, JobKey("BBB", "lstm", 0), JobKey("*", "tcn", 1)]
    assert reg.plan_jobs(run, keys) == 3 and reg.plan_jobs(run, keys) == 0
    assert reg.job_started(run, KEY).attempts == 1
    try:
        raise FloatingPointError("loss became NaN at epoch 3")
    except FloatingPointError as exc:
        failed = reg.job_failed(run, KEY, exc)
    assert failed.status == "failed" and "FloatingPointError: loss" in failed.error
    assert "Traceback" in failed.traceback and "raise FloatingPointError" in failed.traceback
    assert failed.seconds is not None and failed.seconds >= 0
    retry = reg.job_started(run, KEY)
    assert retry.status == "running" and retry.attempts == 2 and retry.error is None
    reg.log_epoch(run, KEY, 0, {"loss": 2.0})
    reg.log_epoch(run, KEY, 1, {"loss": float("nan")})
    reg.log_epoch(run, KEY, 1, {"loss": 1.5})  # resumed epoch overwrites
    assert reg.epoch_metrics(run, KEY) == [{"epoch": 0, "loss": 2.0}, {"epoch": 1, "loss": 1.5}]
    v = reg.register_version("lstm-AAA", weights(1), {}, good_metrics(), lineage(), run_id=run,
                             job=KEY)
    assert reg.missing_jobs(run, keys) == keys[1:]
    assert reg.completed_jobs(run) == {KEY}
    job = reg.jobs(run, "done")[0]
    assert job.version_id == v.version_id and v.job_id == job.job_id
    assert reg.progress(run) == {"pending": 2, "running": 0, "done": 1, "failed": 0, "total": 3}
    # A retried worker (at-least-once executor) sees the job done and registers nothing new.
    assert reg.job_started(run, KEY).status == "done"
    again = reg.register_version("lstm-AAA", weights(2), {}, good_metrics(), lineage(),
                                 run_id=run, job=KEY)
    assert again.version_id == v.version_id and len(reg.versions()) == 1
    reg.job_finished(run, keys[1])  # a job that registers nothing
    reg.finish_run(run)
    assert reg.get_run(run).status == "failed"  # one job never ran
    assert reg.start_run(run) == run and reg.get_run(run).status == "running"  # resumable


def test_registry_pickles_as_its_home(reg: Registry) -> None:
    reg.register_version("m", b"x", {}, {}, lineage())
    clone = pickle.loads(pickle.dumps(reg))
    assert [v.ref for v in clone.versions()] == ["m:1"]
    clone.close()


# ---------------------------------------------------------------- stages, gates, history
def test_promote_records_who_when_why_gates_and_rollback_walks_back(reg: Registry) -> None:
    v1, v2, v3 = (reg.register_version("lstm-AAA", weights(i), {"i": i}, good_metrics(),
                                       lineage()) for i in range(3))
    p1 = reg.promote(v1.ref, by="alice", reason="first good model")
    assert p1.version.stage == "production" and all(g.passed for g in p1.gates)
    reg.promote(v2.version_id, by="bob", reason="better")
    reg.promote("lstm-AAA:3", by="carol", reason="best")
    assert reg.get_version(v1.version_id).stage == "archived"
    assert reg.production("lstm-AAA").version_id == v3.version_id
    assert reg.get_version("lstm-AAA@production").version_id == v3.version_id
    promote_events = [e for e in reg.history("lstm-AAA") if e.action == "promote"]
    assert [(e.version, e.by, e.reason) for e in promote_events] == [
        (1, "alice", "first good model"), (2, "bob", "better"), (3, "carol", "best")]
    assert {g["gate"] for g in promote_events[0].gates} == {
        "leakage_audit", "beats_naive_baseline", "significant_vs_naive"}
    assert promote_events[2].replaced_version_id == v2.version_id
    assert all(e.at for e in promote_events)

    assert reg.rollback("lstm-AAA", by="dave", reason="v3 misbehaves").version_id == \
        v2.version_id
    assert reg.get_version(v3.version_id).stage == "archived"
    assert reg.rollback("lstm-AAA").version_id == v1.version_id
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        reg.rollback("lstm-AAA")
    assert reg.production("lstm-AAA").version_id == v1.version_id
    last = reg.history("lstm-AAA")[-2:]
    assert [(e.version, e.to_stage, e.action) for e in last] == [
        (2, "archived", "rollback"), (1, "production", "rollback")]
    assert reg.verify().ok


def test_gates_refuse_with_reasons_and_change_nothing(reg: Registry) -> None:
    run = reg.start_run("r")
    reg.record_audit(run, {"passed": False, "n_checks": 4, "n_failures": 1,
                           "checks": [{"name": "prefix", "passed": False}]})
    leaky = reg.register_version("m", b"a", {}, {"baseline_comparison": baseline_comparison(
        "acc", 0.6, 0.5, lower_is_better=False), "significance": SIGNIFICANT}, lineage(),
        run_id=run)
    worse = reg.register_version("m", b"b", {}, good_metrics(1.1, 1.0), lineage())
    no_record = reg.register_version("m", b"c", {}, {}, lineage())
    before = snapshot(reg)
    with pytest.raises(GateRefused, match="'leakage_audit': leakage audit in run r FAILED") as e:
        reg.promote(leaky.ref)
    assert [r.passed for r in e.value.results] == [False, True, True]
    with pytest.raises(GateRefused, match=r"beats_naive_baseline.*1\.1 does not beat naive 1"):
        reg.promote(worse.ref)
    with pytest.raises(GateRefused, match=r"no leakage audit recorded.*no baseline comparison"):
        reg.promote(no_record.ref)
    assert snapshot(reg) == before
    assert reg.promote(worse.ref, stage="archived", reason="worse").version.stage == "archived"


def test_gates_are_pluggable_and_a_crashing_gate_refuses(reg: Registry) -> None:
    v = reg.register_version("m", weights(1), {}, good_metrics(), lineage())

    @register_gate("test_significance", default=False)
    def significance(ctx):  # what the evaluation engineer will add
        p = ctx.version.metrics.get("dm_p_value")
        return p is not None and p < 0.05, f"p = {p}"

    @register_gate("test_broken", default=False)
    def broken(ctx):
        raise RuntimeError("statistics library missing")

    try:
        with pytest.raises(GateRefused, match=r"test_significance.*p = None"):
            reg.promote(v.ref, gates=["leakage_audit", "test_significance"])
        with pytest.raises(GateRefused, match="gate raised RuntimeError"):
            reg.promote(v.ref, gates=["test_broken"])
        with pytest.raises(RegistryError, match=r"unknown.*nonexistent"):
            reg.promote(v.ref, gates=["nonexistent"])
        assert reg.get_version(v.ref).stage == "candidate"
    finally:
        GATES.pop("test_significance")
        GATES.pop("test_broken")


def test_bad_input_is_named_and_loses_nothing(reg: Registry) -> None:
    v = reg.register_version("m", weights(1), {}, good_metrics(), lineage())
    reg.promote(v.ref)
    reg.start_run("r")
    before = snapshot(reg)
    cases = [
        (lambda: reg.get_version("m:7"), NotFoundError, r"'m:7'.*versions 1\.\.1"),
        (lambda: reg.get_version("x:1"), NotFoundError, "name 'x' is unknown"),
        (lambda: reg.get_version("m"), RegistryError, "expected an id"),
        (lambda: reg.promote(424242), NotFoundError, "version 424242"),
        (lambda: reg.promote(v.ref, stage="staging"), RegistryError,
         r"unknown stage 'staging'.*candidate"),
        (lambda: reg.promote(v.ref), RegistryError, "already production"),
        (lambda: reg.rollback("nope"), NotFoundError, "no production version"),
        (lambda: reg.register_version("bad name", b"z", {}, {}, lineage()), RegistryError,
         "version name"),
        (lambda: reg.register_version("m", b"z", {}, {"val": float("nan")}, lineage()),
         RegistryError, r"metrics\['val'\]: nan is not a finite number"),
        (lambda: reg.register_version("m", b"z", {"f": object()}, {}, lineage()),
         RegistryError, "config: not JSON"),
        (lambda: reg.register_version("m", b"z", {}, {}, {"data_fingerprint": FP}),
         RegistryError, "lineage: expected"),
        (lambda: reg.register_version("m", b"z", {}, {}, lineage(), run_id="ghost"),
         NotFoundError, "run 'ghost'"),
        (lambda: reg.job_started("ghost", KEY), NotFoundError, "run 'ghost'"),
        (lambda: reg.job_started("r", ("AAA", "lstm", -1)), RegistryError, "fold"),
        (lambda: reg.register_version("m", b"z", {}, {}, lineage(), run_id="r", job=KEY),
         NotFoundError, "no such job"),
        (lambda: reg.versions(stage="live"), RegistryError, "unknown stage 'live'"),
        (lambda: reg.gc(grace_s=-1), RegistryError, "grace"),
    ]
    for call, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            call()
    # Nothing half-done: no row, no orphan artifact ("z" was refused before it was written).
    assert snapshot(reg) == before
    assert reg.verify().ok


# ---------------------------------------------------------------- verify and gc
def test_verify_finds_corrupt_and_missing_artifacts_and_dangling_references(
        reg: Registry) -> None:
    a = reg.register_version("m", weights(1), {}, {}, lineage())
    b = reg.register_version("m", weights(2), {}, {}, lineage())
    assert reg.verify().ok
    path = reg.artifacts.path(a.artifact_sha256)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    reg.artifacts.path(b.artifact_sha256).unlink()
    db = sqlite3.connect(reg.meta.path)  # a hand edit, foreign keys and checks off
    db.execute("PRAGMA ignore_check_constraints = 1")
    db.execute("INSERT INTO jobs (run_id, symbol, model, fold, status, created_at) "
               "VALUES ('ghost', 'A', 'lstm', 0, 'pending', 'now')")
    db.execute("UPDATE version_stages SET stage = 'staging' WHERE version_id = ?",
               (a.version_id,))
    db.execute("DELETE FROM version_stages WHERE version_id = ?", (b.version_id,))
    db.commit()
    db.close()
    problems = "\n".join(reg.verify().problems)
    assert f"artifact {a.artifact_sha256}: corrupt" in problems
    assert f"version m:2 (id {b.version_id}): artifact {b.artifact_sha256} is missing" in problems
    assert "run 'ghost' does not exist" in problems
    assert "unknown stage 'staging'" in problems
    assert f"version {b.version_id} (m): has no stage" in problems
    with pytest.raises(ArtifactError, match="corrupt"):
        reg.load_artifact(a.ref)


def test_gc_removes_only_old_unreferenced_objects(reg: Registry) -> None:
    kept = reg.register_version("m", weights(1), {}, {}, lineage())
    orphan_old, orphan_young = reg.artifacts.put(b"old orphan"), reg.artifacts.put(b"young")
    old = time.time() - 7200
    os.utime(reg.artifacts.path(orphan_old), (old, old))
    os.utime(reg.artifacts.path(kept.artifact_sha256), (old, old))
    dry = reg.gc(grace_s=3600, dry_run=True)
    assert dry.removed == [orphan_old] and reg.artifacts.exists(orphan_old)
    report = reg.gc(grace_s=3600)
    assert report.removed == [orphan_old] and report.bytes_freed == len(b"old orphan")
    assert report.kept_referenced == 1 and report.kept_young == 1
    assert set(reg.artifacts.digests()) == {kept.artifact_sha256, orphan_young}
    reg.gc(grace_s=0)
    assert set(reg.artifacts.digests()) == {kept.artifact_sha256}
    assert reg.verify().ok


def test_register_survives_gc_between_writing_the_artifact_and_committing(
        reg: Registry) -> None:
    """The race the lock closes: a writer has put its artifact but not yet inserted the row;
    a gc with no grace removes the (still unreferenced) object; the writer's locked step puts
    it back before committing, so the row never points at nothing."""
    data = weights(5)
    digest = reg.artifacts.put(data)  # a writer's first, unlocked step ...
    assert reg.gc(grace_s=0).removed == [digest]  # ... gc runs in between ...
    version = reg.register_version("m", data, {}, {}, lineage())  # ... the writer commits
    assert version.artifact_sha256 == digest and reg.load_artifact(version) == data
    assert reg.verify().ok
    # And a re-put of existing bytes refreshes the age that gc's grace period counts from.
    old = time.time() - 7200
    os.utime(reg.artifacts.path(digest), (old, old))
    reg.artifacts.put(data)
    assert reg.artifacts.age_seconds(digest) < 60
