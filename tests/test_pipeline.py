"""The main job's stages on small data: parallel training into a registry, walk-forward
evaluation, evaluated versions promoted only through the gates."""

from __future__ import annotations

import pytest

from causalcast.audit import run_audit
from causalcast.config import load_settings
from causalcast.data.resolve import resolve_source
from causalcast.pipeline import Dataset, evaluate_dataset, promote_evaluated, train_dataset
from causalcast.registry import Registry

pytestmark = pytest.mark.slow

DATA = "synthetic:3,900,0.45,11"


def test_main_job_stages_promote_only_what_beats_naive(tmp_path):
    frames, universe = resolve_source(DATA)
    settings = load_settings(overrides={"features": {"lookback": 12, "horizons": (1, 5)}},
                             environ={})
    ds = Dataset("synthetic", DATA, frames, run_audit(frames, settings, n_cuts=3), universe)
    run = train_dataset(ds, home=tmp_path, models=("naive", "ridge"), n_folds=5,
                        horizons=(1, 5), lookback=12, seed=0, profile="quick", workers=2)
    assert run.status == "done" and run.planned == 12 and run.failed == 0
    result = evaluate_dataset(ds)
    assert result["models"]["ridge"]["folds"] == [0, 1, 2, 3, 4]
    rows = {r["model"]: r for r in promote_evaluated(ds, tmp_path)}
    assert rows["ridge"]["promoted"], rows["ridge"]
    assert not rows["naive"]["promoted"] and "significant_vs_naive" in rows["naive"]["reason"]
    registry = Registry.open(tmp_path)
    try:
        prod = registry.versions(stage="production")
        assert [v.name for v in prod] == ["ridge/global"]
        version = prod[0]
        # The final fit itself is promoted: registered once, its evaluation attached to it.
        assert version.ref == "ridge/global:1" == rows["ridge"]["version"]
        assert [v.ref for v in registry.versions("ridge/global")] == ["ridge/global:1"]
        evaluation = registry.evaluation(version.ref)
        assert evaluation["significance"]["p_values"]["dm_vs_naive"] < 0.05
        assert evaluation["baseline_comparison"]["split"] == "validation"
        assert "significance" not in version.metrics   # the version row is unchanged
        assert registry.evaluation("naive/global:1") is not None
        assert registry.verify().ok
    finally:
        registry.close()
