"""The analytics through the CLI and HTTP: JSON outputs with units, strict numeric
validation (no strings or booleans for numbers), 4xx naming the field."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.options.analytics.synthetic import synthetic_chain
from causalcast.serving.app import create_app
from causalcast.serving.config import ServeConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def chain_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("chain") / "chain.csv"
    synthetic_chain(n_strikes=21).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with TestClient(create_app(ServeConfig(home=home, api_key=None, poll_seconds=0))) as c:
        yield c


def _chain_rows() -> list[dict]:
    frame = synthetic_chain(n_strikes=11)
    frame["expiry"] = frame["expiry"].astype(str)
    frame["as_of"] = frame["as_of"].astype(str)
    return frame.to_dict(orient="records")


def test_cli_surface_and_strategy_json(chain_csv, tmp_path) -> None:
    res = runner.invoke(app, ["options", "surface", "--chain", str(chain_csv), "--json",
                              "--plot", str(tmp_path / "smile.png")])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert len(report["expiries"]) == 4 and (tmp_path / "smile.png").exists()
    res = runner.invoke(app, ["options", "strategy", "--chain", str(chain_csv), "--preset",
                              "iron-condor", "--strikes", "85,95,105,115", "--expiry", "91d",
                              "--sigma", "0.2", "--forecast",
                              '{"mu": 0.0, "sigma": 0.1, "nu": 4, "horizon": 0.25}',
                              "--json", "--plot", str(tmp_path / "pnl.png")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("net_premium", "breakevens", "max_profit", "max_loss", "pop", "expected_pnl",
                "greeks", "greeks_units"):
        assert key in out
    assert set(out["pop"]) == {"lognormal", "market", "model"}


def test_cli_iv_on_a_chain_and_bad_leg_exits_2(chain_csv) -> None:
    res = runner.invoke(app, ["options", "iv", "--chain", str(chain_csv), "--json"])
    assert res.exit_code == 0, res.output
    quotes = json.loads(res.stdout)["quotes"]
    assert all(q["implied_volatility"] is not None or q["reason"] for q in quotes)
    res = runner.invoke(app, ["options", "strategy", "--leg", "+1 call x 1", "--spot", "100",
                              "--sigma", "0.2"])
    assert res.exit_code == 2 and "strike" in res.output


def test_http_implied_vol_surface_strategy(client) -> None:
    r = client.post("/v1/options/implied-vol", json={"quotes": {
        "price": [10.45, 0.01], "spot": 100, "strike": [100, 300], "tau": 1, "rate": 0.05}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["implied_volatility"][0] == pytest.approx(0.2, abs=1e-3)
    assert body["implied_volatility"][1] is None or body["reason"][1] is None
    r = client.post("/v1/options/surface", json={"chain": _chain_rows()})
    assert r.status_code == 200, r.text
    assert len(r.json()["expiries"]) == 4
    r = client.post("/v1/options/strategy", json={
        "legs": [{"quantity": 1, "kind": "call", "strike": 100, "tau": 0.25},
                 {"quantity": -1, "kind": "call", "strike": 110, "tau": 0.25}],
        "spot": 100, "sigma": 0.2, "greeks_units": "raw"})
    assert r.status_code == 200, r.text
    assert r.json()["greeks_units"]["convention"] == "raw"


@pytest.mark.parametrize("body,field", [
    ({"quotes": {"price": "10", "spot": 100, "strike": 100, "tau": 1}}, "price"),
    ({"quotes": {"price": 10, "spot": True, "strike": 100, "tau": 1}}, "spot"),
    ({"quotes": {"price": 10, "spot": 100, "strike": -1, "tau": 1}}, "strike"),
])
def test_http_strict_numbers(client, body, field) -> None:
    r = client.post("/v1/options/implied-vol", json=body)
    assert r.status_code == 422
    assert any(field in map(str, e["loc"]) for e in r.json()["detail"])


def test_http_bad_strategy_is_422_naming_the_field(client) -> None:
    r = client.post("/v1/options/strategy", json={
        "legs": [{"quantity": 1, "kind": "call", "strike": 100}], "spot": 100, "sigma": 0.2})
    assert r.status_code == 422 and "legs" in json.dumps(r.json())
    r = client.post("/v1/options/strategy", json={
        "legs": [{"quantity": 1, "kind": "call", "strike": 100, "tau": 0.2}], "spot": 100,
        "sigma": 0.2, "dates": [0.5]})
    assert r.status_code == 422 and "dates" in json.dumps(r.json())
