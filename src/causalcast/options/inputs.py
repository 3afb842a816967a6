"""Option inputs: one place that checks, broadcasts and domain-tests what every pricer receives.

Every pricer (closed form, PINN, finite differences, QuantLib) goes through `as_inputs`, so a NaN,
a zero volatility or a negative strike is refused with the same message naming the field and
the first offending position, whichever method was asked for. The trained domain of the
networks is defined here once; the PINN pricers refuse (or flag) anything outside it instead of
extrapolating silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

POSITIVE_FIELDS = ("spot", "strike", "tau", "sigma")
FIELDS = (*POSITIVE_FIELDS, "rate", "div")
DAY = 1.0 / 365.0
_SLACK = 1e-9  # relative slack so that values typed at a domain edge (1/365) count as inside


class OptionInputError(ValueError):
    """An input value that no pricer can accept (NaN, infinite, zero or negative)."""


class OutOfDomainError(OptionInputError):
    """A valid input outside the region a network was trained on."""


@dataclass(frozen=True)
class Domain:
    """Box on which the networks are trained and validated (moneyness is S/K, tau in years)."""

    moneyness: tuple[float, float] = (0.5, 2.0)
    tau: tuple[float, float] = (DAY, 2.0)
    sigma: tuple[float, float] = (0.05, 1.0)
    rate: tuple[float, float] = (0.0, 0.10)
    div: tuple[float, float] = (0.0, 0.05)

    def as_dict(self) -> dict[str, list[float]]:
        return {k: list(getattr(self, k)) for k in ("moneyness", "tau", "sigma", "rate", "div")}


TRAINED_DOMAIN = Domain()

# Beyond these, sigma²·tau stops being a safe float64 (at sigma = 1e308 it overflows and the
# closed form quietly returns its lower bound): 10,000 % a year and a century are refused by
# every pricer, for every method, as a bad input rather than answered wrongly.
MAX_SIGMA = 100.0
MAX_TAU = 100.0


@dataclass(frozen=True)
class OptionInputs:
    """Broadcast, validated float64 arrays of equal shape (one entry per option)."""

    spot: np.ndarray
    strike: np.ndarray
    tau: np.ndarray
    sigma: np.ndarray
    rate: np.ndarray
    div: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.spot.shape

    @property
    def moneyness(self) -> np.ndarray:
        return self.spot / self.strike

    def take(self, mask: np.ndarray) -> OptionInputs:
        return OptionInputs(*(getattr(self, f)[mask] for f in FIELDS))


def _first_bad(name: str, arr: np.ndarray, bad: np.ndarray, problem: str) -> str:
    idx = np.flatnonzero(bad.ravel())
    where = "" if arr.ndim == 0 else f" (first at index {int(idx[0])})"
    value = arr.ravel()[idx[0]].item()
    return f"{name}: {problem}, got {value!r}{where}; {len(idx)} bad value(s)"


def as_inputs(spot: Any, strike: Any, tau: Any, sigma: Any, rate: Any = 0.0,
              div: Any = 0.0) -> OptionInputs:
    """Validate and broadcast the six inputs; raise `OptionInputError` naming the field."""
    raw = {"spot": spot, "strike": strike, "tau": tau, "sigma": sigma, "rate": rate, "div": div}
    arrays: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise OptionInputError(f"{name}: not a number ({value!r})") from exc
        if arr.size == 0:
            raise OptionInputError(f"{name}: empty input")
        finite = np.isfinite(arr)
        if not finite.all():
            raise OptionInputError(_first_bad(name, arr, ~finite, "must be a finite number"))
        if name in POSITIVE_FIELDS and (arr <= 0).any():
            raise OptionInputError(_first_bad(name, arr, arr <= 0, "must be > 0"))
        arrays[name] = arr
    try:
        bcast = np.broadcast_arrays(*arrays.values())
    except ValueError as exc:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise OptionInputError(f"inputs: shapes do not broadcast together {shapes}") from exc
    return OptionInputs(*(np.array(b, dtype=np.float64) for b in bcast))


def check_priceable(x: OptionInputs) -> None:
    """Raise `OptionInputError` naming the first volatility or maturity beyond what any pricer
    here can compute accurately (`MAX_SIGMA`, `MAX_TAU`)."""
    for name, limit in (("sigma", MAX_SIGMA), ("tau", MAX_TAU)):
        arr = getattr(x, name)
        if (arr > limit).any():
            raise OptionInputError(_first_bad(name, arr, arr > limit, f"must be <= {limit:g}"))


def parse_kind(kind: Any, shape: tuple[int, ...]) -> np.ndarray:
    """'call'/'put' (or 'c'/'p', any case), scalar or array, as a boolean is-call array."""
    arr = np.asarray(kind)
    if arr.dtype == bool:
        return np.broadcast_to(arr, shape).copy()
    lowered = np.char.lower(np.char.strip(arr.astype(str)))
    is_call = np.isin(lowered, ("call", "c"))
    is_put = np.isin(lowered, ("put", "p"))
    bad = ~(is_call | is_put)
    if bad.any():
        first = lowered.ravel()[np.flatnonzero(bad.ravel())[0]]
        raise OptionInputError(f"kind: expected 'call' or 'put', got {first!r}")
    try:
        return np.broadcast_to(is_call, shape).copy()
    except ValueError as exc:
        raise OptionInputError(f"kind: shape {arr.shape} does not match inputs {shape}") from exc


def domain_violations(x: OptionInputs, domain: Domain = TRAINED_DOMAIN) -> dict[str, np.ndarray]:
    """Per field, a boolean mask of entries outside the trained domain."""
    values = {"moneyness": x.moneyness, "tau": x.tau, "sigma": x.sigma, "rate": x.rate,
              "div": x.div}
    out = {}
    for name, arr in values.items():
        lo, hi = getattr(domain, name)
        tol = _SLACK * max(abs(lo), abs(hi), 1.0)
        out[name] = (arr < lo - tol) | (arr > hi + tol)
    return out


def in_domain(x: OptionInputs, domain: Domain = TRAINED_DOMAIN) -> np.ndarray:
    bad = np.zeros(x.shape, dtype=bool)
    for mask in domain_violations(x, domain).values():
        bad |= mask
    return ~bad


def check_domain(x: OptionInputs, domain: Domain = TRAINED_DOMAIN) -> None:
    """Raise `OutOfDomainError` naming the first field (and value) outside the trained box."""
    values = {"moneyness": x.moneyness, "tau": x.tau, "sigma": x.sigma, "rate": x.rate,
              "div": x.div}
    for name, mask in domain_violations(x, domain).items():
        if mask.any():
            lo, hi = getattr(domain, name)
            label = "moneyness (spot/strike)" if name == "moneyness" else name
            msg = _first_bad(label, values[name], mask,
                             f"outside the trained domain [{lo:g}, {hi:g}]")
            raise OutOfDomainError(msg + "; use method='closed' (European) or 'fd'/'quantlib', "
                                   "or on_out_of_domain='flag'")
