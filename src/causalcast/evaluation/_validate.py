"""Input checks shared by the evaluation functions.

Every public function in `causalcast.evaluation` validates its inputs here, so that a length
mismatch, a NaN or an impossible horizon fails at once with the argument's name in the message
instead of surfacing later as a silently wrong statistic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class EvaluationInputError(ValueError):
    """An evaluation function was given inputs it cannot score honestly."""


def as_float_array(name: str, values: Any, *, ndim: tuple[int, ...] = (1,),
                   allow_nan: bool = False, min_length: int = 1) -> np.ndarray:
    """`values` as a float64 array with one of the allowed dimensions, rejecting NaN/inf."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise EvaluationInputError(f"{name}: cannot be read as numbers ({exc})") from None
    if arr.ndim not in ndim:
        dims = " or ".join(f"{d}-D" for d in ndim)
        raise EvaluationInputError(f"{name}: must be {dims}, got shape {arr.shape}")
    if arr.ndim and arr.shape[0] < min_length:
        raise EvaluationInputError(
            f"{name}: needs at least {min_length} value(s), got {arr.shape[0]}")
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), arr.shape)
        where = first[0] if arr.ndim == 1 else first
        kind = "infinite" if allow_nan else "NaN or infinite"
        raise EvaluationInputError(
            f"{name}: contains {int(bad.sum())} {kind} value(s) (first at position {where})")
    return arr


def same_length(**arrays: np.ndarray) -> int:
    """The common first-axis length of `arrays`; raises naming every length if they differ."""
    lengths = {name: int(np.shape(a)[0]) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise EvaluationInputError(f"length mismatch: {detail}")
    return next(iter(lengths.values()))


def check_horizon(h: Any, name: str = "h") -> int:
    """A forecast horizon: an integer >= 1."""
    if isinstance(h, bool) or not isinstance(h, int | np.integer) or int(h) < 1:
        raise EvaluationInputError(f"{name}: must be an integer >= 1, got {h!r}")
    return int(h)


def check_alpha(alpha: Any) -> float:
    if not isinstance(alpha, int | float) or not 0.0 < float(alpha) < 1.0:
        raise EvaluationInputError(f"alpha: must be in (0, 1), got {alpha!r}")
    return float(alpha)


def check_positive(name: str, arr: np.ndarray) -> np.ndarray:
    if (arr <= 0).any():
        first = int(np.argmax(arr.ravel() <= 0))
        raise EvaluationInputError(f"{name}: must be > 0 everywhere (first offending value "
                                   f"{arr.ravel()[first]!r} at position {first})")
    return arr


def check_probability(name: str, arr: np.ndarray) -> np.ndarray:
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        first = int(np.argmax(bad.ravel()))
        raise EvaluationInputError(f"{name}: probabilities must lie in [0, 1] (got "
                                   f"{arr.ravel()[first]!r} at position {first})")
    return arr


def check_binary(name: str, arr: np.ndarray) -> np.ndarray:
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        first = int(np.argmax(bad.ravel()))
        raise EvaluationInputError(f"{name}: outcomes must be 0 or 1 (got "
                                   f"{arr.ravel()[first]!r} at position {first})")
    return arr


def check_finite_scalar(name: str, value: Any, *, low: float = -math.inf,
                        high: float = math.inf) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise EvaluationInputError(f"{name}: must be a number, got {value!r}") from None
    if not math.isfinite(x) or not low <= x <= high:
        raise EvaluationInputError(f"{name}: must be finite and in [{low}, {high}], got {value!r}")
    return x
