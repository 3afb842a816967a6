"""`causalcast options ...`: single price, CSV batch, implied volatility, training command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.options.black_scholes import bsm_price

runner = CliRunner()
BASE = ["--spot", "105", "--strike", "100", "--tau", "0.5", "--sigma", "0.25", "--rate", "0.03",
        "--div", "0.01"]


def _json(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_price_pinn_and_closed_agree() -> None:
    pinn = _json(runner.invoke(app, ["options", "price", *BASE, "--type", "both", "--json"]))
    closed = _json(runner.invoke(app, ["options", "price", *BASE, "--type", "both",
                                       "--method", "closed", "--json"]))
    assert [r["type"] for r in pinn] == ["call", "put"]
    for p, c in zip(pinn, closed, strict=True):
        assert p["price"] == pytest.approx(c["price"], abs=0.2)
        assert p["delta"] == pytest.approx(c["delta"], abs=0.01)
    ref = float(bsm_price(105, 100, 0.5, 0.25, 0.03, 0.01, "call"))
    assert closed[0]["price"] == pytest.approx(ref, rel=1e-12)


def test_price_american_put_and_table_output() -> None:
    out = _json(runner.invoke(app, ["options", "price", *BASE, "--type", "put", "--style",
                                    "american", "--json"]))
    eu = float(bsm_price(105, 100, 0.5, 0.25, 0.03, 0.01, "put"))
    assert out["price"] >= eu - 0.2
    res = runner.invoke(app, ["options", "price", *BASE])
    assert res.exit_code == 0 and "delta" in res.output


@pytest.mark.parametrize("flag,value,needle", [
    ("--sigma", "0", "sigma: must be > 0"),
    ("--spot", "nan", "spot: must be a finite number"),
    ("--tau", "-1", "tau: must be > 0"),
    ("--sigma", "2.5", "sigma: outside the trained domain"),
    ("--type", "straddle", "kind: expected 'call' or 'put'"),
])
def test_price_bad_inputs_exit_2_with_the_field(flag, value, needle) -> None:
    argv = ["options", "price", *BASE, "--type", "call"]
    argv[argv.index(flag) + 1] = value
    res = runner.invoke(app, argv)
    assert res.exit_code == 2
    assert needle in " ".join(res.output.split())


def test_batch_csv_round_trip_flags_out_of_domain(tmp_path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"spot": [90.0, 100.0, 400.0], "strike": 100.0, "tau": [0.25, 1.0, 1.0],
                  "sigma": 0.3, "rate": 0.02, "div": 0.0,
                  "type": ["call", "put", "call"], "style": ["european", "american",
                                                            "european"]}).to_csv(src,
                                                                                 index=False)
    summary = _json(runner.invoke(app, ["options", "batch", str(src), str(out), "--json"]))
    assert summary["rows"] == 3 and summary["out_of_domain"] == 1
    got = pd.read_csv(out)
    assert got["in_domain"].tolist() == [True, True, False]
    assert np.isnan(got["price"].iloc[2])
    ref = float(bsm_price(90.0, 100.0, 0.25, 0.3, 0.02, 0.0, "call"))
    assert got["price"].iloc[0] == pytest.approx(ref, abs=0.2)
    assert {"delta", "gamma", "vega", "theta", "rho"} <= set(got.columns)


def test_batch_csv_bad_value_names_row_and_column(tmp_path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("spot,strike,tau,sigma\n100,100,0.5,0.2\n100,100,0.5,-0.2\n")
    res = runner.invoke(app, ["options", "batch", str(src), str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    assert "'sigma', row 3" in res.output
    src.write_text("spot,strike,sigma\n100,100,0.2\n")
    res = runner.invoke(app, ["options", "batch", str(src), str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "missing column" in res.output


def test_implied_vol_command() -> None:
    p = float(bsm_price(100, 110, 0.75, 0.33, 0.02, 0.01, "put"))
    out = _json(runner.invoke(app, ["options", "iv", "--price", str(p), "--spot", "100",
                                    "--strike", "110", "--tau", "0.75", "--rate", "0.02",
                                    "--div", "0.01", "--type", "put", "--json"]))
    assert out["implied_volatility"] == pytest.approx(0.33, rel=1e-8)
    res = runner.invoke(app, ["options", "iv", "--price", "0.5", "--spot", "150", "--strike",
                              "100", "--tau", "1"])
    assert res.exit_code == 2 and "lower bound" in res.output


@pytest.mark.slow
def test_train_pinn_quick_profile_writes_verified_weights(tmp_path) -> None:
    res = runner.invoke(app, ["options", "train-pinn", "--profile", "quick", "--out",
                              str(tmp_path), "--json"])
    report = _json(res)
    for name in ("european", "american"):
        assert (tmp_path / f"{name}.safetensors").exists()
        assert len(report[name]["sha256"]) == 64
    from causalcast.options.pricer import load_models

    models = load_models(tmp_path)  # verified load of what was written
    assert models.american is not None
    again = _json(runner.invoke(app, ["options", "train-pinn", "--profile", "quick", "--out",
                                      str(tmp_path / "again"), "--which", "european",
                                      "--no-evaluate", "--json"]))
    # reproducible: same seed, same tensors (the files differ only in the recorded wall time)
    from causalcast.weights import load_weights

    first, _ = load_weights(tmp_path / "european")
    second, _ = load_weights(tmp_path / "again" / "european")
    assert again["european"]["sha256"] != ""
    assert all(torch.equal(first[k], second[k]) for k in first)
