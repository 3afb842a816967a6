"""Loading the registry's production versions, one version at a time.

Why per version: one damaged artifact must not freeze the service on stale models, nor stop
the other models from being served. `build_state` loads every production version it can;
a version that cannot be loaded is left out and reported as a `VersionProblem`, and because
only *current* production versions are ever loaded, a version that was archived or replaced
is never served again, even when its replacement failed (that name is then not served).

Problem reasons are public: `/readyz` shows them to unauthenticated callers, so they say
which stage failed in fixed words and never carry file paths or exception text (the server
log has the details).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from causalcast.models.bundle import POOLED, TrainedModel
from causalcast.serving.evidence import version_evidence

log = logging.getLogger(__name__)

# What a caller may learn about why a version is not served, per loading stage.
REASONS = {
    "artifact": "artifact missing or damaged (failed its integrity check)",
    "model": "artifact is not a loadable model",
    "data": "the bars for its symbols could not be loaded",
    "metadata": "no data source or symbols recorded with the model",
    "evidence": "its evaluation records could not be read",
}
STALE_REASON = ("registry could not be read at the last check; this version may have been "
                "replaced since")


class UnknownSymbol(KeyError):
    pass


@dataclass(frozen=True)
class VersionProblem:
    """A production version the service does not serve (failed) or cannot vouch for (stale)."""

    version: str                              # registry ref "name:version"
    name: str
    status: Literal["failed", "stale"]
    reason: str                               # public wording, see REASONS

    def as_dict(self) -> dict[str, str]:
        return {"version": self.version, "name": self.name, "status": self.status,
                "reason": self.reason}


@dataclass(frozen=True)
class ServedModel:
    """One promoted bundle and what the service precomputed for it."""

    name: str                 # registry name, e.g. "lstm-global"
    version: str              # registry ref "name:version"
    version_id: int
    bundle: TrainedModel
    val_loss: float           # lower is better: picks the default model for a symbol
    windows: dict[str, np.ndarray] = field(default_factory=dict)   # symbol -> (L, F)
    as_of: dict[str, str] = field(default_factory=dict)            # symbol -> last bar
    last_close: dict[str, float] = field(default_factory=dict)
    bars_per_year: float = 252.0
    scope: Literal["global", "symbol"] = "symbol"     # global: trained across symbols
    evidence: dict[str, Any] = field(default_factory=dict)   # serving.evidence, per version
    warnings: tuple[str, ...] = ()                   # travel with every forecast it answers

    @property
    def serves_unseen(self) -> bool:
        """A global model with the pooled scaler can forecast a symbol it never saw."""
        return self.scope == "global" and POOLED in self.bundle.scalers


@dataclass(frozen=True)
class ServingState:
    """An immutable snapshot of what is served; replaced whole, never edited in place."""

    models: tuple[ServedModel, ...] = ()
    by_symbol: dict[str, tuple[ServedModel, ...]] = field(default_factory=dict)
    production_ids: frozenset[int] = frozenset()
    problems: tuple[VersionProblem, ...] = ()
    error: str | None = None                  # public: why nothing could be read at all

    @property
    def degraded(self) -> bool:
        return bool(self.problems) or self.error is not None

    def choose_global(self, symbol: str, model: str | None = None) -> ServedModel:
        """The production global model (best validation loss first) for a symbol that no
        model was trained on; `UnknownSymbol` when none can serve it."""
        for served in sorted((m for m in self.models if m.serves_unseen),
                             key=lambda x: (x.val_loss, x.name)):
            if model is None or model in (served.name, served.version, served.bundle.name):
                return served
        raise UnknownSymbol(symbol if model is None else f"{symbol} with model {model!r}")

    def choose(self, symbol: str, model: str | None = None) -> ServedModel:
        candidates = self.by_symbol.get(symbol.upper())
        if not candidates:
            raise UnknownSymbol(symbol)
        if model is None:
            return candidates[0]
        for served in candidates:
            if model in (served.name, served.version, served.bundle.name):
                return served
        raise UnknownSymbol(f"{symbol} with model {model!r}")


def _bars_per_year(index: pd.DatetimeIndex) -> float:
    if len(index) < 3:
        return 252.0
    spacing = float(np.median(np.diff(index.as_unit("ns").asi8))) / 86_400e9
    return 252.0 if spacing >= 0.5 else 252.0 * max(round(1.0 / spacing / 3.0), 1)


def _load_frames(source: str, symbols: Sequence[str]) -> dict[str, pd.DataFrame]:
    from causalcast.data.resolve import resolve_source

    frames, _ = resolve_source(source, list(symbols))
    return frames


class _Failed(Exception):
    def __init__(self, stage: str):
        super().__init__(stage)
        self.stage = stage


def _load_version(registry, version, data_source: str | None,
                  frames_cache: dict[tuple[str, tuple[str, ...]], dict[str, pd.DataFrame]]
                  ) -> ServedModel:
    """One version, or `_Failed` naming the stage that could not be done."""
    try:
        data = registry.load_artifact(version)
    except Exception as exc:
        raise _Failed("artifact") from exc
    try:
        bundle = TrainedModel.from_artifact(data)
    except Exception as exc:
        raise _Failed("model") from exc
    symbols = tuple(bundle.meta.get("symbols") or ())
    source = data_source or bundle.meta.get("data")
    if not source or not symbols:
        raise _Failed("metadata")
    try:
        key = (source, symbols)
        if key not in frames_cache:
            frames_cache[key] = _load_frames(source, symbols)
        frames = frames_cache[key]
        windows, as_of, closes = {}, {}, {}
        for s in symbols:
            frame = frames[s]
            windows[s] = bundle.latest_window(s, frame)
            as_of[s] = frame.index[-1].isoformat()
            closes[s] = float(frame["close"].iloc[-1])
    except Exception as exc:
        raise _Failed("data") from exc
    val_loss = float(version.metrics.get("val_loss", bundle.meta.get("val_loss", np.inf))
                     or np.inf)
    try:
        evidence, warnings = version_evidence(registry, version)
    except Exception as exc:
        raise _Failed("evidence") from exc
    extra = (version.lineage or {}).get("extra") or {}
    scope = "global" if extra.get("scope") == "global" or len(symbols) > 1 else "symbol"
    return ServedModel(version.name, version.ref, version.version_id, bundle, val_loss, windows,
                       as_of, closes, _bars_per_year(frames[symbols[0]].index), scope,
                       evidence, warnings)


def build_state(home: Path, data_source: str | None = None) -> ServingState:
    """Every production version that loads, and a problem for each one that does not.

    Raises only when the registry itself cannot be read (the caller then keeps what it
    serves and marks it stale)."""
    from causalcast.registry import Registry

    registry = Registry.open(home, create=False)
    try:
        versions = registry.versions(stage="production")
        loaded: list[ServedModel] = []
        problems: list[VersionProblem] = []
        frames_cache: dict[tuple[str, tuple[str, ...]], dict[str, pd.DataFrame]] = {}
        for v in versions:
            try:
                loaded.append(_load_version(registry, v, data_source, frames_cache))
            except _Failed as failed:
                log.error("%s not served: %s", v.ref, REASONS[failed.stage],
                          exc_info=failed.__cause__)
                problems.append(VersionProblem(v.ref, v.name, "failed", REASONS[failed.stage]))
    finally:
        registry.close()
    by_symbol: dict[str, list[ServedModel]] = {}
    for served in loaded:
        for s in served.windows:
            by_symbol.setdefault(s.upper(), []).append(served)
    ordered = {s: tuple(sorted(m, key=lambda x: (x.val_loss, x.name)))
               for s, m in by_symbol.items()}
    return ServingState(tuple(loaded), ordered, frozenset(v.version_id for v in versions),
                        tuple(problems))


def production_ids(home: Path) -> frozenset[int]:
    from causalcast.registry import Registry

    registry = Registry.open(home, create=False)
    try:
        return frozenset(v.version_id for v in registry.versions(stage="production"))
    finally:
        registry.close()


def stale(state: ServingState) -> ServingState:
    """The same models, each flagged stale: the registry could not be read to confirm them."""
    failed = tuple(p for p in state.problems if p.status == "failed")
    flagged = tuple(VersionProblem(m.version, m.name, "stale", STALE_REASON)
                    for m in state.models)
    error = None if state.models else "registry could not be read"
    return ServingState(state.models, state.by_symbol, state.production_ids, failed + flagged,
                        error)
