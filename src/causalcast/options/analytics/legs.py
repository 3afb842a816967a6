"""Strategy legs: the ``--leg`` syntax and the presets.

Syntax: ``"<signed quantity> call|put <strike> <expiry> [@price]"`` or ``"<signed quantity>
stock [@price]"``. Expiry is years (``0.5``) or days (``30d``, calendar days / 365). Without
``@price`` a leg is priced from the surface (or the flat σ). Quantities are in units of the
underlying: ``+1 call`` is the right to buy one share (a listed contract is usually 100).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from causalcast.options.inputs import DAY, OptionInputError

KINDS = ("call", "put", "stock")
_LEG = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s+(call|put|stock)\b\s*(.*?)\s*(?:@\s*(\S+))?\s*$",
                  re.IGNORECASE)


@dataclass(frozen=True)
class Leg:
    quantity: float
    kind: str
    strike: float | None = None
    tau: float | None = None
    price: float | None = None

    def describe(self) -> str:
        head = f"{self.quantity:+g} {self.kind}"
        if self.kind != "stock":
            head += f" {self.strike:g} {self.tau:.6g}y"
        return head + (f" @{self.price:g}" if self.price is not None else "")

    def as_dict(self) -> dict:
        return {"quantity": self.quantity, "kind": self.kind, "strike": self.strike,
                "tau": self.tau, "price": self.price}


def _number(text: str, field: str, leg: str, positive: bool = True) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise OptionInputError(f"leg {leg!r}: {field} {text!r} is not a number") from exc
    if not (value == value) or value in (float("inf"), float("-inf")) or (positive
                                                                       and value <= 0):
        raise OptionInputError(f"leg {leg!r}: {field} must be a finite number > 0, got {text}")
    return value


def parse_expiry(text: str, leg: str = "") -> float:
    text = text.strip().lower()
    if text.endswith("d"):
        return _number(text[:-1], "expiry (days)", leg) * DAY
    return _number(text, "expiry (years)", leg)


def parse_leg(text: str) -> Leg:
    """One leg from its text, refusing anything malformed with the leg and the field."""
    match = _LEG.match(text)
    if not match:
        raise OptionInputError(f"leg {text!r}: expected '<±qty> call|put <strike> <expiry> "
                               "[@price]' or '<±qty> stock [@price]'")
    qty_text, kind, rest, price_text = match.groups()
    qty = float(qty_text)
    if qty == 0:
        raise OptionInputError(f"leg {text!r}: quantity must not be 0")
    kind = kind.lower()
    price = _number(price_text, "price", text, positive=False) if price_text else None
    if price is not None and price < 0:
        raise OptionInputError(f"leg {text!r}: price must be ≥ 0")
    parts = rest.split()
    if kind == "stock":
        if parts:
            raise OptionInputError(f"leg {text!r}: a stock leg takes no strike or expiry")
        return Leg(qty, kind, price=price)
    if len(parts) != 2:
        raise OptionInputError(f"leg {text!r}: an option leg needs a strike and an expiry")
    return Leg(qty, kind, _number(parts[0], "strike", text), parse_expiry(parts[1], text),
               price)


PRESETS = {
    "bull-call": ("call", [+1, -1], 2), "bear-call": ("call", [-1, +1], 2),
    "bull-put": ("put", [+1, -1], 2), "bear-put": ("put", [-1, +1], 2),
    "straddle": ("cp", [+1, +1], 1), "strangle": ("pc", [+1, +1], 2),
    "butterfly": ("call", [+1, -2, +1], 3), "iron-condor": ("ppcc", [+1, -1, -1, +1], 4),
    "covered-call": ("sc", [+1, -1], 1), "protective-put": ("sp", [+1, +1], 1),
    "collar": ("spc", [+1, +1, -1], 2), "calendar": ("call", [-1, +1], 1),
}


def preset_legs(name: str, strikes: list[float], tau: float, far_tau: float | None = None,
                quantity: float = 1.0) -> list[Leg]:
    """Legs of a preset; ``strikes`` ascending as the preset needs them (verticals: 2,
    butterfly 3, iron condor 4: long put, short put, short call, long call). A calendar sells
    at ``tau`` and buys at ``far_tau``. Stock legs hold one share per option."""
    if name not in PRESETS:
        raise OptionInputError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    kinds, signs, n_strikes = PRESETS[name]
    if len(strikes) != n_strikes:
        raise OptionInputError(f"preset {name}: needs {n_strikes} strike(s), got {len(strikes)}")
    if any(b <= a for a, b in pairwise(strikes)):
        raise OptionInputError(f"preset {name}: strikes must be strictly ascending")
    if any(not k > 0 for k in strikes):
        raise OptionInputError(f"preset {name}: strikes must be > 0")
    if name == "calendar":
        if far_tau is None or far_tau <= tau:
            raise OptionInputError("preset calendar: needs a far expiry after the near one")
        return [Leg(-quantity, "call", strikes[0], tau), Leg(quantity, "call", strikes[0],
                                                              far_tau)]
    legs = []
    kind_of = {"c": "call", "p": "put", "s": "stock"}
    option_strikes = iter(strikes * (2 if name == "straddle" else 1))
    for i, sign in enumerate(signs):
        kind = kinds if kinds in ("call", "put") else kind_of[kinds[i]]
        if kind == "stock":
            legs.append(Leg(sign * quantity, "stock"))
        else:
            legs.append(Leg(sign * quantity, kind, next(option_strikes), tau))
    return legs
