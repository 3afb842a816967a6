"""Settings layering and the data CLI's contract: --json, clear errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from causalcast.config import load_settings
from tests.support.frames import random_ohlcv, yahoo_csv


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "causalcast", *args], capture_output=True,
                          text=True)


def test_settings_layering(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text("seed = 7\n[split]\nembargo = 9\n[features]\nhorizons = [5, 1]\n")
    s = load_settings(toml, environ={"CAUSALCAST_SPLIT__EMBARGO": "11",
                                     "CAUSALCAST_API_KEY": "ignored"})
    assert s.seed == 7 and s.split.embargo == 11 and s.features.horizons == (1, 5)
    s = load_settings(toml, overrides={"split": {"embargo": 3}}, environ={})
    assert s.split.embargo == 3
    assert s.fingerprint_dict()["features"]["horizons"] == [1, 5]


def test_settings_errors_name_the_field():
    with pytest.raises(ValidationError, match="horizons"):
        load_settings(overrides={"features": {"horizons": (0, 5)}}, environ={})
    with pytest.raises(ValidationError, match="embargo"):
        load_settings(overrides={"split": {"embargo": -1}}, environ={})
    with pytest.raises(ValidationError, match="unknown_key"):
        load_settings(overrides={"split": {"unknown_key": 1}}, environ={})


def test_validate_command_reports_problem_and_exits_2(tmp_path):
    frame = random_ohlcv(400)
    frame.iloc[100, frame.columns.get_loc("volume")] = -1
    yahoo_csv(frame, tmp_path / "BAD.csv")
    proc = cli("data", "validate", "--data", str(tmp_path))
    assert proc.returncode == 2
    assert "BAD.csv" in proc.stderr and "volume at" in proc.stderr
    assert "negative volume" in proc.stderr


def test_validate_command_json(tmp_path):
    yahoo_csv(random_ohlcv(400), tmp_path / "OK.csv")
    proc = cli("data", "validate", "--data", str(tmp_path), "--lookback", "30", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["symbols"]["OK"]["n_bars"] == 400


def test_features_command(tmp_path):
    yahoo_csv(random_ohlcv(400), tmp_path / "OK.csv")
    proc = cli("features", "--data", str(tmp_path), "--lookback", "30", "--json",
               "--out", str(tmp_path / "feat"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["OK"]["features"] >= 20
    assert (tmp_path / "feat" / "OK.features.parquet").exists()
    listed = json.loads(cli("features", "--list", "--json").stdout)
    assert len(listed) >= 20


def test_every_command_has_help():
    for args in (["--help"], ["data", "validate", "--help"], ["synth", "--help"],
                 ["features", "--help"], ["audit", "--help"], ["run", "--help"]):
        proc = cli(*args)
        assert proc.returncode == 0 and "Usage" in proc.stdout, args
