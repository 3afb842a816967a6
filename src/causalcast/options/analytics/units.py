"""Greek conventions and JSON-safe numbers.

Trader units (default): vega per 1 vol point (0.01 of σ), theta per calendar day (1/365 of a
year, ∂V/∂t), rho per 1 % of rate. Raw: per unit σ, per year, per unit r (the pricers' own).
Every JSON output carries the units it used; NaN and infinities never reach JSON: they become
null, with a reason beside them where the value is expected.
"""

from __future__ import annotations

import math
from typing import Any

GREEK_UNITS = {
    "trader": {"delta": "per 1 unit of underlying price", "gamma": "per 1 unit of underlying "
               "price, squared", "vega": "per 1 vol point (0.01 of sigma)",
               "theta": "per calendar day", "rho": "per 1% of rate"},
    "raw": {"delta": "per 1 unit of underlying price", "gamma": "per 1 unit of underlying "
            "price, squared", "vega": "per unit sigma (1.00 = 100 vol points)",
            "theta": "per year", "rho": "per unit rate (1.00 = 100%)"},
}
_SCALE = {"trader": {"vega": 0.01, "theta": 1 / 365.0, "rho": 0.01}, "raw": {}}


def convert_greeks(greeks: dict[str, float], units: str) -> dict[str, float]:
    if units not in GREEK_UNITS:
        raise ValueError(f"greeks_units: expected one of {sorted(GREEK_UNITS)}, got {units!r}")
    return {k: v * _SCALE[units].get(k, 1.0) for k, v in greeks.items()}


def json_safe(obj: Any) -> Any:
    """A copy with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
