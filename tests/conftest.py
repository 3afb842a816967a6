"""Shared fixtures: small valid OHLCV frames and files built from the synthetic market."""

from __future__ import annotations

from pathlib import Path

import pytest

from causalcast.data.synthetic import make_universe
from tests.support.frames import random_ohlcv, yahoo_csv

# Throwaway PostgreSQL and S3 servers (postgres_server, postgres_url, s3_server, s3_url),
# started only by the tests that ask for them.
pytest_plugins = ("tests.support.servers",)


@pytest.fixture(scope="session")
def universe():
    return make_universe(n_symbols=3, n_bars=900, strength=0.325, seed=7, mc_states=200,
                         mc_paths=400)


@pytest.fixture
def csv_folder(tmp_path: Path) -> Path:
    for k, sym in enumerate(["AAA", "BBB"]):
        yahoo_csv(random_ohlcv(600, seed=k), tmp_path / f"{sym}.csv")
    return tmp_path
