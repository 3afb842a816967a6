"""Chains: schema, validation naming row and field, the yfinance adapter on frames shaped as
yfinance returns them, offline fetch, and parity forwards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalcast.options.analytics.chain import (
    CHAIN_COLUMNS,
    YFINANCE_COLUMNS,
    ChainError,
    fetch_yfinance,
    from_yfinance,
    normalise_chain,
    read_chain,
    validate_chain,
)
from causalcast.options.analytics.parity import implied_forwards
from causalcast.options.analytics.synthetic import synthetic_chain


def _yf_frame(kind: str, strikes: list[float]) -> pd.DataFrame:
    n = len(strikes)
    return pd.DataFrame({
        "contractSymbol": [f"ABC260220{kind[0].upper()}{int(k * 1000):08d}" for k in strikes],
        "lastTradeDate": pd.to_datetime(["2026-01-02 15:59:00+00:00"] * n),
        "strike": strikes, "lastPrice": np.linspace(5, 1, n), "bid": np.linspace(4.9, 0.9, n),
        "ask": np.linspace(5.1, 1.1, n), "change": 0.0, "percentChange": 0.0,
        "volume": np.arange(n, dtype=float), "openInterest": np.arange(n) * 10,
        "impliedVolatility": 0.2, "inTheMoney": [k < 100 for k in strikes],
        "contractSize": "REGULAR", "currency": "USD"})[list(YFINANCE_COLUMNS)]


def test_yfinance_adapter_maps_every_field_to_the_schema() -> None:
    calls, puts = _yf_frame("call", [95.0, 100.0, 105.0]), _yf_frame("put", [95.0, 100.0])
    out = from_yfinance(calls, puts, "2026-02-20", 101.5, "2026-01-02T16:00:00Z")
    assert tuple(out.columns) == CHAIN_COLUMNS
    assert list(out["type"]) == ["call"] * 3 + ["put"] * 2
    assert out["expiry"].dtype == "datetime64[ns, UTC]" and out["as_of"].dtype == out[
        "expiry"].dtype
    assert out["expiry"].iloc[0] == pd.Timestamp("2026-02-20 20:00", tz="UTC")
    assert out["last"].tolist()[:3] == calls["lastPrice"].tolist()
    assert out["open_interest"].tolist()[3:] == [0.0, 10.0]
    assert (out["spot"] == 101.5).all()
    assert all(out[c].dtype == np.float64 for c in ("strike", "bid", "ask", "volume"))


def test_offline_fetch_fails_with_one_clear_line() -> None:
    class Offline:
        def __init__(self, symbol: str) -> None:
            pass

        @property
        def options(self) -> tuple:
            raise ConnectionError("no network")

    with pytest.raises(ChainError) as err:
        fetch_yfinance("ABC", ticker_factory=Offline)
    assert "ABC" in str(err.value) and "offline" in str(err.value) and "\n" not in str(err.value)


def test_validation_flags_name_row_and_field_and_never_drop_rows() -> None:
    chain = normalise_chain(synthetic_chain(n_strikes=5))
    chain.loc[0, "bid"] = chain.loc[0, "ask"] + 1          # crossed
    chain.loc[1, "bid"] = 0.0                                # zero bid
    chain.loc[2, "strike"] = -5.0                            # strike ≤ 0
    chain.loc[3, "expiry"] = chain.loc[3, "as_of"] - pd.Timedelta(days=1)   # expired
    chain = pd.concat([chain, chain.iloc[[10]]], ignore_index=True)         # duplicate
    checked = validate_chain(chain)
    assert len(checked.frame) == len(chain)
    flags = checked.frame["flag"]
    assert flags[0].startswith("bid/ask: crossed") and flags[1].startswith("bid: zero")
    assert flags[2].startswith("strike") and flags[3].startswith("expiry: expired")
    assert flags.iloc[-1].startswith("expiry/strike/type: duplicate")
    rows = {e["row"] for e in checked.excluded()}
    assert {0, 1, 2, 3, len(chain) - 1} <= rows
    assert not (set(checked.usable.index) & rows)


def test_strings_for_numbers_are_refused_naming_row_and_column(tmp_path) -> None:
    frame = synthetic_chain(n_strikes=3)
    frame["bid"] = frame["bid"].astype(object)
    frame.loc[4, "bid"] = "abc"
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ChainError, match="bid: row 4"):
        read_chain(path)
    good = tmp_path / "c.parquet"
    synthetic_chain(n_strikes=3).to_parquet(good)
    assert tuple(read_chain(good).columns) == CHAIN_COLUMNS


def test_parity_recovers_forward_and_dividend_yield() -> None:
    checked = validate_chain(synthetic_chain(rate=0.05, div=0.02, noise=0.0))
    for fw in implied_forwards(checked.usable, rate=0.05).values():
        assert fw.forward == pytest.approx(100 * np.exp(0.03 * fw.tau), rel=1e-5)
        assert fw.div == pytest.approx(0.02, abs=2e-4) and fw.pairs_used == 6
