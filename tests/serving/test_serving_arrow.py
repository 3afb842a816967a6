"""Option pricing in Apache Arrow IPC (issue 18, item 1): the same prices as JSON, the same
validation and the same errors, selected by Content-Type and Accept."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.options.black_scholes import bsm_price
from causalcast.serving.app import create_app
from causalcast.serving.arrow_codec import ARROW_STREAM, accepts_arrow, is_arrow
from causalcast.serving.client import (
    ServiceError,
    decode_result,
    encode_options,
    price_options_arrow,
)
from causalcast.serving.config import ServeConfig
from tests.support.serving import Server

ARROW_HEADERS = {"content-type": ARROW_STREAM, "accept": ARROW_STREAM}
GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("arrow")   # no registry: options only
    with TestClient(create_app(ServeConfig(home=home, api_key="k", poll_seconds=0)),
                    headers={"X-API-Key": "k"}) as c:
        yield c


def columns(n: int = 7, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"spot": rng.uniform(70, 150, n).tolist(), "strike": 100.0,
            "tau": rng.uniform(0.05, 1.5, n).tolist(), "sigma": rng.uniform(0.1, 0.6, n).tolist(),
            "rate": 0.03, "div": 0.01, "kind": ["call", "put"] * (n // 2) + ["call"] * (n % 2),
            "style": ["european"] * (n - 2) + ["american"] * 2}


def table_bytes(cols: dict[str, pa.Array | list], metadata: dict | None = None) -> bytes:
    table = pa.table(cols, metadata=metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def full(cols: dict) -> dict:
    """Scalars spread to every option (an Arrow table has only columns)."""
    n = max(len(v) for v in cols.values() if isinstance(v, list))
    return {k: v if isinstance(v, list) else [v] * n for k, v in cols.items()}


@pytest.mark.parametrize("greeks", [True, False])
@pytest.mark.parametrize("route", ["/v1/options/price/columns", "/v1/options/price"])
def test_arrow_prices_equal_json(client, route, greeks):
    cols = columns()
    by_json = client.post("/v1/options/price/columns",
                          json={"columns": cols, "greeks": greeks}).json()["columns"]
    res = client.post(route, content=encode_options(cols, greeks=greeks), headers=ARROW_HEADERS)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == ARROW_STREAM
    got = decode_result(res.content)
    assert list(got) == list(GREEKS if greeks else ("price",))
    for key, values in got.items():
        assert values.dtype == np.float64
        assert values.tolist() == by_json[key], key   # bit for bit
    # Arrow in, JSON out (no Accept): the JSON route's body, byte for byte.
    as_json = client.post("/v1/options/price/columns", content=encode_options(cols, greeks=greeks),
                          headers={"content-type": ARROW_STREAM})
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json()["columns"] == by_json


def test_json_in_arrow_out(client):
    """A JSON body with Accept: Arrow gets Arrow, from either route, with the method used in
    the table's metadata; closed-form prices equal Black-Scholes."""
    cols = {**columns(), "style": "european"}
    res = client.post("/v1/options/price/columns", json={"columns": cols, "method": "closed",
                                                         "greeks": False},
                      headers={"accept": ARROW_STREAM})
    assert res.status_code == 200 and res.headers["content-type"] == ARROW_STREAM
    with pa.ipc.open_stream(res.content) as reader:
        table = reader.read_all()
    assert table.schema.metadata == {b"method": b"closed"}
    ref = bsm_price(np.array(cols["spot"]), 100.0, np.array(cols["tau"]),
                    np.array(cols["sigma"]), 0.03, 0.01, np.array(cols["kind"]))
    np.testing.assert_allclose(decode_result(res.content)["price"], ref, rtol=1e-12)
    rows = full(cols)
    options = [dict(zip(rows, values, strict=True)) for values in zip(*rows.values(),
                                                                       strict=True)]
    by_rows = client.post("/v1/options/price", json={"options": options},
                          headers={"accept": ARROW_STREAM})
    assert by_rows.headers["content-type"] == ARROW_STREAM
    by_json = client.post("/v1/options/price", json={"options": options}).json()["results"]
    assert decode_result(by_rows.content)["delta"].tolist() == [r["delta"] for r in by_json]


def errors(res) -> list[tuple]:
    assert res.status_code == 422, res.text
    assert res.headers["content-type"] == "application/json"
    return [(tuple(d["loc"]), d["msg"]) for d in res.json()["detail"]]


@pytest.mark.parametrize(("change", "arrow_column"), [
    ({"spot": [90.0, -1.0, 95.0]}, None),
    ({"tau": [0.5, 9.0, 1.0]}, None),                         # outside the trained domain
    ({"sigma": [0.2, 1e308, 0.3]}, None),
    ({"div": [False, False, True]}, pa.array([False, False, True])),
    ({"spot": ["100", "90", "80"]}, pa.array(["100", "90", "80"])),
    ({"spot": [100.0, None, 80.0]}, pa.array([100.0, None, 80.0])),
    ({"kind": ["call", "straddle", "put"]}, None),
    ({"tau": [0.5, 1.0]}, None),                              # lengths differ
])
def test_arrow_errors_are_the_json_errors(client, change, arrow_column):
    cols = {"spot": [90.0, 100.0, 110.0], "strike": [100.0] * 3, "tau": [0.5, 1.0, 1.5],
            "sigma": [0.2] * 3, "rate": [0.03] * 3, "div": [0.01] * 3,
            "kind": ["call", "put", "call"], "style": ["european"] * 3}
    cols.update(change)
    by_json = errors(client.post("/v1/options/price/columns", json={"columns": cols}))
    arrow_cols = dict(cols)
    if arrow_column is not None:
        arrow_cols[next(iter(change))] = arrow_column
    body = table_bytes(arrow_cols) if len({len(v) for v in cols.values()}) == 1 else None
    if body is None:   # an Arrow table cannot hold columns of different lengths
        return
    assert errors(client.post("/v1/options/price/columns", content=body,
                              headers=ARROW_HEADERS)) == by_json


def test_arrow_parameters_and_bodies(client):
    cols = full(columns(3))
    bad_greeks = errors(client.post("/v1/options/price/columns", headers=ARROW_HEADERS,
                                    content=table_bytes(cols, {"greeks": "maybe"})))
    assert bad_greeks[0][0] == ("body", "greeks")
    closed_american = errors(client.post("/v1/options/price/columns", headers=ARROW_HEADERS,
                                         content=table_bytes(cols, {"method": "closed"})))
    assert closed_american[0][0] == ("body", "columns", "style", 1)
    for junk in (b"", b"not arrow", b"{}", table_bytes(cols)[:40]):
        (loc, msg), = errors(client.post("/v1/options/price", content=junk,
                                         headers=ARROW_HEADERS))
        assert loc == ("body",) and "Arrow" in msg
    empty = errors(client.post("/v1/options/price/columns", headers=ARROW_HEADERS,
                               content=table_bytes({"spot": pa.array([], pa.float64())})))
    assert empty
    # pandas' own schema metadata is ignored.
    pandas_meta = table_bytes(cols, {"pandas": "{}", "greeks": "false"})
    res = client.post("/v1/options/price/columns", content=pandas_meta, headers=ARROW_HEADERS)
    assert res.status_code == 200 and list(decode_result(res.content)) == ["price"]


def test_arrow_needs_the_key(client):
    body = encode_options(columns(3))
    res = client.post("/v1/options/price/columns", content=body,
                      headers={**ARROW_HEADERS, "X-API-Key": "wrong"})
    assert res.status_code == 401


def test_media_type_matching():
    assert is_arrow(b"application/vnd.apache.arrow.stream")
    assert is_arrow("Application/Vnd.Apache.Arrow.Stream; charset=binary")
    assert not is_arrow(b"application/json")
    assert accepts_arrow(b"application/json, application/vnd.apache.arrow.stream;q=0.9")
    assert not accepts_arrow(b"*/*") and not accepts_arrow(None)


@pytest.mark.slow
def test_python_client_against_the_server(tmp_path):
    server = Server(tmp_path, "--poll", "0").wait_ready()
    try:
        cols = columns(50, seed=3)
        got = price_options_arrow(server.url, {**cols, "style": "european"}, method="closed")
        ref = bsm_price(np.array(cols["spot"]), 100.0, np.array(cols["tau"]),
                        np.array(cols["sigma"]), 0.03, 0.01, np.array(cols["kind"]))
        np.testing.assert_allclose(got["price"], ref, rtol=1e-12)
        assert set(got) == set(GREEKS)
        with pytest.raises(ServiceError) as refused:
            price_options_arrow(server.url, {**cols, "tau": 9.0})
        assert refused.value.status == 422
        assert refused.value.detail[0]["loc"] == ["body", "columns", "tau", 0]
    finally:
        server.stop()


def test_well_typed_tables_skip_per_value_objects():
    """The client's tables take the direct numpy way (no Python object per value); a table
    the direct way is unsure of (int32 spot, large strings) is decided by the request model,
    and both give the same prices."""
    from causalcast.serving import arrow_codec
    from causalcast.serving.options_arrow import _direct, price_arrow

    cols = columns(5)
    table = arrow_codec.read_table(encode_options(cols))
    assert _direct(table, {}) is not None
    odd = table.set_column(table.column_names.index("kind"), "kind",
                           table.column("kind").cast(pa.large_string()))
    assert _direct(odd, {}) is None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, odd.schema) as writer:
        writer.write_table(odd)
    direct = price_arrow(encode_options(cols), True)
    by_model = price_arrow(sink.getvalue().to_pybytes(), True)
    assert direct[0] == by_model[0] == 200
    for key, values in decode_result(direct[2]).items():
        assert values.tolist() == decode_result(by_model[2])[key].tolist()


_EDGE = st.sampled_from([0.0, -0.0, -1.0, 1e-300, 5.0, 6.0, 1e308, float("inf"),
                         float("-inf"), float("nan")])
_NUMBERS = ("spot", "strike", "tau", "sigma", "rate", "div")


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({name: st.lists(st.floats(0.05, 1.5), min_size=3, max_size=3)
                              for name in _NUMBERS}),
       st.lists(st.sampled_from(["call", "put"]), min_size=3, max_size=3),
       st.lists(st.sampled_from(["european", "american"]), min_size=3, max_size=3),
       st.one_of(st.none(), st.tuples(st.sampled_from(_NUMBERS), st.integers(0, 2), _EDGE),
                 st.tuples(st.sampled_from(["kind", "style"]), st.integers(0, 2),
                           st.sampled_from(["Call", "", "bermudan", "call ", "european"]))))
def test_the_direct_way_accepts_only_what_the_request_model_accepts(numbers, kinds, styles,
                                                                    change):
    """Valid tables with at most one changed cell (an edge number or an odd word): whatever the
    direct numpy way takes, the request model takes too, with the same values and labels,
    and a valid table always takes the direct way (the model words every error)."""
    from pydantic import ValidationError

    from causalcast.serving import arrow_codec
    from causalcast.serving.options_arrow import _direct
    from causalcast.serving.schemas import OptionsColumnsRequest

    cols = {**numbers, "kind": kinds, "style": styles}
    if change is not None:
        name, i, value = change
        cols[name] = [value if j == i else v for j, v in enumerate(cols[name])]
    table = arrow_codec.read_table(table_bytes(cols))
    direct = _direct(table, {})
    try:
        request = OptionsColumnsRequest.model_validate({"columns": cols})
    except ValidationError:
        assert direct is None, f"the direct way accepted what the model refuses: {change}"
        return
    assert direct is not None, f"a table the model accepts left the direct way: {change}"
    arrays, is_call, american, _, _ = direct
    for name in _NUMBERS:
        np.testing.assert_array_equal(arrays[name], getattr(request.columns, name))
    assert is_call.tolist() == [k == "call" for k in cols["kind"]]
    assert american.tolist() == [s == "american" for s in cols["style"]]
