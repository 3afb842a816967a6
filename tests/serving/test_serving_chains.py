"""GET /v1/options/chains and /v1/options/chains/{underlying}: what the service's market data
store holds, read through ChainStore with flags recomputed by validate_chain; rows that post
back to the analytics routes unchanged; bad input is a 422 naming the field, an unknown chain
a 404, and the key is required like on every read route."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from causalcast.options.analytics.chain import validate_chain
from causalcast.options.analytics.chain_source import store_chain
from causalcast.options.analytics.surface import fit_surface
from causalcast.options.analytics.synthetic import synthetic_chain
from causalcast.serving.app import create_app
from causalcast.serving.config import ServeConfig

KEY = "chain-k3y"
HEADERS = {"X-API-Key": KEY}
FIRST, SECOND = "2026-01-02T15:00:00Z", "2026-01-05T15:00:00Z"


def _chain(as_of: str, n_strikes: int = 11) -> pd.DataFrame:
    frame = synthetic_chain(n_strikes=n_strikes, as_of=as_of)
    frame.loc[3, "bid"] = frame.loc[3, "ask"] + 0.5      # crossed: flagged, kept as a row
    return frame


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A home whose default store (home/data) holds two ABC snapshots and one of XYZ."""
    home = tmp_path_factory.mktemp("home")
    frames = {("ABC", FIRST): _chain(FIRST), ("ABC", SECOND): _chain(SECOND, 9),
              ("XYZ", FIRST): synthetic_chain(n_strikes=7, spot=50.0, as_of=FIRST)}
    for (underlying, _), frame in frames.items():
        store_chain(frame, underlying.lower(), home / "data")
    # no `with`: the lifespan (option networks, models) is not needed by these routes
    client = TestClient(create_app(ServeConfig(home=home, api_key=KEY, poll_seconds=0,
                                               monitor_seconds=0)))
    return client, frames


def test_listing_names_each_underlying_with_its_snapshots_and_quote_counts(stored) -> None:
    client, frames = stored
    r = client.get("/v1/options/chains", headers=HEADERS)
    assert r.status_code == 200, r.text
    chains = {c["underlying"]: c for c in r.json()["chains"]}
    assert list(chains) == ["ABC", "XYZ"]
    for underlying, chain in chains.items():
        stored_here = {pd.Timestamp(t): len(f) for (u, t), f in frames.items() if u == underlying}
        shown = {pd.Timestamp(s["as_of"]): s["quotes"] for s in chain["snapshots"]}
        assert shown == stored_here
        assert pd.Timestamp(chain["latest_as_of"]) == max(stored_here)
        assert chain["quotes"] == stored_here[max(stored_here)]


def test_empty_or_missing_store_lists_nothing(tmp_path) -> None:
    client = TestClient(create_app(ServeConfig(home=tmp_path, api_key=None, poll_seconds=0)))
    r = client.get("/v1/options/chains")
    assert r.status_code == 200 and r.json()["chains"] == []
    r = client.get("/v1/options/chains/ABC")
    assert r.status_code == 404 and "ABC" in r.json()["detail"]


def test_a_configured_store_is_the_one_read(tmp_path) -> None:
    store = tmp_path / "elsewhere"
    store_chain(synthetic_chain(n_strikes=5), "QQQ", store)
    client = TestClient(create_app(ServeConfig(home=tmp_path / "home", api_key=None,
                                               poll_seconds=0, store=str(store))))
    assert [c["underlying"] for c in client.get("/v1/options/chains").json()["chains"]] == ["QQQ"]
    assert client.get("/v1/options/chains/qqq").json()["quotes"] == 5 * 2 * 4


def test_the_latest_snapshot_with_flags_recomputed_and_as_of_picks_an_older_one(stored) -> None:
    client, frames = stored
    r = client.get("/v1/options/chains/abc", headers=HEADERS)
    assert r.status_code == 200, r.text
    body = r.json()
    latest = frames[("ABC", SECOND)]
    assert body["underlying"] == "ABC" and pd.Timestamp(body["as_of"]) == pd.Timestamp(SECOND)
    assert [pd.Timestamp(t) for t in body["snapshots"]] == [pd.Timestamp(FIRST),
                                                            pd.Timestamp(SECOND)]
    assert body["quotes"] == len(body["chain"]) == len(body["flags"]) == len(latest)
    assert body["spot"] == 100.0
    # the rows in the store's order, each with its own flag: compare quote by quote
    key = ["expiry", "type", "strike"]
    rows = pd.DataFrame(body["chain"]).assign(flag=body["flags"])
    rows["expiry"] = pd.to_datetime(rows["expiry"])
    want = validate_chain(latest).frame
    want["flag"] = want["flag"].replace("", None)
    rows, want = (f.sort_values(key).reset_index(drop=True) for f in (rows, want))
    for col in ("strike", "bid", "ask", "last", "volume", "open_interest", "spot"):
        np.testing.assert_array_equal(rows[col].to_numpy(float), want[col].to_numpy(float))
    assert list(rows["type"]) == list(want["type"]) and list(rows["flag"]) == list(want["flag"])
    assert (rows["expiry"] == want["expiry"]).all()
    crossed = [f for f in body["flags"] if f and "crossed" in f]
    assert len(crossed) == 1 and body["flagged"] == want["flag"].notna().sum() >= 1
    assert [e["quotes"] for e in body["expiries"]] == [9 * 2] * 4
    assert [round(e["days"]) for e in body["expiries"]] == [30, 91, 182, 365]

    for as_of in ("2026-01-04", "2026-01-02T15:00:00+00:00"):
        older = client.get("/v1/options/chains/ABC", params={"as_of": as_of}, headers=HEADERS)
        assert older.status_code == 200, older.text
        assert pd.Timestamp(older.json()["as_of"]) == pd.Timestamp(FIRST)
        assert older.json()["quotes"] == len(frames[("ABC", FIRST)])


def test_usable_rows_post_back_to_the_analytics_unchanged(stored) -> None:
    """The shown rows are the analytics' input: their usable quotes give the surface fitted to
    the stored chain itself, and the smile block is that fit's SVI at the strikes."""
    client, frames = stored
    body = client.get("/v1/options/chains/ABC", params={"as_of": FIRST}, headers=HEADERS).json()
    usable = [row for row, flag in zip(body["chain"], body["flags"], strict=True) if not flag]
    r = client.post("/v1/options/surface", json={"chain": usable, "smile_points": 21},
                    headers=HEADERS)
    assert r.status_code == 200, r.text
    report = r.json()
    # the store keeps its own row order, and the SVI optimiser's answer depends on the order
    # at its tolerance: same quotes, same market vols, fits equal to ~1e-7
    direct = fit_surface(validate_chain(frames[("ABC", FIRST)]), 0.04)
    assert len(report["expiries"]) == len(direct.slices) == 4
    for got, want in zip(report["expiries"], direct.slices, strict=True):
        smile, truth = got["smile"], want.smile(21)
        assert got["quotes_used"] == want.used
        assert got["rmse_vol_points"] == pytest.approx(want.rmse_vol_points, rel=1e-5)
        np.testing.assert_allclose(
            np.sort(np.array([smile["strike"], smile["implied_volatility"]]), axis=1),
            np.sort(np.array([truth["strike"], truth["implied_volatility"]]), axis=1),
            rtol=1e-12)
        np.testing.assert_allclose(smile["fit_implied_volatility"],
                                   truth["fit_implied_volatility"], atol=1e-6)
        assert len(smile["fit_strike"]) == len(smile["fit_implied_volatility"]) == 21
        assert len(smile["strike"]) == len(smile["implied_volatility"]) == got["quotes_used"]
        svi = got["svi"]

        def vol(strikes, fwd=got["forward"], tau=got["tau"], p=svi):
            d = np.log(np.asarray(strikes) / fwd) - p["m"]
            w = p["a"] + p["b"] * (p["rho"] * d + np.sqrt(d * d + p["sigma"] ** 2))
            return np.sqrt(w / tau)
        np.testing.assert_allclose(smile["fit_implied_volatility"], vol(smile["fit_strike"]),
                                   rtol=1e-12)
        assert smile["fit_strike"][0] == pytest.approx(min(smile["strike"]), rel=1e-12)
        assert smile["fit_strike"][-1] == pytest.approx(max(smile["strike"]), rel=1e-12)
        rmse = 100 * np.sqrt(np.mean((vol(smile["strike"]) - smile["implied_volatility"]) ** 2))
        assert rmse == pytest.approx(got["rmse_vol_points"], rel=1e-9)
    iv = client.post("/v1/options/implied-vol", json={"chain": usable}, headers=HEADERS)
    assert iv.status_code == 200 and len(iv.json()["implied_volatility"]) == len(usable)
    assert "smile" not in client.post("/v1/options/surface", json={"chain": usable},
                                      headers=HEADERS).json()["expiries"][0]


@pytest.mark.parametrize("path, params, status, loc, words", [
    ("/v1/options/chains/A%20B", {}, 422, ["path", "underlying"], "space"),
    ("/v1/options/chains/" + "X" * 33, {}, 422, ["path", "underlying"], "at most 32"),
    ("/v1/options/chains/ABC", {"as_of": "yesterday-ish"}, 422, ["query", "as_of"],
     "not a date"),
    ("/v1/options/chains/ABC", {"as_of": "NaT"}, 422, ["query", "as_of"], "not a date"),
    ("/v1/options/chains/ABC", {"as_of": ""}, 422, ["query", "as_of"], "at least 1"),
    ("/v1/options/chains/NOPE", {}, 404, None, "NOPE"),
    ("/v1/options/chains/ABC", {"as_of": "1999-01-01"}, 404, None, "no snapshot"),
])
def test_bad_input_is_refused_naming_the_field(stored, path, params, status, loc, words) -> None:
    client, _ = stored
    r = client.get(path, params=params, headers=HEADERS)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    if loc is None:
        assert words in detail, detail
    else:
        assert detail[0]["loc"] == loc and words in str(detail[0]), detail


@pytest.mark.parametrize("value", [-1, 402, "5", True, 2.5])
def test_smile_points_is_a_strict_bounded_integer(stored, value) -> None:
    client, _ = stored
    body = client.get("/v1/options/chains/XYZ", headers=HEADERS).json()
    r = client.post("/v1/options/surface", headers=HEADERS,
                    json={"chain": body["chain"][:4], "smile_points": value})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "smile_points"]


def test_the_key_is_required(stored) -> None:
    client, _ = stored
    for path in ("/v1/options/chains", "/v1/options/chains/ABC"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
