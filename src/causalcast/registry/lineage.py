"""What produced a model (invariant 8): data fingerprint, feature and split settings, code version.

`fingerprint_frames` is the one definition of "the same data": training code calls it on the
OHLCV frames it used and stores the result with the model, so two versions trained on identical
bars carry the same fingerprint whatever order the symbols were loaded in or whether volume was
read as int or float.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where frames are hashed: `registry` commands stay light
    import pandas as pd

from causalcast.registry.records import RegistryError

_HEX64 = re.compile(r"[0-9a-f]{64}")


def fingerprint_frames(frames: Mapping[str, pd.DataFrame]) -> str:
    """SHA-256 over symbols, columns, timestamps and values of the OHLCV frames used.

    Symbols and columns are taken in sorted order; timestamps as int64 nanoseconds (UTC when
    tz-aware); values as float64. Any changed bar, added/removed bar, column or symbol changes
    the fingerprint; reordering does not."""
    import numpy as np
    import pandas as pd

    if not frames:
        raise RegistryError("fingerprint_frames: no frames given")
    digest = hashlib.sha256(b"causalcast-ohlcv-v1\0")
    for symbol in sorted(frames):
        frame = frames[symbol]
        if not isinstance(frame, pd.DataFrame):
            raise RegistryError(f"fingerprint_frames[{symbol!r}]: expected a DataFrame, got "
                                f"{type(frame).__name__}")
        columns = sorted(str(c) for c in frame.columns)
        digest.update(json.dumps([symbol, columns, len(frame)]).encode())
        index = frame.index
        if isinstance(index, pd.DatetimeIndex):
            if index.tz is not None:
                index = index.tz_convert("UTC").tz_localize(None)
            digest.update(np.ascontiguousarray(index.as_unit("ns").asi8).tobytes())
        else:
            digest.update("\0".join(map(str, index)).encode())
        renamed = frame.rename(columns=str)
        for column in columns:
            try:
                values = renamed[column].to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise RegistryError(f"fingerprint_frames[{symbol!r}]: column {column!r} is "
                                    f"not numeric ({exc})") from exc
            digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def fingerprint_json(obj: Any) -> str:
    """SHA-256 of the canonical JSON of a configuration (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical_json(obj, "config").encode()).hexdigest()


def canonical_json(obj: Any, what: str, *, allow_nonfinite: bool = False) -> str:
    """JSON text for the database; refuses NaN/Inf (they are not JSON) and non-JSON types,
    naming the offending field, unless ``allow_nonfinite`` maps them to null."""
    if allow_nonfinite:
        obj = nonfinite_to_none(obj)
    else:
        _check_finite(obj, what)
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{what}: not JSON-serialisable ({exc})") from exc


def _check_finite(obj: Any, path: str) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise RegistryError(f"{path}: {obj} is not a finite number")
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            _check_finite(value, f"{path}[{key!r}]")
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            _check_finite(value, f"{path}[{i}]")


def nonfinite_to_none(obj: Any) -> Any:
    """NaN/Inf are not JSON: the same structure with them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: nonfinite_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [nonfinite_to_none(v) for v in obj]
    return obj


@functools.lru_cache(maxsize=1)
def _git_state() -> tuple[str | None, bool | None]:
    folder = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=folder, capture_output=True, text=True, timeout=5,
                               check=True).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return None, None  # installed from a wheel, or git missing: the package version remains
    return commit or None, dirty


def code_version() -> dict[str, Any]:
    """Package version, plus the git commit (and whether the tree was dirty) when available."""
    from causalcast import __version__

    commit, dirty = _git_state()
    return {"package": __version__, "git_commit": commit, "git_dirty": dirty}


@dataclass(frozen=True)
class Lineage:
    """Provenance of one model version; the runner fills it in for every job.

    ``feature_config`` and ``split_config`` are plain dicts (e.g.
    ``settings.features.model_dump(mode="json")``); ``code`` defaults to `code_version()`.
    ``symbol``/``model``/``fold``/``seed`` and ``extra`` are kept verbatim for reports."""

    data_fingerprint: str
    feature_config: dict[str, Any]
    split_config: dict[str, Any]
    code: dict[str, Any] = field(default_factory=code_version)
    symbol: str | None = None
    model: str | None = None
    fold: int | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.data_fingerprint, str) or not _HEX64.fullmatch(
                self.data_fingerprint):
            raise RegistryError(f"lineage.data_fingerprint: expected a 64-hex SHA-256 (see "
                                f"fingerprint_frames), got {self.data_fingerprint!r}")
        for name in ("feature_config", "split_config", "code", "extra"):
            if not isinstance(getattr(self, name), Mapping):
                raise RegistryError(f"lineage.{name}: expected a dict, got "
                                    f"{type(getattr(self, name)).__name__}")

    @classmethod
    def from_settings(cls, settings: Any, frames: Mapping[str, pd.DataFrame], **kwargs: Any
                      ) -> Lineage:
        """Lineage from a `causalcast.config.Settings` and the frames used for training."""
        return cls(data_fingerprint=fingerprint_frames(frames),
                   feature_config=settings.features.model_dump(mode="json"),
                   split_config=settings.split.model_dump(mode="json"),
                   seed=kwargs.pop("seed", settings.seed), **kwargs)

    def details(self) -> dict[str, Any]:
        """The fields not stored in their own columns."""
        out = asdict(self)
        for name in ("data_fingerprint", "feature_config", "split_config", "code"):
            out.pop(name)
        return out
