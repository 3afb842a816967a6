"""Input checks shared by `Registry` and the stores: names, stages, job keys, timestamps.

Every backend validates the same way, so a name one store accepts is never refused by another.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from causalcast.registry.records import STAGES, JobKey, RegistryError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def check_name(value: str, what: str) -> str:
    """Names become references (``name:version``) and file-friendly labels."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise RegistryError(f"{what}: expected 1-200 characters from letters, digits and "
                            f"'._/+-' (starting with a letter or digit), got {value!r}")
    return value


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise RegistryError(f"stage: unknown stage {stage!r}; choose from {list(STAGES)}")
    return stage


def check_key(key: JobKey | Sequence[Any]) -> JobKey:
    try:
        symbol, model, fold = key
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"job key: expected (symbol, model, fold), got {key!r}") from exc
    if not isinstance(symbol, str) or not symbol:
        raise RegistryError(f"job key symbol: expected a non-empty string, got {symbol!r}")
    check_name(model, "job key model")
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 0:
        raise RegistryError(f"job key fold: expected an integer >= 0, got {fold!r}")
    return JobKey(symbol, model, fold)
