"""Evaluations attached to existing versions (schema migration 2) and the gates reading them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from causalcast.registry import (
    GateRefused,
    Lineage,
    NotFoundError,
    Registry,
    RegistryError,
    baseline_comparison,
    significance_record,
)
from causalcast.registry.schema import MIGRATIONS
from tests.support.frames import weights_file

FP = "e" * 64
EVALUATION = {
    "leakage_audit": {"passed": True, "status": "passed"},
    "baseline_comparison": baseline_comparison("val_mse_h1", 0.9, 1.0, lower_is_better=True),
    "significance": significance_record({"dm_vs_naive": 0.01, "direction": 0.02}),
}


def _lineage() -> Lineage:
    return Lineage(FP, {"lookback": 8}, {"n_folds": 2})


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    registry = Registry.open(tmp_path)
    yield registry
    registry.close()


def test_gates_read_the_attached_evaluation_without_a_second_version(reg: Registry) -> None:
    version = reg.register_version("ridge/global", weights_file(), {}, {"val_loss": 1.0},
                                   _lineage())
    with pytest.raises(GateRefused, match="no baseline comparison"):
        reg.promote(version.ref)
    assert reg.evaluation(version.ref) is None
    record = reg.attach_evaluation(version.ref, EVALUATION, by="tester")
    assert (record.version_id, record.by, record.evaluation) == (
        version.version_id, "tester", EVALUATION)
    assert reg.evaluation(version.version_id) == EVALUATION
    promoted = reg.promote(version.ref, reason="evaluated")
    assert promoted.version.version_id == version.version_id
    assert all(g.passed for g in promoted.gates)
    assert any("attached evaluation" in g.detail for g in promoted.gates)
    assert [v.ref for v in reg.versions()] == ["ridge/global:1"]
    assert reg.get_version(version.ref).metrics == {"val_loss": 1.0}   # the row is untouched
    assert reg.verify().ok


def test_the_latest_evaluation_wins_and_overrides_version_metrics(reg: Registry) -> None:
    good = {"baseline_comparison": baseline_comparison("mse", 0.9, 1.0, lower_is_better=True)}
    version = reg.register_version("m", weights_file(), {}, good, _lineage())
    assert reg.check_gates(version.ref, ["beats_naive_baseline"])[0].passed
    worse = {"baseline_comparison": baseline_comparison("mse", 1.2, 1.0, lower_is_better=True)}
    reg.attach_evaluation(version.ref, EVALUATION)
    reg.attach_evaluation(version.ref, worse)
    assert reg.evaluation(version.ref) == worse
    result = reg.check_gates(version.ref, ["beats_naive_baseline"])[0]
    assert not result.passed and "1.2 does not beat" in result.detail


def test_bad_evaluations_are_refused_and_change_nothing(reg: Registry) -> None:
    version = reg.register_version("m", weights_file(), {}, {}, _lineage())
    with pytest.raises(NotFoundError, match="m:7"):
        reg.attach_evaluation("m:7", EVALUATION)
    with pytest.raises(RegistryError, match="evaluation: expected a non-empty dict"):
        reg.attach_evaluation(version.ref, {})
    with pytest.raises(RegistryError, match="evaluation"):
        reg.attach_evaluation(version.ref, {"x": float("nan")})
    assert reg.evaluation(version.ref) is None


def test_a_version_1_registry_is_migrated_and_keeps_its_versions(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.mkdir()
    db = sqlite3.connect(root / "registry.db")
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT "
               "NULL, applied_at TEXT NOT NULL)")
    version, name, statements = MIGRATIONS[0]
    for statement in statements:
        db.execute(statement)
    db.execute("INSERT INTO schema_migrations VALUES (?, ?, 'then')", (version, name))
    db.commit()
    db.close()
    with Registry.open(tmp_path) as reg:
        v = reg.register_version("m", weights_file(), {}, {}, _lineage())
        reg.attach_evaluation(v.ref, EVALUATION)
    with Registry.open(tmp_path) as reg:
        assert reg.evaluation("m:1") == EVALUATION
    db = sqlite3.connect(root / "registry.db")
    applied = [r[0] for r in db.execute("SELECT version FROM schema_migrations")]
    assert applied == [m[0] for m in MIGRATIONS]   # every later one, once
