"""Every request is a 2xx or a 4xx (issue 12, item 3): strict numbers, bar dates parsed in
validation, pricing that refuses what it cannot answer, names that can never act as paths,
and large batches that leave the event loop free."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from causalcast.data.resolve import resolve_source
from causalcast.models.forecast import price_median_and_mean
from causalcast.options.black_scholes import arbitrage_bounds
from causalcast.options.inputs import OptionInputError, as_inputs
from causalcast.options.pricer import price_options
from causalcast.serving.app import create_app
from causalcast.serving.config import ServeConfig
from tests.support.serving import DATA, train_and_register


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("inputs")
    train_and_register(home, models=("ridge",))
    return home


@pytest.fixture(scope="module")
def client(home):
    with TestClient(create_app(ServeConfig(home=home, api_key=None, poll_seconds=0))) as c:
        yield c


def option(**kw):
    return {"spot": 100.0, "strike": 100.0, "tau": 0.5, "sigma": 0.2, "rate": 0.03,
            "div": 0.01, "kind": "call", **kw}


def locs(res) -> list[list]:
    assert res.status_code == 422, res.text
    return [d["loc"] for d in res.json()["detail"]]


def bars_of(symbol: str, n: int = 300) -> list[dict]:
    frames, _ = resolve_source(DATA)
    frame = frames[symbol].iloc[-n:]
    return [{"date": ts.isoformat(), **{k: float(v) for k, v in row.items()}}
            for ts, row in frame.iterrows()]


@pytest.mark.parametrize(("field", "value"), [
    ("spot", "100"), ("div", False), ("strike", True), ("tau", "0.5"), ("rate", None)])
def test_numbers_are_strict(client, field, value):
    res = client.post("/v1/options/price", json={"options": [option(**{field: value})]})
    assert ["body", "options", 0, field] in locs(res)
    cols = {"spot": [100.0], "strike": 100.0, "tau": 0.5, "sigma": 0.2, field: value}
    res = client.post("/v1/options/price/columns", json={"columns": cols})
    assert res.status_code == 422
    assert any(loc[:3] == ["body", "columns", field] for loc in locs(res))


def test_booleans_and_integers_are_strict(client):
    assert ["body", "greeks"] in locs(client.post("/v1/options/price", json={
        "options": [option()], "greeks": "true"}))
    req = {"spot": 100.0, "strike": 105.0, "tau": 0.25, "sigma": 0.3, "symbol": "SYN000"}
    assert ["body", "horizon"] in locs(client.post("/v1/options/probability",
                                                   json={**req, "horizon": "5"}))
    assert ["body", "horizon"] in locs(client.post("/v1/options/probability",
                                                   json={**req, "horizon": True}))
    ok = client.post("/v1/options/price", json={"options": [option(spot=100)]})
    assert ok.status_code == 200   # an integer is a number


@pytest.mark.parametrize("extreme", [
    {"sigma": 1e308}, {"tau": 1e308}, {"sigma": 100.01}, {"rate": -1e308}, {"rate": -1e5},
    {"div": 1e308, "rate": -1e308}])
@pytest.mark.parametrize("kind", ["call", "put"])
def test_closed_form_refuses_what_it_cannot_price(client, extreme, kind):
    """The closed form gave -3.44 at sigma = 1e308 and null at extreme rates: now a 422, or a
    finite price inside the no-arbitrage bounds."""
    opt = option(kind=kind, **extreme)
    res = client.post("/v1/options/price", json={"options": [opt], "method": "closed"})
    if res.status_code == 200:
        result = res.json()["results"][0]
        assert all(isinstance(v, float) and math.isfinite(v) for v in result.values()), result
        x = as_inputs(*(opt[f] for f in ("spot", "strike", "tau", "sigma", "rate", "div")))
        lower, upper = arbitrage_bounds(x, np.array(kind == "call"))
        assert lower <= result["price"] <= upper
    else:
        detail = res.json()["detail"]
        assert res.status_code == 422 and detail[0]["loc"][:3] == ["body", "options", 0]
    prob = client.post("/v1/options/probability", json={
        k: v for k, v in opt.items() if k != "kind"})
    if prob.status_code == 200:
        assert 0.0 <= prob.json()["risk_neutral"] <= 1.0
    else:
        assert prob.status_code == 422


@pytest.mark.parametrize("extreme", [{"rate": -1e308}, {"sigma": 1e308}, {"tau": 101.0}])
def test_python_pricer_refuses_too(extreme):
    with pytest.raises(OptionInputError):
        price_options(**option(**extreme), method="closed")


def test_extreme_but_priceable_inputs_stay_within_bounds(client):
    """At the accepted limits the closed form still answers inside the bounds: a call at
    sigma = 100 is worth (almost) the discounted spot."""
    opts = [option(sigma=100.0, tau=100.0), option(sigma=100.0, kind="put"),
            option(rate=800.0, kind="put"), option(spot=1e300, strike=1e-300)]
    res = client.post("/v1/options/price", json={"options": opts, "method": "closed"})
    assert res.status_code == 200, res.text
    first = res.json()["results"][0]
    assert first["price"] == pytest.approx(100.0 * math.exp(-0.01 * 100.0), rel=1e-6)
    for result in res.json()["results"]:
        assert result["price"] >= 0.0


def test_bar_dates_any_offset_one_convention(client):
    """Aware (Z, +hh:mm, mixed offsets) and naive dates are all accepted and put on one
    calendar (UTC); the same instants give the same forecast."""
    bars = bars_of("SYN002")
    naive = client.post("/v1/forecast", json={"symbol": "SYN002", "bars": bars})
    assert naive.status_code == 200, naive.text
    zulu = [{**b, "date": b["date"] + "Z"} for b in bars]
    res = client.post("/v1/forecast", json={"symbol": "SYN002", "bars": zulu})
    assert res.status_code == 200, res.text
    assert res.json()["forecasts"] == naive.json()["forecasts"]
    assert res.json()["as_of"] == naive.json()["as_of"]
    # Mixed offsets: every other bar written as the same instant in New York winter time.
    mixed = [dict(b) for b in bars]
    for b in mixed[::2]:
        ts = np.datetime64(b["date"]) - np.timedelta64(5, "h")
        b["date"] = str(ts) + "-05:00"
    res = client.post("/v1/forecast", json={"symbol": "SYN002", "bars": mixed})
    assert res.status_code == 200, res.text
    assert res.json()["forecasts"] == naive.json()["forecasts"]


@pytest.mark.parametrize("date", ["0001-01-01", "9999-12-31T23:59:59Z",
                                  "0001-01-01T00:00:00+01:00", "1600-01-01", "2262-05-01"])
def test_out_of_range_dates_are_422_naming_the_row(client, date):
    bars = bars_of("SYN002")
    bars[7] = {**bars[7], "date": date}
    res = client.post("/v1/forecast", json={"symbol": "SYN002", "bars": bars})
    assert ["body", "bars", 7, "date"] in locs(res)
    assert "range" in res.text
    batch = client.post("/v1/forecast/batch", json={"requests": [
        {"symbol": "SYN000"}, {"symbol": "SYN002", "bars": bars}]})
    assert ["body", "requests", 1, "bars", 7, "date"] in locs(batch)


@pytest.mark.parametrize("symbol", ["..", ".", "../SYN000", "SYN000/../x", "a\\b", "A..B",
                                    "SYN 000", "x" * 33])
def test_symbols_can_never_be_paths(client, symbol):
    res = client.post("/v1/forecast", json={"symbol": symbol})
    assert ["body", "symbol"] in locs(res)
    res = client.post("/v1/options/probability", json={
        "spot": 100.0, "strike": 100.0, "tau": 0.5, "sigma": 0.2, "symbol": symbol})
    assert ["body", "symbol"] in locs(res)
    res = client.post("/v1/forecast", json={"symbol": "SYN000", "model": "../" + symbol})
    assert ["body", "model"] in locs(res)


def test_forecast_reports_median_and_mean_price(client):
    body = client.post("/v1/forecast", json={"symbol": "SYN001"}).json()
    for f in body["forecasts"]:
        assert "expected_price" not in f
        assert f["median_price"] == pytest.approx(body["last_close"]
                                                  * math.exp(f["mean_log_return"]), rel=1e-12)
        assert f["mean_price"] is None   # Student-t log returns: the price has no mean


def test_price_mean_for_gaussian_against_scipy_lognormal():
    loc, scale = np.array([0.01, -0.03]), np.array([0.02, 0.3])
    median, mean = price_median_and_mean(50.0, loc, scale, "gaussian")
    ref = [stats.lognorm(s=s, scale=50.0 * math.exp(m)) for m, s in zip(loc, scale, strict=True)]
    np.testing.assert_allclose(mean, [d.mean() for d in ref], rtol=1e-12)
    np.testing.assert_allclose(median, [d.median() for d in ref], rtol=1e-12)
    assert price_median_and_mean(50.0, loc, scale, "student_t")[1] is None


@pytest.mark.slow
def test_large_forecast_batch_does_not_block_the_event_loop(home):
    """A 160-request batch with bars (1.7 MB) is parsed, validated and featurised in a
    worker thread: while it runs, the event loop keeps answering, and the longest stall a
    ticking coroutine sees is a small fraction of the batch's time. Where the work ran is
    also checked directly: validation and features never on the event loop's thread."""
    from causalcast.models.bundle import TrainedModel

    bars = bars_of("SYN002", 100)
    body = json.dumps({"requests": [{"symbol": "SYN002", "bars": bars}] * 160},
                      separators=(",", ":")).encode()
    assert len(body) > 1_500_000, len(body)
    app = create_app(ServeConfig(home=home, api_key=None, poll_seconds=0,
                                 max_body_bytes=4 * 1024 * 1024, cache_items=0))
    feature_threads: set[int] = set()
    original = TrainedModel.latest_window

    def spy(self, *args, **kwargs):
        feature_threads.add(threading.get_ident())
        return original(self, *args, **kwargs)

    async def scenario() -> tuple[float, float, int, int]:
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=transport, base_url="http://test", timeout=120) as http:
            loop_thread = threading.get_ident()
            stalls = [0.0]
            done = asyncio.Event()

            async def ticker() -> None:
                last = time.perf_counter()
                while not done.is_set():
                    await asyncio.sleep(0.002)
                    now = time.perf_counter()
                    stalls.append(now - last)
                    last = now

            async def big() -> float:
                start = time.perf_counter()
                res = await http.post("/v1/forecast/batch", content=body,
                                      headers={"content-type": "application/json"})
                assert res.status_code == 200, res.text[:300]
                assert len(res.json()["results"]) == 160
                return time.perf_counter() - start

            feature_threads.clear()   # start-up computed windows on the loop, before serving
            tick = asyncio.create_task(ticker())
            big_task = asyncio.create_task(big())
            await asyncio.sleep(0.05)
            small = await http.get("/healthz")
            answered_while_big_ran = not big_task.done()
            elapsed = await big_task
            done.set()
            await tick
            return elapsed, max(stalls), loop_thread, int(answered_while_big_ran and
                                                          small.status_code == 200)

    TrainedModel.latest_window = spy
    try:
        elapsed, worst_stall, loop_thread, small_ok = asyncio.run(scenario())
    finally:
        TrainedModel.latest_window = original
    assert small_ok, "the small request waited for the whole batch"
    assert feature_threads and loop_thread not in feature_threads
    assert worst_stall < 0.25 * elapsed, (worst_stall, elapsed)
