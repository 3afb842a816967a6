"""QuantLib, one option at a time: the independent check (in the ``[bench]`` extra).

Nothing in the pricing path depends on QuantLib; tests and the benchmark use it to validate the
closed form, the finite-difference solver and the networks against code we did not write. Every
call builds its own term structures, so results do not depend on a global evaluation date
beyond the fixed evaluation date set here. QuantLib works with dates, so tau is rounded to whole
days (Actual/365); `quantlib_tau` gives the maturity it actually priced.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causalcast.options.inputs import OptionInputError, OptionInputs, as_inputs, parse_kind

ENGINES = ("analytic", "crr", "fd", "qdfp-fast", "qdfp-accurate", "qdfp-high")
# QuantLib's QdFp American engine (Andersen–Lake–Offengenden fixed-point boundary iteration):
# 'qdfp-high' (high-precision scheme) is the accuracy reference, 'qdfp-fast' the speed peer.
_QDFP_SCHEMES = {"qdfp-fast": "fastScheme", "qdfp-accurate": "accurateScheme",
                 "qdfp-high": "highPrecisionScheme"}


def _ql() -> Any:
    try:
        import QuantLib as ql
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise OptionInputError("method 'quantlib' needs QuantLib: pip install 'causalcast[bench]'"
                               ) from exc
    return ql


class _Env:
    """Reusable QuantLib handles: quotes are updated in place, so pricing n options does not
    rebuild curves n times (this is the fair per-option cost for the benchmark)."""

    def __init__(self) -> None:
        ql = _ql()
        self.ql = ql
        self.today = ql.Date(2, 1, 2024)
        ql.Settings.instance().evaluationDate = self.today
        self.dc = ql.Actual365Fixed()
        self.spot = ql.SimpleQuote(100.0)
        self.rate = ql.SimpleQuote(0.0)
        self.div = ql.SimpleQuote(0.0)
        self.vol = ql.SimpleQuote(0.2)
        r_ts = ql.YieldTermStructureHandle(ql.FlatForward(self.today, ql.QuoteHandle(self.rate),
                                                          self.dc))
        q_ts = ql.YieldTermStructureHandle(ql.FlatForward(self.today, ql.QuoteHandle(self.div),
                                                          self.dc))
        v_ts = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(
            self.today, ql.NullCalendar(), ql.QuoteHandle(self.vol), self.dc))
        self.process = ql.BlackScholesMertonProcess(ql.QuoteHandle(self.spot), q_ts, r_ts, v_ts)

    def engine(self, name: str, steps: int) -> Any:
        ql = self.ql
        if name == "analytic":
            return ql.AnalyticEuropeanEngine(self.process)
        if name == "crr":
            return ql.BinomialVanillaEngine(self.process, "crr", steps)
        if name == "fd":
            return ql.FdBlackScholesVanillaEngine(self.process, steps, steps, 0)
        if name in _QDFP_SCHEMES:
            scheme = getattr(ql.QdFpAmericanEngine, _QDFP_SCHEMES[name])()
            return ql.QdFpAmericanEngine(self.process, scheme)
        raise OptionInputError(f"engine: expected one of {ENGINES}, got {name!r}")


_ENV: _Env | None = None


def _env() -> _Env:
    global _ENV
    if _ENV is None:
        _ENV = _Env()
    return _ENV


def quantlib_price(spot: Any, strike: Any, tau: Any, sigma: Any, rate: Any = 0.0,
                   div: Any = 0.0, kind: Any = "call", style: str = "european",
                   engine: str = "analytic", steps: int = 2000) -> np.ndarray:
    """Price each option with QuantLib (loop); tau is rounded to whole days (QuantLib dates).

    Use `quantlib_tau` to get the year fraction QuantLib actually priced, so comparisons are
    made at the same maturity.
    """
    x = as_inputs(spot, strike, tau, sigma, rate, div)
    return _run(x, parse_kind(kind, x.shape), style, engine, steps, ("price",))["price"]


_GREEK_METHODS = {"price": "NPV", "delta": "delta", "gamma": "gamma", "vega": "vega",
                  "theta": "theta", "rho": "rho"}


def quantlib_greeks(x: OptionInputs, is_call: np.ndarray, style: str,
                    keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Price and the Greeks the engine provides (analytic: all; CRR: delta, gamma, theta);
    the others are NaN. European: analytic engine; American: CRR with 2000 steps."""
    engine = "analytic" if style == "european" else "crr"
    return _run(x, is_call, style, engine, 2000, keys)


def _run(x: OptionInputs, is_call: np.ndarray, style: str, engine: str, steps: int,
         keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    env = _env()
    ql = env.ql
    if style not in ("european", "american"):
        raise OptionInputError(f"style: expected 'european' or 'american', got {style!r}")
    if style == "american" and engine == "analytic":
        raise OptionInputError("engine: 'analytic' prices European options only")
    if style == "european" and engine in _QDFP_SCHEMES:
        raise OptionInputError(f"engine: {engine!r} prices American options only")
    ql.Settings.instance().evaluationDate = env.today
    eng = env.engine(engine, steps)
    out = {k: np.full(x.shape, np.nan) for k in keys}
    flat = [a.ravel() for a in (x.spot, x.strike, quantlib_days(x.tau), x.sigma, x.rate, x.div)]
    calls = is_call.ravel()
    res = {k: v.ravel() for k, v in out.items()}
    for i in range(calls.size):
        s, k, days, sig, r, q = (a[i] for a in flat)
        env.spot.setValue(float(s))
        env.vol.setValue(float(sig))
        env.rate.setValue(float(r))
        env.div.setValue(float(q))
        maturity = env.today + int(days)
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if calls[i] else ql.Option.Put, float(k))
        exercise = (ql.EuropeanExercise(maturity) if style == "european"
                    else ql.AmericanExercise(env.today, maturity))
        option = ql.VanillaOption(payoff, exercise)
        option.setPricingEngine(eng)
        for key, arr in res.items():
            try:
                arr[i] = getattr(option, _GREEK_METHODS[key])()
            except RuntimeError:  # the engine does not provide this Greek
                arr[i] = np.nan
    return out


def quantlib_days(tau: Any) -> np.ndarray:
    """Whole days QuantLib prices for a given tau (at least one)."""
    return np.maximum(np.rint(np.asarray(tau, dtype=np.float64) * 365.0), 1.0).astype(np.int64)


def quantlib_tau(tau: Any) -> np.ndarray:
    """The year fraction QuantLib actually prices for ``tau`` (Actual/365, whole days)."""
    return quantlib_days(tau) / 365.0
