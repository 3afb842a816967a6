"""The models being served: loaded once, swapped atomically, never half-updated (invariant 7).

`ServingState` is an immutable snapshot: for each symbol, the promoted models that cover it,
each with its bundle and the scaled window ending at the latest bar (computed at load time over
the symbol's whole history, so no request pays for features). `ModelHub.state` is replaced by
one reference assignment; a request reads it once and uses that snapshot throughout, so a
promotion in flight can never give a request a mix of old and new models.

A watcher polls the registry's production versions and rebuilds the snapshot off the request
path when they change; `reload()` does the same on demand (admin endpoint).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from causalcast.data.quality import normalize_columns
from causalcast.models.bundle import TrainedModel
from causalcast.serving.batcher import MicroBatcher
from causalcast.serving.cache import LRUCache

log = logging.getLogger(__name__)
LEVELS = (0.8, 0.95)


class UnknownSymbol(KeyError):
    pass


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


@dataclass(frozen=True)
class ServingState:
    models: tuple[ServedModel, ...] = ()
    by_symbol: dict[str, tuple[ServedModel, ...]] = field(default_factory=dict)
    production_ids: frozenset[int] = frozenset()
    error: str | None = None

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


@dataclass(frozen=True)
class WindowJob:
    served: ServedModel
    window: np.ndarray


def _bars_per_year(index: pd.DatetimeIndex) -> float:
    if len(index) < 3:
        return 252.0
    spacing = float(np.median(np.diff(index.as_unit("ns").asi8))) / 86_400e9
    return 252.0 if spacing >= 0.5 else 252.0 * max(round(1.0 / spacing / 3.0), 1)


def _load_frames(source: str, symbols: Sequence[str]) -> dict[str, pd.DataFrame]:
    from causalcast.data.resolve import resolve_source

    frames, _ = resolve_source(source, list(symbols))
    return frames


def build_state(home: Path, data_source: str | None = None) -> ServingState:
    """Load every production version of the registry and precompute its latest windows."""
    from causalcast.registry import Registry

    registry = Registry.open(home, create=False)
    try:
        versions = registry.versions(stage="production")
        loaded: list[ServedModel] = []
        frames_cache: dict[tuple[str, tuple[str, ...]], dict[str, pd.DataFrame]] = {}
        for v in versions:
            bundle = TrainedModel.from_artifact(registry.load_artifact(v))
            symbols = tuple(bundle.meta.get("symbols") or ())
            source = data_source or bundle.meta.get("data")
            if not source or not symbols:
                log.warning("%s: no data source or symbols recorded; not served", v.ref)
                continue
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
            val_loss = float(v.metrics.get("val_loss", bundle.meta.get("val_loss", np.inf))
                             or np.inf)
            loaded.append(ServedModel(v.name, v.ref, v.version_id, bundle, val_loss, windows,
                                      as_of, closes, _bars_per_year(frames[symbols[0]].index)))
        by_symbol: dict[str, list[ServedModel]] = {}
        for served in loaded:
            for s in served.windows:
                by_symbol.setdefault(s.upper(), []).append(served)
        ordered = {s: tuple(sorted(m, key=lambda x: (x.val_loss, x.name)))
                   for s, m in by_symbol.items()}
        return ServingState(tuple(loaded), ordered, frozenset(v.version_id for v in versions))
    finally:
        registry.close()


def production_ids(home: Path) -> frozenset[int]:
    from causalcast.registry import Registry

    registry = Registry.open(home, create=False)
    try:
        return frozenset(v.version_id for v in registry.versions(stage="production"))
    finally:
        registry.close()


def _forward(jobs: Sequence[WindowJob]) -> list[dict[str, np.ndarray]]:
    """One forward pass per distinct bundle over all queued windows."""
    out: list[dict[str, np.ndarray] | None] = [None] * len(jobs)
    groups: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(id(job.served), []).append(i)
    for idx in groups.values():
        served = jobs[idx[0]].served
        batch = served.bundle.predict_windows(np.stack([jobs[i].window for i in idx]), LEVELS)
        for k, i in enumerate(idx):
            out[i] = {"mean": batch.mean[k], "scale": batch.scale[k],
                      "prob_up": batch.prob_up[k],
                      **{f"lower_{int(lv * 100)}": batch.lower[lv][k] for lv in LEVELS},
                      **{f"upper_{int(lv * 100)}": batch.upper[lv][k] for lv in LEVELS}}
    return out  # type: ignore[return-value]


class ModelHub:
    def __init__(self, home: Path, *, data_source: str | None = None, cache_items: int = 50_000,
                 max_batch: int = 256, metrics: Any = None):
        self.home = Path(home)
        self.data_source = data_source
        self.state = ServingState(error="not loaded yet")
        self.cache = LRUCache(cache_items)
        self.batcher: MicroBatcher[WindowJob, dict] = MicroBatcher(
            _forward, max_batch, "forward",
            on_batch=None if metrics is None else metrics.batch_size.observe)
        self.metrics = metrics
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.reloads = 0

    # ----- loading and swapping ---------------------------------------------------------------
    def reload(self) -> ServingState:
        """Build a new snapshot and swap it in; on failure keep serving the old one."""
        with self._reload_lock:
            try:
                new = build_state(self.home, self.data_source)
            except Exception as exc:  # keep the old state: a bad promotion must not take us down
                log.exception("reload failed; still serving the previous models")
                if not self.state.models:
                    self.state = ServingState(error=f"{type(exc).__name__}: {exc}")
                raise
            self.state = new          # the atomic swap
            self.reloads += 1
            self._publish(new)
            return new

    def _publish(self, state: ServingState) -> None:
        if self.metrics is None:
            return
        self.metrics.models.clear()
        for served in state.models:
            for symbol in served.windows:
                self.metrics.models.labels(symbol, served.name, served.version).set(1)

    def watch(self, interval_s: float) -> None:
        """Poll the registry; reload when the set of production versions changes."""
        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    if production_ids(self.home) != self.state.production_ids:
                        self.reload()
                except Exception:
                    log.debug("watcher: registry not readable this round", exc_info=True)
        self._watcher = threading.Thread(target=loop, name="registry-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        self.batcher.close()

    # ----- forecasting -------------------------------------------------------------------------
    async def forecast(self, symbol: str, bars: pd.DataFrame | None = None,
                       model: str | None = None, use_cache: bool = True) -> dict[str, Any]:
        state = self.state   # one snapshot for the whole request
        served = state.choose(symbol, model)
        key_symbol = symbol.upper()
        if bars is None:
            window = served.windows[key_symbol]
            as_of, last_close = served.as_of[key_symbol], served.last_close[key_symbol]
        else:
            bars = normalize_columns(bars, key_symbol)
            window = served.bundle.latest_window(key_symbol, bars)
            as_of, last_close = bars.index[-1].isoformat(), float(bars["close"].iloc[-1])
        key = (key_symbol, as_of, served.version, None if bars is None else
               hash(bars.to_numpy().tobytes()))
        cached = self.cache.get(key) if use_cache else None
        if cached is not None:
            if self.metrics is not None:
                self.metrics.cache_hits.inc()
            return {**cached, "cached": True}
        values = await self.batcher.submit(WindowJob(served, window))
        response = self._response(key_symbol, served, as_of, last_close, values)
        if use_cache:
            self.cache.put(key, response)
        return response

    @staticmethod
    def _response(symbol: str, served: ServedModel, as_of: str, last_close: float,
                  values: dict[str, np.ndarray]) -> dict[str, Any]:
        rows = []
        for j, h in enumerate(served.bundle.horizons):
            mean = float(values["mean"][j])
            rows.append({
                "horizon": int(h), "mean_log_return": mean,
                "expected_price": last_close * float(np.exp(mean)),
                "p_up": float(values["prob_up"][j]),
                "lower_80": float(values["lower_80"][j]), "upper_80": float(values["upper_80"][j]),
                "lower_95": float(values["lower_95"][j]), "upper_95": float(values["upper_95"][j]),
            })
        return {"symbol": symbol, "as_of": as_of, "last_close": last_close,
                "model": served.name, "model_versions": [served.version], "forecasts": rows,
                "cached": False}

    async def prob_above(self, symbol: str, spot: float, strike: float, tau: float,
                         horizon: int | None) -> dict[str, Any]:
        """Forecast-implied P(S_T > K): the forecast distribution of the log return over the
        horizon nearest to tau (in bars), applied to the given spot."""
        state = self.state
        served = state.choose(symbol)
        horizons = served.bundle.horizons
        if horizon is None:
            bars = tau * served.bars_per_year
            horizon = min(horizons, key=lambda h: abs(h - bars))
        if horizon not in horizons:
            raise ValueError(f"horizon: {horizon} not forecast by {served.name}; "
                             f"available {list(horizons)}")
        j = horizons.index(horizon)
        values = await self.batcher.submit(WindowJob(served, served.windows[symbol.upper()]))
        cfg = served.bundle.model.config
        z = (np.log(strike / spot) - float(values["mean"][j])) / float(values["scale"][j])
        cdf = special.ndtr(z) if cfg.likelihood == "gaussian" else special.stdtr(cfg.df, z)
        return {"forecast_implied": float(1.0 - cdf), "forecast_horizon": int(horizon),
                "model_versions": [served.version]}
