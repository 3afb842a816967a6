"""The synthetic market: deterministic, and its accuracy ceiling is right."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import binomtest

from causalcast.data.quality import validate_ohlcv
from causalcast.data.sources import load_ohlcv
from causalcast.data.synthetic import (
    SyntheticParams,
    _monte_carlo_ceiling,
    _simulate_states,
    make_universe,
    strength_for_accuracy,
)


def test_deterministic_by_seed():
    a = make_universe(2, 300, seed=5, mc_states=50, mc_paths=100)
    b = make_universe(2, 300, seed=5, mc_states=50, mc_paths=100)
    c = make_universe(2, 300, seed=6, mc_states=50, mc_paths=100)
    for s in a.frames:
        assert a.frames[s].equals(b.frames[s])
        assert not a.frames[s].equals(c.frames[s])
    assert a.bayes_accuracy == b.bayes_accuracy


def test_bars_are_valid_ohlcv(universe):
    for symbol, frame in universe.frames.items():
        validate_ohlcv(frame, symbol)


@pytest.mark.parametrize("target", [0.55, 0.60, 0.65])
def test_one_bar_ceiling_matches_the_analytic_formula(target):
    c = strength_for_accuracy(target)
    assert 0.5 + math.atan(c) / math.pi == pytest.approx(target)
    u = make_universe(20, 3000, strength=c, seed=1, annual_drift=0.0, drift_dispersion=0.0,
                      mc_states=10, mc_paths=10)
    assert u.bayes_accuracy[1] == pytest.approx(target, abs=0.006)


def test_oracle_reaches_the_ceiling_on_realised_bars():
    """Predicting with the true P(up) scores the stated ceiling (binomial interval)."""
    u = make_universe(10, 2000, strength=strength_for_accuracy(0.6), seed=3,
                      mc_states=10, mc_paths=10)
    hits = total = 0
    for s, frame in u.frames.items():
        p = u.prob_up[s].to_numpy()[:-1]
        up = np.diff(np.log(frame["close"].to_numpy())) > 0
        hits += int(((p > 0.5) == up).sum())
        total += len(up)
    result = binomtest(hits, total)
    low, high = result.proportion_ci(0.999)
    assert low <= u.ceiling() <= high


def test_random_walk_has_no_edge():
    u = make_universe(10, 2000, strength=0.0, seed=2, annual_drift=0.0, drift_dispersion=0.0,
                      mc_states=400, mc_paths=2000)
    for h, acc in u.bayes_accuracy.items():
        assert acc == pytest.approx(0.5, abs=0.02), h
    assert u.bayes_accuracy[1] == pytest.approx(0.5, abs=1e-9)


def test_monte_carlo_agrees_with_exact_one_bar_ceiling():
    p = SyntheticParams(n_symbols=8, n_bars=1500, strength=0.4, seed=9, horizons=(1, 5),
                        mc_states=1500, mc_paths=2000)
    rng = np.random.default_rng(9)
    _, _, sig, s_before, state = _simulate_states(p, rng)
    s_after = np.vstack([s_before[1:], state["s_next"][None]])
    sig_next = np.vstack([sig[1:], np.sqrt(state["var_next"])[None]])
    acc, se = _monte_carlo_ceiling(p, s_after[:-1], sig_next[:-1] ** 2, state["mu"],
                                   state["omega"], rng)
    from scipy.stats import norm
    z = p.strength * s_after[:-1] + state["mu"] / sig_next[:-1]
    exact = float(np.mean(np.maximum(norm.cdf(z), norm.cdf(-z))))
    assert abs(acc[1] - exact) < 4 * se[1] + 0.003


def test_bad_parameters_name_the_field():
    with pytest.raises(ValueError, match="persistence"):
        make_universe(1, 100, persistence=1.5)
    with pytest.raises(ValueError, match="garch_alpha"):
        make_universe(1, 100, garch_alpha=0.5, garch_beta=0.6)
    with pytest.raises(ValueError, match="strength"):
        make_universe(1, 100, strength=-1)


def test_synth_command_writes_loadable_files(tmp_path):
    out = tmp_path / "u"
    proc = subprocess.run([sys.executable, "-m", "causalcast", "synth", "--out", str(out),
                           "--symbols", "2", "--bars", "400", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "universe.json").read_text())
    assert set(meta["bayes_accuracy"]) == {"1", "5", "10", "30"}
    frames = load_ohlcv(out)
    assert sorted(frames) == ["SYN000", "SYN001"] and len(frames["SYN000"]) == 400
