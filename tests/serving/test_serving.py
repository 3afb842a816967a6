"""The service in-process (TestClient runs the real app and its lifespan): forecasts, option
prices, probabilities, every bad-input class, auth, cache, metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.stats import norm

from causalcast.data.resolve import resolve_source
from causalcast.models.bundle import TrainedModel
from causalcast.options.black_scholes import bsm_price
from causalcast.registry import Registry
from causalcast.serving.app import create_app
from causalcast.serving.config import ServeConfig
from tests.support.serving import DATA, train_and_register


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("serve")
    train_and_register(home)
    return home


@pytest.fixture(scope="module")
def client(home):
    with TestClient(create_app(ServeConfig(home=home, api_key=None, poll_seconds=0))) as c:
        yield c


def option(**kw):
    base = {"spot": 100.0, "strike": 100.0, "tau": 0.5, "sigma": 0.2, "rate": 0.03,
            "div": 0.01, "kind": "call"}
    return {**base, **kw}


def test_health_ready_models(client):
    assert client.get("/healthz").json() == {"status": "ok", "detail": ""}
    assert client.get("/readyz").status_code == 200
    models = client.get("/v1/models").json()
    assert {m["model"] for m in models["models"]} == {"lstm-global", "ridge-global"}
    assert "european" in models["options"]


def test_options_batch_matches_closed_form(client):
    rng = np.random.default_rng(0)
    n = 1000
    opts = [option(spot=float(s), strike=100.0, tau=float(t), sigma=float(v),
                   kind="call" if i % 2 else "put")
            for i, (s, t, v) in enumerate(zip(rng.uniform(60, 180, n), rng.uniform(0.05, 2, n),
                                              rng.uniform(0.1, 0.8, n), strict=True))]
    res = client.post("/v1/options/price", json={"options": opts})
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    assert len(results) == n
    spot = np.array([o["spot"] for o in opts])
    tau = np.array([o["tau"] for o in opts])
    sigma = np.array([o["sigma"] for o in opts])
    kind = np.array([o["kind"] for o in opts])
    ref = bsm_price(spot, 100.0, tau, sigma, 0.03, 0.01, kind)
    price = np.array([r["price"] for r in results])
    assert np.abs(price - ref).max() < 2e-3 * 100
    assert all(r["delta"] is not None and r["gamma"] is not None for r in results)


def test_american_and_closed_methods(client):
    amer = client.post("/v1/options/price", json={"options": [
        option(kind="put", style="american", rate=0.08, div=0.0, spot=80)]})
    assert amer.status_code == 200
    euro = client.post("/v1/options/price", json={"options": [
        option(kind="put", rate=0.08, div=0.0, spot=80)], "method": "closed"})
    assert amer.json()["results"][0]["price"] >= euro.json()["results"][0]["price"] - 1e-6
    bad = client.post("/v1/options/price", json={"options": [option(style="american")],
                                                 "method": "closed"})
    assert bad.status_code == 422 and "closed form" in bad.text


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("spot", -1.0, "spot"), ("strike", 0.0, "strike"), ("sigma", -0.2, "sigma"),
    ("tau", 0.0, "tau"), ("div", -0.01, "div"), ("kind", "straddle", "kind"),
])
def test_bad_option_inputs_are_422_naming_the_field(client, field, value, fragment):
    res = client.post("/v1/options/price", json={"options": [option(**{field: value})]})
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert any(fragment in [str(x) for x in d["loc"]] for d in detail), detail


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(client, literal):
    body = json.dumps({"options": [option()]}).replace('"sigma": 0.2', f'"sigma": {literal}')
    res = client.post("/v1/options/price", content=body,
                      headers={"content-type": "application/json"})
    assert res.status_code == 422
    assert any("sigma" in d["loc"] for d in res.json()["detail"])


def test_outside_pinn_domain_refused_but_closed_form_allowed(client):
    res = client.post("/v1/options/price", json={"options": [option(), option(sigma=1.5)]})
    assert res.status_code == 422
    (detail,) = res.json()["detail"]
    assert detail["loc"] == ["body", "options", 1, "sigma"] and "trained domain" in detail["msg"]
    ok = client.post("/v1/options/price", json={"options": [option(sigma=1.5)],
                                                "method": "closed"})
    assert ok.status_code == 200


def test_batch_and_body_limits(client):
    too_many = client.post("/v1/options/price", json={"options": [option()] * 10_001})
    assert too_many.status_code in (413, 422)
    big = client.post("/v1/options/price", content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
                      headers={"content-type": "application/json"})
    assert big.status_code == 413


def test_probability_endpoint(client):
    req = {"spot": 100.0, "strike": 105.0, "tau": 0.25, "sigma": 0.3, "rate": 0.02}
    res = client.post("/v1/options/probability", json=req).json()
    d2 = (np.log(100 / 105) + (0.02 - 0.045) * 0.25) / (0.3 * 0.5)
    assert res["risk_neutral"] == pytest.approx(norm.cdf(d2), abs=1e-12)
    assert res["pinn_implied"] == pytest.approx(res["risk_neutral"], abs=0.01)
    assert res["forecast_implied"] is None
    res = client.post("/v1/options/probability", json={**req, "symbol": "SYN001"}).json()
    assert 0 < res["forecast_implied"] < 1 and res["forecast_horizon"] in (1, 5, 10, 30)
    assert client.post("/v1/options/probability",
                       json={**req, "symbol": "NOPE"}).status_code == 404


def test_forecast_matches_the_promoted_bundle(client, home):
    res = client.post("/v1/forecast", json={"symbol": "SYN000"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert [f["horizon"] for f in body["forecasts"]] == [1, 5, 10, 30]
    for f in body["forecasts"]:
        assert 0 < f["p_up"] < 1
        assert f["lower_95"] < f["lower_80"] < f["mean_log_return"] < f["upper_80"] \
            < f["upper_95"]
    registry = Registry.open(home)
    version = registry.get_version(body["model_versions"][0])
    bundle = TrainedModel.from_artifact(registry.load_artifact(version))
    registry.close()
    frames, _ = resolve_source(DATA)
    direct = bundle.forecast({"SYN000": frames["SYN000"]})["SYN000"]
    assert body["as_of"] == direct.as_of
    np.testing.assert_allclose([f["mean_log_return"] for f in body["forecasts"]], direct.mean,
                               rtol=1e-6)
    again = client.post("/v1/forecast", json={"symbol": "SYN000"}).json()
    assert again["cached"] and again["forecasts"] == body["forecasts"]


def test_forecast_from_request_bars(client):
    frames, _ = resolve_source(DATA)
    frame = frames["SYN002"].iloc[-300:]
    bars = [{"date": ts.isoformat(), **{k: float(v) for k, v in row.items()}}
            for ts, row in frame.iterrows()]
    res = client.post("/v1/forecast", json={"symbol": "SYN002", "bars": bars})
    assert res.status_code == 200, res.text
    assert res.json()["as_of"] == frame.index[-1].isoformat()
    short = client.post("/v1/forecast", json={"symbol": "SYN002", "bars": bars[-10:]})
    assert short.status_code == 422 and "bars" in short.text
    broken = [dict(b) for b in bars]
    broken[5]["high"] = broken[5]["low"] / 2
    assert client.post("/v1/forecast", json={"symbol": "SYN002",
                                             "bars": broken}).status_code == 422
    unsorted = bars[:150][::-1] + bars[150:]
    res = client.post("/v1/forecast", json={"symbol": "SYN002", "bars": unsorted})
    assert res.status_code == 422 and "not sorted" in res.text


def test_unknown_symbol_404_and_batch(client):
    assert client.post("/v1/forecast", json={"symbol": "ZZZ"}).status_code == 404
    res = client.post("/v1/forecast/batch", json={"requests": [
        {"symbol": "SYN000"}, {"symbol": "SYN001"}]})
    assert res.status_code == 200
    assert [r["symbol"] for r in res.json()["results"]] == ["SYN000", "SYN001"]
    assert client.post("/v1/forecast", json={"symbol": ""}).status_code == 422


def test_metrics_exposed(client):
    client.get("/healthz")
    text = client.get("/metrics").text
    assert "causalcast_request_seconds_bucket" in text
    assert 'causalcast_loaded_model{model="lstm-global"' in text
    assert "causalcast_forward_batch_size_count" in text
    count = float(text.split("causalcast_forward_batch_size_count ")[1].split()[0])
    assert count >= 1   # earlier forecasts in this module went through the batcher


def test_api_key_required_except_health(home):
    app = create_app(ServeConfig(home=home, api_key="s3cret", poll_seconds=0))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        for method, path, body in (("get", "/v1/models", None), ("get", "/metrics", None),
                                   ("post", "/v1/forecast", {"symbol": "SYN000"}),
                                   ("post", "/v1/options/price", {"options": [option()]}),
                                   ("post", "/v1/admin/reload", None)):
            assert c.request(method, path, json=body).status_code == 401, path
            ok = c.request(method, path, json=body, headers={"X-API-Key": "s3cret"})
            assert ok.status_code == 200, (path, ok.text)
        wrong = c.get("/v1/models", headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401


def test_options_only_without_registry(tmp_path):
    with TestClient(create_app(ServeConfig(home=tmp_path, poll_seconds=0))) as c:
        assert c.get("/readyz").status_code == 200
        assert c.post("/v1/options/price", json={"options": [option()]}).status_code == 200
        assert c.post("/v1/forecast", json={"symbol": "SYN000"}).status_code == 503


def test_fast_path_and_full_route_give_identical_answers(client):
    """The symbol-only fast path (serving/fastpath.py) must answer exactly like the route."""
    hits = client.app.state.fastpath_hits
    fast = client.post("/v1/forecast", json={"symbol": "SYN001", "model": "ridge-global"})
    # An explicit null bars field is not fast-path material: it goes through FastAPI.
    full = client.post("/v1/forecast", json={"symbol": "SYN001", "model": "ridge-global",
                                             "bars": None})
    assert fast.status_code == full.status_code == 200
    assert client.app.state.fastpath_hits == hits + 1
    a, b = fast.json(), full.json()
    a.pop("cached"), b.pop("cached")
    assert a == b
    # Unknown fields, unknown symbols and bad types fall through to the route's errors.
    assert client.post("/v1/forecast", json={"symbol": "SYN001", "x": 1}).status_code == 422
    assert client.post("/v1/forecast", json={"symbol": 5}).status_code == 422
    assert client.post("/v1/forecast", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422
    metrics = client.get("/metrics").text
    assert 'causalcast_request_seconds_count{method="POST",route="/v1/forecast"}' in metrics


def test_options_fast_path_answers_like_the_route(client):
    """POST /v1/options/price is answered by the fast path when it validates, byte for byte as
    the FastAPI route would; anything it cannot price falls through to the route's 422."""
    import asyncio

    from causalcast.serving import routes_options
    from causalcast.serving.schemas import OptionsPriceRequest

    body = {"options": [option(), option(kind="put", spot=93.0), option(style="american"),
                        option(kind="put", style="american", tau=1.5)], "greeks": True}
    hits = client.app.state.fastpath_hits
    fast = client.post("/v1/options/price", json=body)
    assert fast.status_code == 200 and client.app.state.fastpath_hits == hits + 1
    route = asyncio.run(routes_options.price(OptionsPriceRequest(**body)))
    assert fast.content == route.body
    # Outside the trained domain: not fast-path material; the route names option and field.
    bad = client.post("/v1/options/price", json={"options": [option(), option(tau=9.0)]})
    assert bad.status_code == 422 and client.app.state.fastpath_hits == hits + 1
    assert bad.json()["detail"][0]["loc"] == ["body", "options", 1, "tau"]
    metrics = client.get("/metrics").text
    assert 'causalcast_request_seconds_count{method="POST",route="/v1/options/price"}' in metrics


def test_option_columns_price_like_rows(client):
    """/v1/options/price/columns: the same prices as the row form, scalars broadcast, and
    errors that name the field (and the option's position) in the columns."""
    rows = [option(spot=90.0), option(kind="put", spot=105.0, tau=1.0),
            option(style="american", kind="put", spot=95.0)]
    by_rows = client.post("/v1/options/price", json={"options": rows}).json()["results"]
    cols = {"spot": [o["spot"] for o in rows], "strike": 100.0,
            "tau": [o["tau"] for o in rows], "sigma": 0.2, "rate": 0.03, "div": 0.01,
            "kind": [o["kind"] for o in rows], "style": ["european", "european", "american"]}
    hits = client.app.state.fastpath_hits
    res = client.post("/v1/options/price/columns", json={"columns": cols})
    assert res.status_code == 200, res.text
    assert client.app.state.fastpath_hits == hits + 1
    body = res.json()
    assert body["method"] == "pinn"
    for key in ("price", "delta", "gamma", "vega", "theta", "rho"):
        assert body["columns"][key] == [r[key] for r in by_rows], key
    # The FastAPI route (what the fast path falls back to) gives the same body.
    import asyncio

    from causalcast.serving import routes_options
    from causalcast.serving.schemas import OptionsColumnsRequest

    route = asyncio.run(routes_options.price_columnar(OptionsColumnsRequest(columns=cols)))
    assert res.content == route.body
    closed = client.post("/v1/options/price/columns", json={
        "columns": {**cols, "style": "european"}, "method": "closed", "greeks": False}).json()
    ref = [bsm_price(o["spot"], 100.0, o["tau"], 0.2, 0.03, 0.01, o["kind"]) for o in rows]
    np.testing.assert_allclose(closed["columns"]["price"], ref, rtol=1e-12)
    assert set(closed["columns"]) == {"price"}

    def error(payload):
        res = client.post("/v1/options/price/columns", json=payload)
        assert res.status_code == 422, res.text
        return res.json()["detail"][0]

    short = error({"columns": {**cols, "tau": [0.5, 1.0]}})
    assert "tau: 2 values, but other fields have 3" in short["msg"]
    nan = client.post("/v1/options/price/columns", headers={"content-type": "application/json"},
                      content=json.dumps({"columns": {**cols, "sigma": [0.2, 0.3, 0.2]}})
                      .replace("0.3", "NaN"))
    assert nan.status_code == 422
    assert any(d["loc"][:3] == ["body", "columns", "sigma"] for d in nan.json()["detail"])
    outside = error({"columns": {**cols, "tau": [0.5, 9.0, 1.0]}})
    assert outside["loc"] == ["body", "columns", "tau", 1] and "trained domain" in outside["msg"]
    american = error({"columns": cols, "method": "closed"})
    assert american["loc"] == ["body", "columns", "style", 2]
    assert "at least one field" in error({"columns": {k: (v[0] if isinstance(v, list) else v)
                                                      for k, v in cols.items()}})["msg"]
    assert "spot" in json.dumps(error({"columns": {**cols, "spot": [90.0, -1.0, 95.0]}}))


def test_micro_batcher_groups_concurrent_requests():
    """Requests that arrive while a batch runs share the next forward call."""
    import asyncio
    import threading

    from causalcast.serving.batcher import MicroBatcher

    sizes: list[int] = []
    gate = threading.Event()

    def slow_double(items):
        gate.wait(1.0)   # the first batch blocks until the others have queued
        return [2 * x for x in items]

    async def main():
        batcher = MicroBatcher(slow_double, max_batch=8, on_batch=sizes.append)
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 11)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *rest)
        batcher.close()
        return results

    assert asyncio.run(main()) == [2 * i for i in range(11)]
    assert sizes == [1, 8, 2]
