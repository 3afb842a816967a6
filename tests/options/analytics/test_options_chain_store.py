"""Chains stored beside the bars: import/list/show through the CLI, ``--chain store:...`` for
iv and surface giving the same answers as the file, as_of selection, flags recomputed on read,
bad sources and offline fetch as one line with exit 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.options.analytics.chain import read_chain, validate_chain
from causalcast.options.analytics.chain_source import load_chain, parse_chain_source
from causalcast.options.analytics.synthetic import synthetic_chain

runner = CliRunner()


def _tiny_chain(as_of: str = "2026-01-02T15:00:00Z") -> pd.DataFrame:
    frame = synthetic_chain(n_strikes=7, as_of=as_of)
    frame.loc[3, "bid"] = frame.loc[3, "ask"] + 0.5    # a crossed quote, to be flagged
    return frame


@pytest.fixture()
def stored(tmp_path):
    """A store holding two snapshots of ABC, and the first one's CSV file."""
    store = tmp_path / "store"
    first = tmp_path / "first.csv"
    _tiny_chain().to_csv(first, index=False)
    second = tmp_path / "second.parquet"
    _tiny_chain("2026-01-05T15:00:00Z").to_parquet(second)
    for path in (first, second):
        res = runner.invoke(app, ["options", "chain", "import", str(path), "--underlying", "abc",
                                  "--store", str(store), "--json"])
        assert res.exit_code == 0, res.output
    return store, first


def test_import_list_show_and_flags_recomputed_on_read(stored) -> None:
    store, first = stored
    res = runner.invoke(app, ["options", "chain", "list", "--store", str(store), "--json"])
    assert res.exit_code == 0, res.output
    snapshots = json.loads(res.stdout)["chains"]["ABC"]
    assert len(snapshots) == 2 and snapshots[0].startswith("2026-01-02")
    res = runner.invoke(app, ["options", "chain", "show", "abc", "--store", str(store),
                              "--as-of", "2026-01-03", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["as_of"].startswith("2026-01-02")
    expected = validate_chain(read_chain(first)).excluded()
    assert out["excluded"] == expected and any("crossed" in e["reason"] for e in expected)
    # the stored quotes are the imported ones, to the last bit
    back = load_chain(f"store:{store}?underlying=ABC&as_of=2026-01-02T15:00:00Z")
    pd.testing.assert_frame_equal(back, read_chain(first))
    # a second import of the same snapshot is refused and changes nothing
    res = runner.invoke(app, ["options", "chain", "import", str(first), "--underlying", "ABC",
                              "--store", str(store)])
    assert res.exit_code == 2 and "already stored" in res.output
    res = runner.invoke(app, ["options", "chain", "list", "--store", str(store), "--json"])
    assert json.loads(res.stdout)["chains"]["ABC"] == snapshots


def test_analytics_read_the_store_like_the_file(stored) -> None:
    store, first = stored
    source = f"store:{store}?underlying=ABC&as_of=2026-01-03"
    outs = []
    for chain in (str(first), source):
        res = runner.invoke(app, ["options", "iv", "--chain", chain, "--json"])
        assert res.exit_code == 0, res.output
        outs.append(json.loads(res.stdout))
    assert outs[0] == outs[1] and len(outs[0]["quotes"]) > 0
    res = runner.invoke(app, ["options", "surface", "--chain", source, "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["excluded"]) >= 1


@pytest.mark.parametrize("source, words", [
    ("store:{store}?underlying=XYZ", "not in store"),
    ("store:{store}", "underlying"),
    ("store:{store}?underlying=ABC&as_of=1999-01-01", "no snapshot"),
    ("store:{store}?underlying=ABC&colour=red", "unknown option"),
    ("store:{store}?underlying=ABC&version=x", "version"),
])
def test_bad_store_sources_fail_in_one_line(stored, source, words) -> None:
    store, _ = stored
    res = runner.invoke(app, ["options", "surface", "--chain", source.format(store=store)])
    assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output


def test_parse_chain_source() -> None:
    spec = parse_chain_source("store:?underlying=spy&as_of=2026-01-02&version=3")
    assert spec == {"path": None, "underlying": "spy", "as_of": pd.Timestamp("2026-01-02"),
                    "version": 3}


def test_fetch_offline_is_one_line_and_stores_nothing(tmp_path, monkeypatch) -> None:
    """The network is unreachable here; the yfinance ticker is replaced by one that fails the
    way an offline yfinance does, so the test does not depend on the sandbox."""
    import yfinance

    class Offline:
        def __init__(self, symbol: str) -> None:
            pass

        @property
        def options(self) -> tuple:
            raise ConnectionError("no network")

    monkeypatch.setattr(yfinance, "Ticker", Offline)
    store = tmp_path / "store"
    res = runner.invoke(app, ["options", "chain", "fetch", "ABC", "--source", "yahoo",
                              "--store", str(store)])
    assert res.exit_code == 2 and "offline" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["options", "chain", "list", "--store", str(store), "--json"])
    assert json.loads(res.stdout)["chains"] == {}
    res = runner.invoke(app, ["options", "chain", "fetch", "ABC", "--source", "bloomberg"])
    assert res.exit_code == 2 and "--source" in res.output
