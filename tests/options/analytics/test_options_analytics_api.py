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


def _american_quotes() -> dict:
    """Three American quotes priced by QuantLib's finite differences at σ = 0.25."""
    from causalcast.options.quantlib_ref import quantlib_price

    strike, tau = [95.0, 100.0, 105.0], [0.5, 0.5, 0.5]
    price = quantlib_price(100.0, strike, tau, 0.25, 0.04, 0.01, ["put", "put", "call"],
                           "american", "fd", 400)
    return {"price": [float(p) for p in price], "spot": [100.0] * 3, "strike": strike,
            "tau": tau, "rate": [0.04] * 3, "div": [0.01] * 3, "kind": ["put", "put", "call"]}


def test_polish_through_cli_and_http(client, tmp_path) -> None:
    """--polish / "polish": true reach american_iv: each quote gets its FD residual, and the
    polished σ is the network σ moved by one FD Newton step (so it differs, and is close to the
    σ = 0.25 that priced the quotes); european + polish is refused naming the field."""
    import pandas as pd

    quotes = _american_quotes()
    body = {"quotes": quotes, "style": "american"}
    plain = client.post("/v1/options/implied-vol", json=body).json()
    polished = client.post("/v1/options/implied-vol", json={**body, "polish": True})
    assert polished.status_code == 200, polished.text
    out = polished.json()
    assert "fd_residual" not in plain and len(out["fd_residual"]) == 3
    assert all(r is not None and abs(r) < 0.05 for r in out["fd_residual"])
    assert "fd_residual" in out["units"]
    for net, pol in zip(plain["implied_volatility"], out["implied_volatility"], strict=True):
        assert net != pol and abs(pol - 0.25) < 2e-3
    bad = client.post("/v1/options/implied-vol", json={"quotes": quotes, "polish": True})
    assert bad.status_code == 422 and "polish" in bad.text

    path = tmp_path / "quotes.csv"
    frame = pd.DataFrame(quotes).rename(columns={"kind": "type"})
    frame.to_csv(path, index=False)
    res = runner.invoke(app, ["options", "iv", "--quotes", str(path), "--style", "american",
                              "--polish", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["quotes"]
    assert [r["implied_volatility"] for r in rows] == pytest.approx(out["implied_volatility"],
                                                                    abs=1e-12)
    assert all(r["fd_residual"] is not None for r in rows)
    res = runner.invoke(app, ["options", "iv", "--quotes", str(path), "--polish"])
    assert res.exit_code == 2 and "--polish" in res.output


def test_american_quote_without_time_value_is_refused_with_the_reason(client, tmp_path) -> None:
    """A deep in-the-money put priced a hair above exercise value: the CLI and HTTP answer
    null with the reason (negligible vega), beside a normal quote that is answered."""
    import pandas as pd

    from causalcast.options.analytics.american_iv import AMERICAN_MIN_VEGA_SIGMA
    from causalcast.options.analytics.iv import REASON_VEGA

    want = REASON_VEGA.format(AMERICAN_MIN_VEGA_SIGMA)
    normal = _american_quotes()
    quotes = {k: [v[0], v[0]] for k, v in normal.items()}   # the 95 put, twice
    quotes["price"][1], quotes["strike"][1], quotes["tau"][1] = 70.000001, 170.0, 1.5
    r = client.post("/v1/options/implied-vol", json={"quotes": quotes, "style": "american"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["implied_volatility"][0] == pytest.approx(0.25, abs=2e-3)
    assert body["reason"][0] is None
    assert body["implied_volatility"][1] is None and body["reason"][1] == want
    path = tmp_path / "quotes.csv"
    pd.DataFrame(quotes).rename(columns={"kind": "type"}).to_csv(path, index=False)
    res = runner.invoke(app, ["options", "iv", "--quotes", str(path), "--style", "american",
                              "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["quotes"]
    assert rows[0]["implied_volatility"] == pytest.approx(body["implied_volatility"][0])
    assert rows[1]["implied_volatility"] is None and rows[1]["reason"] == want
    # one quote on the command line: refused as a one-line error naming the reason
    res = runner.invoke(app, ["options", "iv", "--price", "70.000001", "--spot", "100",
                              "--strike", "170", "--tau", "1.5", "--rate", "0.04", "--div",
                              "0.01", "--kind", "put", "--style", "american"])
    assert res.exit_code == 2 and "vega negligible" in res.output
    assert "Traceback" not in res.output
