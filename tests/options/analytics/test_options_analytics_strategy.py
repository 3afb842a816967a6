"""Strategies: closed forms under a flat lognormal, zero risk-neutral expected P&L, the legs
syntax and presets, Greek units, JSON without NaN, and a cross-check against optionlab."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import ndtr

from causalcast.options.analytics.distributions import Lognormal
from causalcast.options.analytics.legs import Leg, parse_leg, preset_legs
from causalcast.options.analytics.strategy import Market, evaluate, standard_laws
from causalcast.options.black_scholes import bsm_price
from causalcast.options.inputs import OptionInputError

S, R, Q, SIG, T = 100.0, 0.03, 0.01, 0.25, 0.25


def _lognormal_prob_above(level: float, sigma: float = SIG, tau: float = T) -> float:
    d2 = (np.log(S / level) + (R - Q - 0.5 * sigma**2) * tau) / (sigma * np.sqrt(tau))
    return float(ndtr(d2))


def _run(legs: list[Leg], **kw) -> dict:
    mk = Market(S, R, Q, sigma=SIG)
    return evaluate(legs, mk, standard_laws(mk, SIG), **kw)


@pytest.mark.parametrize("name,strikes", [("bull-call", [95, 110]), ("bear-put", [90, 100]),
                                          ("straddle", [100]), ("strangle", [90, 110]),
                                          ("iron-condor", [80, 92, 108, 120])])
def test_pop_and_expected_pnl_match_closed_forms(name: str, strikes: list[float]) -> None:
    legs = preset_legs(name, strikes, T)
    res = _run(legs)
    b = res["breakevens"]
    tail = [_lognormal_prob_above(x) for x in b]
    if name in ("bull-call",):
        expected_pop = tail[0]
    elif name == "bear-put":
        expected_pop = 1 - tail[0]
    elif name in ("straddle", "strangle"):
        expected_pop = (1 - tail[0]) + tail[1]
    else:   # short iron condor: profit between the breakevens
        expected_pop = tail[0] - tail[1]
    assert res["pop"]["lognormal"] == pytest.approx(expected_pop, abs=1e-6)
    # bought at model prices under the risk-neutral law: zero expected P&L after compounding
    assert abs(res["expected_pnl"]["lognormal"]) < 1e-6
    # breakevens are where the P&L at expiry is zero
    prices = [bsm_price(S, leg.strike, T, SIG, R, Q, leg.kind) for leg in legs]
    premium = sum(leg.quantity * p for leg, p in zip(legs, prices, strict=True))
    for x in b:
        pay = sum(leg.quantity * max((x - leg.strike) if leg.kind == "call" else
                                     (leg.strike - x), 0) for leg in legs)
        assert pay - premium * np.exp(R * T) == pytest.approx(0, abs=1e-9)


def test_expected_pnl_under_another_sigma_matches_closed_form() -> None:
    legs = preset_legs("straddle", [100], T)
    mk = Market(S, R, Q, sigma=SIG)
    res = evaluate(legs, mk, [lambda h: Lognormal(S, R, Q, 0.4, h)])
    fair = sum(bsm_price(S, 100, T, v, R, Q, k) for v in (0.4,) for k in ("call", "put"))
    paid = sum(bsm_price(S, 100, T, SIG, R, Q, k) for k in ("call", "put"))
    assert res["expected_pnl"]["lognormal"] == pytest.approx((fair - paid) * np.exp(R * T),
                                                             abs=1e-9)


def test_stock_and_calendar_strategies_are_fair_under_the_risk_neutral_law() -> None:
    for legs in (preset_legs("covered-call", [110], T), preset_legs("collar", [90, 110], T),
                 preset_legs("protective-put", [95], T)):
        assert abs(_run(legs)["expected_pnl"]["lognormal"]) < 1e-6
    cal = _run(preset_legs("calendar", [100], 0.1, 0.3))
    assert abs(cal["expected_pnl"]["lognormal"]) < 1e-6 and cal["notes"]


def test_extremes_and_unbounded_are_stated() -> None:
    naked = _run([parse_leg("-1 call 105 0.25")])
    assert naked["max_loss"] is None and "unbounded" in naked["max_loss_reason"]
    assert naked["max_profit"] == pytest.approx(-naked["net_premium"] * np.exp(R * T))
    condor = _run(preset_legs("iron-condor", [80, 92, 108, 120], T))
    width = 12 - (-condor["net_premium"]) * np.exp(R * T)
    assert condor["max_loss"] == pytest.approx(-width) and condor["max_profit"] > 0


def test_greek_units_trader_and_raw() -> None:
    legs = [parse_leg("+1 call 100 90d")]
    trader, raw = _run(legs), _run(legs, greeks_units="raw")
    assert trader["greeks"]["vega"] == pytest.approx(raw["greeks"]["vega"] / 100)
    assert trader["greeks"]["theta"] == pytest.approx(raw["greeks"]["theta"] / 365)
    assert trader["greeks"]["rho"] == pytest.approx(raw["greeks"]["rho"] / 100)
    assert trader["greeks_units"]["vega"].startswith("per 1 vol point")


def test_json_has_no_nan_and_model_law_carries_its_evidence() -> None:
    mk = Market(S, R, Q, sigma=SIG)
    forecast = {"mu": 0.02, "sigma": 0.1, "nu": 3.5, "horizon": 0.25,
                "evidence": {"skill": "beats naive on 3/5 folds"}}
    res = evaluate([parse_leg("-1 call 105 0.25")], mk, standard_laws(mk, SIG, forecast),
                   target=1.0, dates=(0.1,))
    text = json.dumps(res, allow_nan=False)
    assert "NaN" not in text
    assert res["distributions"]["model"]["evidence"]["skill"].startswith("beats")
    assert set(res["pop"]) == {"lognormal", "model"}


@pytest.mark.parametrize("text", ["1 call", "+1 call -5 1", "+1 call 100 0", "+0 put 90 1",
                                  "+1 stock 100 1", "+1 call 100 1 @-2", "+1 bond 100 1"])
def test_bad_legs_are_refused_naming_the_leg(text: str) -> None:
    with pytest.raises(OptionInputError, match="leg"):
        parse_leg(text)


def test_leg_syntax() -> None:
    assert parse_leg("+1 call 100 0.5") == Leg(1.0, "call", 100.0, 0.5)
    assert parse_leg("-2 put 95 30d @1.25") == Leg(-2.0, "put", 95.0, 30 / 365, 1.25)
    assert parse_leg("+100 stock") == Leg(100.0, "stock")


def test_cross_check_against_optionlab() -> None:
    optionlab = pytest.importorskip("optionlab")
    legs = [Leg(1, "put", 85, 91 / 365, 0.5), Leg(-1, "put", 95, 91 / 365, 2.0),
            Leg(-1, "call", 105, 91 / 365, 2.1), Leg(1, "call", 115, 91 / 365, 0.6)]
    mk = Market(100.0, 0.0, 0.0, sigma=0.25)
    ours = evaluate(legs, mk, standard_laws(mk, 0.25), target=0.01)
    theirs = optionlab.run_strategy(optionlab.Inputs(
        stock_price=100.0, volatility=0.25, interest_rate=0.0, min_stock=50, max_stock=150,
        strategy=[{"type": leg.kind, "strike": leg.strike, "premium": leg.price, "n": 1,
                   "action": "buy" if leg.quantity > 0 else "sell"} for leg in legs],
        days_to_target_date=91, discard_nonbusiness_days=False, model="black-scholes"))
    # optionlab's "profit" is P&L ≥ one cent: our probability of reaching a 0.01 target
    assert ours["distributions"]["lognormal"]["prob_target"] == pytest.approx(
        theirs.probability_of_profit, abs=1e-6)
    assert ours["net_premium"] == pytest.approx(-theirs.strategy_cost)
    lo, hi = theirs.profit_ranges[0]
    assert ours["breakevens"] == pytest.approx([lo - 0.01, hi + 0.01], abs=1e-9)
    assert ours["max_profit"] == pytest.approx(theirs.maximum_return_in_the_domain)
    assert ours["max_loss"] == pytest.approx(theirs.minimum_return_in_the_domain)
    expected = (theirs.expected_profit_if_profitable * theirs.probability_of_profit
                + theirs.expected_loss_if_unprofitable * (1 - theirs.probability_of_profit))
    assert ours["expected_pnl"]["lognormal"] == pytest.approx(expected, abs=1e-6)
