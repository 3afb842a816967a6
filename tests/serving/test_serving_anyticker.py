"""Any-ticker forecasts and the evidence each forecast carries (issue 13 items 4 and 5).

A ridge model trained globally on three synthetic symbols answers a symbol it never saw, from
bars in the request or from the store; its features are scaled with the pooled scaler. Every
answer carries the version's evidence; a version promoted by a manual gate override is served
with ``beats_naive`` false and a warning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from causalcast.cli import app as cli_app
from causalcast.data.resolve import resolve_source
from causalcast.models.bundle import POOLED
from causalcast.registry import Lineage, Registry, significance_record
from causalcast.serving.app import create_app
from causalcast.serving.config import ServeConfig
from causalcast.store import BarStore
from tests.support.serving import train_and_register

pytestmark = pytest.mark.slow   # ~20 s for the module: one ridge model trained and registered

# The shape `evaluation.promotion_metrics` writes; the values are what a walk-forward
# evaluation might have found, and the test checks that each reaches the response unchanged.
WALK_FORWARD = {"accuracy": 0.5412, "ci_low": 0.5203, "ci_high": 0.5619,
                "always_up": 0.5120, "crps": 0.011, "sharpe": 0.8, "folds": 5, "n": 2240}
P_VALUES = {"dm_vs_naive": 0.012, "direction": 0.031}
OTHER = "synthetic:2,900,0.325,77"      # a different universe: its symbols are unseen


def _attach_passing_evaluation(reg: Registry, ref: str) -> None:
    reg.attach_evaluation(ref, {
        "significance": significance_record(P_VALUES, horizon=1, n=WALK_FORWARD["n"]),
        "grade": {"computed": "C", "shown": "C", "gate_passed": True, "reasons": []},
        "walk_forward": WALK_FORWARD}, by="tester")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("anyticker")
    (ref,) = train_and_register(home, models=("ridge",), promote=False)
    reg = Registry.open(home)
    try:
        _attach_passing_evaluation(reg, ref)
        reg.promote(ref, reason="every default gate")           # earned: all gates pass
        # The same model under a second name, promoted with only one gate: an override.
        version = reg.get_version(ref)
        twin = reg.register_version(
            "ridge-override", reg.load_artifact(version), version.config,
            {**version.metrics, "val_loss": 1e9},
            Lineage(version.data_fingerprint, version.feature_config, version.split_config),
            run_id=version.run_id)
        reg.promote(twin.ref, gates=["leakage_audit"], reason="shipping it anyway")
    finally:
        reg.close()
    unseen, _ = resolve_source(OTHER)
    BarStore(home / "data").write({"STORECO": unseen["SYN001"]})
    return home


@pytest.fixture(scope="module")
def client(home):
    with TestClient(create_app(ServeConfig(home=home, api_key=None, poll_seconds=0))) as c:
        yield c


@pytest.fixture(scope="module")
def bundle(client):
    return client.app.state.hub.state.choose("SYN000", "ridge-global").bundle


def _bars(frame: pd.DataFrame) -> list[dict]:
    return [{"date": ts.isoformat(), "open": float(r.open), "high": float(r.high),
             "low": float(r.low), "close": float(r.close), "volume": float(r.volume)}
            for ts, r in frame.iterrows()]


def _unseen_frame() -> pd.DataFrame:
    frames, _ = resolve_source(OTHER)
    return frames["SYN000"]


def test_unseen_symbol_from_its_bars_uses_the_pooled_scaler(client, bundle):
    frame = _unseen_frame().iloc[-300:]
    res = client.post("/v1/forecast", json={"symbol": "NEWCO", "bars": _bars(frame)})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["model_scope"] == "global" and body["unseen_symbol"] is True
    assert body["model"] == "ridge-global"
    assert "NEWCO" not in bundle.scalers and POOLED in bundle.scalers
    # Independently: the pooled scaler's window through the bundle gives the same numbers.
    expected = bundle.forecast({"NEWCO": frame})["NEWCO"]
    got = [h["mean_log_return"] for h in body["forecasts"]]
    np.testing.assert_allclose(got, expected.mean, rtol=1e-9)
    ev = body["evidence"]
    assert (ev["accuracy"], ev["ci_low"], ev["ci_high"], ev["always_up"], ev["n_test"]) == (
        WALK_FORWARD["accuracy"], WALK_FORWARD["ci_low"], WALK_FORWARD["ci_high"],
        WALK_FORWARD["always_up"], WALK_FORWARD["n"])
    assert (ev["p_dm"], ev["p_direction"], ev["grade"]) == (0.012, 0.031, "C")
    assert ev["beats_naive"] is True and ev["manual_override"] is False
    assert ev["source"] == "evaluation" and ev["evaluated_at"] and ev["missing"] == {}
    # The one warning: the evidence is the version's, not a measurement on NEWCO.
    assert len(body["warnings"]) == 1 and "not on NEWCO" in body["warnings"][0]


def test_a_trained_symbol_is_not_unseen(client):
    body = client.post("/v1/forecast", json={"symbol": "SYN000"}).json()
    assert body["unseen_symbol"] is False and body["model_scope"] == "global"
    assert body["evidence"]["beats_naive"] is True and body["warnings"] == []


def test_too_few_bars_is_a_422_naming_how_many_are_needed(client, bundle):
    need = bundle.min_bars
    frame = _unseen_frame()
    short = client.post("/v1/forecast", json={"symbol": "NEWCO",
                                               "bars": _bars(frame.iloc[-(need - 1):])})
    assert short.status_code == 422, short.text
    assert f"need at least {need}" in short.text and f"{need - 1} bars" in short.text
    # The count is exact: that many bars are enough.
    enough = client.post("/v1/forecast", json={"symbol": "NEWCO",
                                                "bars": _bars(frame.iloc[-need:])})
    assert enough.status_code == 200, enough.text


def test_a_symbol_only_in_the_store_is_answered(client, bundle, home):
    res = client.post("/v1/forecast", json={"symbol": "storeco"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["symbol"] == "STORECO" and body["unseen_symbol"] is True
    stored = BarStore(home / "data").read("STORECO")
    assert body["as_of"] == stored.index[-1].isoformat()
    assert "evidence" in body
    absent = client.post("/v1/forecast", json={"symbol": "NOWHERE"})
    assert absent.status_code == 404 and "store" in absent.json()["detail"]


def test_a_manual_override_is_served_with_beats_naive_false_and_a_warning(client):
    res = client.post("/v1/forecast", json={"symbol": "SYN000", "model": "ridge-override"})
    assert res.status_code == 200, res.text
    body = res.json()
    ev = body["evidence"]
    assert ev["manual_override"] is True and ev["beats_naive"] is False
    assert len(body["warnings"]) == 1
    assert "override" in body["warnings"][0] and "significant_vs_naive" in body["warnings"][0]
    # No evaluation attached to this version: the recorded metrics are read, and the fields
    # they do not hold are null with a reason.
    assert ev["source"] == "metrics" and ev["accuracy"] is None
    assert set(ev["missing"]) >= {"accuracy", "p_dm", "grade"}


def test_cli_predict_answers_from_the_store_like_the_service(home, client):
    result = CliRunner().invoke(cli_app, ["predict", "--home", str(home), "--data",
                                          f"store:{home / 'data'}", "--symbol", "STORECO",
                                          "--json"])
    assert result.exit_code == 0, result.output
    (cli,) = json.loads(result.stdout)
    http = client.post("/v1/forecast", json={"symbol": "STORECO"}).json()
    assert cli["unseen_symbol"] is True and cli["evidence"] == http["evidence"]
    assert [h["mean_log_return"] for h in cli["forecasts"]] == pytest.approx(
        [h["mean_log_return"] for h in http["forecasts"]], rel=1e-12)


def test_cli_predict_too_few_bars_is_one_line(home, tmp_path, bundle):
    short = _unseen_frame().iloc[-(bundle.min_bars - 5):]
    BarStore(tmp_path / "s").write({"TINY": short})
    result = CliRunner().invoke(cli_app, ["predict", "--home", str(home), "--data",
                                          f"store:{tmp_path / 's'}", "--symbol", "TINY"])
    assert result.exit_code == 2
    assert f"need at least {bundle.min_bars}" in result.output


def test_evidence_is_reread_at_reload_and_cached_answers_do_not_outlive_it(client, home):
    reg = Registry.open(home)
    try:
        base = reg.get_version("ridge-global:1")
        late = reg.register_version(
            "ridge-late", reg.load_artifact(base), base.config,
            {**base.metrics, "val_loss": 2e9},
            Lineage(base.data_fingerprint, base.feature_config, base.split_config),
            run_id=base.run_id)
        reg.promote(late.ref, gates=[], reason="no gates at all")
    finally:
        reg.close()
    assert client.post("/v1/admin/reload").status_code == 200
    ask = {"symbol": "SYN001", "model": "ridge-late"}
    before = client.post("/v1/forecast", json=ask).json()
    assert before["evidence"]["source"] == "metrics" and before["evidence"]["accuracy"] is None
    reg = Registry.open(home)
    try:
        _attach_passing_evaluation(reg, late.ref)
    finally:
        reg.close()
    assert client.post("/v1/forecast", json=ask).json()["cached"] is True   # loaded once
    assert client.post("/v1/admin/reload").status_code == 200
    after = client.post("/v1/forecast", json=ask).json()
    assert after["cached"] is False and after["evidence"]["source"] == "evaluation"
    assert after["evidence"]["accuracy"] == WALK_FORWARD["accuracy"]
    # Passing evidence does not undo the override: still not served as beating naive.
    assert after["evidence"]["beats_naive"] is False and after["warnings"]


def test_cli_predict_without_a_registry_is_one_line(tmp_path):
    result = CliRunner().invoke(cli_app, ["predict", "--home", str(tmp_path / "none"),
                                          "--data", "synthetic:2,400,0.3,1"])
    assert result.exit_code == 2
    assert "no registry under" in result.output and "Traceback" not in result.output
