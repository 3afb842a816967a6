"""Probabilities that the option market implies, and a hook to compare them with forecasts.

Under the risk-neutral measure P(S_T > K) = N(d2) (closed form). The network gives the same
quantity without a formula: the digital call is −∂C/∂K, and since C = K·c(S/K, ...) is
homogeneous of degree one, −∂C/∂K = (S·Δ − C)/K, so P(S_T > K) = e^{rτ}(S·Δ − C)/K from the
network's own price and autograd delta.

Forecasting models give a *real-world* distribution of S_T. `ForecastDistribution` is the hook
they plug into: anything with ``prob_above(strike, tau)`` can be compared, strike by strike,
with the risk-neutral probability (`compare_probabilities`). The gap mixes the risk premium
and the forecast's own view; it is reported, not interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.special import ndtr

from causalcast.options.black_scholes import d1_d2
from causalcast.options.inputs import OptionInputError, as_inputs


def risk_neutral_prob_above(spot: Any, strike: Any, tau: Any, sigma: Any, rate: Any = 0.0,
                            div: Any = 0.0) -> np.ndarray:
    """Closed-form risk-neutral P(S_T > K) = N(d2)."""
    _, d2 = d1_d2(as_inputs(spot, strike, tau, sigma, rate, div))
    return ndtr(d2)


def pinn_prob_above(spot: Any, strike: Any, tau: Any, sigma: Any, rate: Any = 0.0,
                    div: Any = 0.0, on_out_of_domain: str = "raise") -> np.ndarray:
    """Risk-neutral P(S_T > K) implied by the European network: e^{rτ}(S·Δ − C)/K."""
    from causalcast.options.pricer import price_options

    x = as_inputs(spot, strike, tau, sigma, rate, div)
    res = price_options(x.spot, x.strike, x.tau, x.sigma, x.rate, x.div, "call",
                        on_out_of_domain=on_out_of_domain)
    return np.exp(x.rate * x.tau) * (x.spot * res["delta"] - res["price"]) / x.strike


@runtime_checkable
class ForecastDistribution(Protocol):
    """What a forecasting model exposes to be compared with option-implied probabilities."""

    def prob_above(self, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Real-world P(S_T > strike) at horizon tau (years)."""
        ...


@dataclass(frozen=True)
class LognormalForecast:
    """A forecast given as drift mu and volatility sigma per year of log-price (the simplest
    adapter: most forecasters can report a mean and a spread of the log return)."""

    spot: float
    mu: float
    sigma: float

    def prob_above(self, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
        k, t = np.asarray(strike, float), np.asarray(tau, float)
        if self.sigma <= 0 or self.spot <= 0:
            raise OptionInputError("sigma, spot: must be > 0")
        z = (np.log(self.spot / k) + (self.mu - 0.5 * self.sigma**2) * t) / (self.sigma
                                                                             * np.sqrt(t))
        return ndtr(z)


@dataclass(frozen=True)
class SampleForecast:
    """A forecast given as simulated or ensemble terminal prices for one horizon."""

    samples: np.ndarray
    tau: float

    def prob_above(self, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
        if not np.allclose(np.asarray(tau, float), self.tau):
            raise OptionInputError(f"tau: samples are for horizon {self.tau}, got {tau}")
        s = np.sort(np.asarray(self.samples, float))
        k = np.asarray(strike, float)
        return 1.0 - np.searchsorted(s, k, side="right") / s.size


def compare_probabilities(spot: float, strikes: Any, tau: float, sigma: float, rate: float = 0.0,
                          div: float = 0.0, forecast: ForecastDistribution | None = None,
                          use_pinn: bool = True) -> dict[str, np.ndarray]:
    """Per strike: closed-form and network risk-neutral P(S_T > K), and, with a forecast, its
    real-world probability and the difference forecast − risk-neutral."""
    k = np.atleast_1d(np.asarray(strikes, float))
    out = {"strike": k, "risk_neutral": risk_neutral_prob_above(spot, k, tau, sigma, rate, div)}
    if use_pinn:
        out["risk_neutral_pinn"] = pinn_prob_above(spot, k, tau, sigma, rate, div,
                                                   on_out_of_domain="flag")
    if forecast is not None:
        if not isinstance(forecast, ForecastDistribution):
            raise OptionInputError("forecast: needs a prob_above(strike, tau) method")
        p = np.asarray(forecast.prob_above(k, np.full(k.shape, tau)), float)
        out["forecast"] = p
        out["forecast_minus_risk_neutral"] = p - out["risk_neutral"]
    return out
