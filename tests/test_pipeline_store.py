"""The main job's data path through the market data store (issue 13 item 6), end to end on
small data: bars imported into the store under the home, trained and evaluated from a pinned
``store:`` string, promoted through every gate, then served — a stored symbol the global model
never saw is answered with the evidence of the evaluation the pipeline attached."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from causalcast.audit import run_audit
from causalcast.config import load_settings
from causalcast.data.resolve import resolve_source
from causalcast.pipeline import (
    Dataset,
    evaluate_dataset,
    import_to_store,
    promote_evaluated,
    store_data_string,
    train_dataset,
)
from causalcast.registry import Registry
from causalcast.serving.app import create_app
from causalcast.serving.config import ServeConfig

pytestmark = pytest.mark.slow

DATA = "synthetic:3,900,0.45,11"
OTHER = "synthetic:1,900,0.45,12"     # its SYN000 is stored as EXTRA: a symbol never trained on


def test_main_job_reads_through_the_store_and_serves_unseen_symbols(tmp_path):
    frames, universe = resolve_source(DATA)
    extra, _ = resolve_source(OTHER)
    store = tmp_path / "data"
    first = import_to_store(store, frames)
    assert first.added == {s: 900 for s in frames}
    again = import_to_store(store, frames)          # a rerun stores nothing new
    assert not again.changed and again.version == first.version
    written = import_to_store(store, {"EXTRA": extra["SYN000"]})
    data = store_data_string(store, written.version)
    symbols = tuple(sorted(frames))
    loaded, _ = resolve_source(data, list(symbols))
    for s in symbols:   # what training reads is exactly what was imported
        original = frames[s].set_axis(frames[s].index.as_unit("ns"))
        pd.testing.assert_frame_equal(loaded[s], original, check_freq=False,
                                      check_dtype=False)
    # Pinned: a later revision of the store does not change what this run's string reads.
    revised = frames["SYN000"].copy()
    revised.iloc[-1, revised.columns.get_loc("volume")] += 1.0
    assert import_to_store(store, {"SYN000": revised}, revise=True).revisions
    pinned, _ = resolve_source(data, ["SYN000"])
    assert pinned["SYN000"]["volume"].iloc[-1] == frames["SYN000"]["volume"].iloc[-1]

    settings = load_settings(overrides={"features": {"lookback": 12, "horizons": (1, 5)}},
                             environ={})
    ds = Dataset("synthetic", data, loaded, run_audit(loaded, settings, n_cuts=3), universe,
                 symbols=symbols)
    run = train_dataset(ds, home=tmp_path, models=("naive", "ridge"), n_folds=5,
                        horizons=(1, 5), lookback=12, seed=0, profile="quick", workers=2)
    assert run.status == "done" and run.failed == 0
    evaluate_dataset(ds)
    rows = {r["model"]: r for r in promote_evaluated(ds, tmp_path)}
    assert rows["ridge"]["promoted"], rows["ridge"]
    registry = Registry.open(tmp_path)
    try:
        version = registry.production("ridge/global")
        assert version.lineage["extra"]["data"] == data
        assert version.lineage["extra"]["symbols"] == list(symbols)
        evaluation = registry.evaluation_record(version.ref)
    finally:
        registry.close()

    with TestClient(create_app(ServeConfig(home=tmp_path, api_key=None, poll_seconds=0))) as c:
        res = c.post("/v1/forecast", json={"symbol": "EXTRA"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["unseen_symbol"] is True and body["model_scope"] == "global"
    assert body["model_versions"] == [version.ref]
    ev, recorded = body["evidence"], evaluation.evaluation
    assert ev["accuracy"] == recorded["walk_forward"]["accuracy"]
    assert ev["p_dm"] == recorded["significance"]["p_values"]["dm_vs_naive"] < 0.05
    assert ev["grade"] == recorded["grade"]["shown"]
    assert ev["beats_naive"] is True
    assert len(body["warnings"]) == 1 and "not on EXTRA" in body["warnings"][0]
    assert ev["evaluated_at"] == evaluation.created_at and ev["source"] == "evaluation"
