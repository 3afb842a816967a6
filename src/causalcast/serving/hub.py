"""The models being served: loaded once, swapped atomically, never half-updated (invariant 7).

`ServingState` is an immutable snapshot: for each symbol, the promoted models that cover it,
each with its bundle and the scaled window ending at the latest bar (computed at load time over
the symbol's whole history, so no request pays for features). `ModelHub.state` is replaced by
one reference assignment; a request reads it once and uses that snapshot throughout, so a
promotion in flight can never give a request a mix of old and new models.

A watcher polls the registry's production versions (a PostgreSQL registry also wakes it on each
committed stage change, by LISTEN/NOTIFY) and rebuilds the snapshot off the request path when
they change; `reload()` does the same on demand (admin endpoint).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from causalcast.data.quality import normalize_columns
from causalcast.models.forecast import price_median_and_mean
from causalcast.registry.networked import stage_listener
from causalcast.registry.urls import as_home
from causalcast.serving.batcher import MicroBatcher
from causalcast.serving.cache import LRUCache
from causalcast.serving.loading import (
    ServedModel,
    ServingState,
    UnknownSymbol,
    build_state,
    production_ids,
    stale,
)

log = logging.getLogger(__name__)
LEVELS = (0.8, 0.95)


@dataclass(frozen=True)
class WindowJob:
    served: ServedModel
    window: np.ndarray


@dataclass(frozen=True)
class Prepared:
    """A forecast request resolved to a model and a window, ready for the forward pass."""

    symbol: str
    served: ServedModel
    window: np.ndarray
    as_of: str
    last_close: float
    key: tuple
    unseen: bool = False      # answered by a global model that never trained on the symbol


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


def serving_store(home: Any, store: str | Path | None) -> str | None:
    """The service's market data store (bars and option chains): the configured store, else
    the default store under the service's home. A database home has no folder of its own:
    only a configured store is read then (None)."""
    if store is not None:
        return str(store)
    home = as_home(home)
    return str(home / "data") if isinstance(home, Path) else None


class ModelHub:
    def __init__(self, home: Path | str, *, data_source: str | None = None,
                 cache_items: int = 50_000, max_batch: int = 256, metrics: Any = None,
                 store: str | Path | None = None, prediction_log: Any = None):
        self.home = as_home(home)  # a folder, or a postgresql:// URL
        self.data_source = data_source
        # Where bars of symbols without a model of their own are looked up (see serving_store).
        self.store: str | None = serving_store(self.home, store)
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
        # Monitoring (causalcast.monitoring): where answered forecasts are logged, and each
        # version's latest report (version_id -> report), whose status ("ok" | "watch" |
        # "degraded") every forecast of that version carries.
        self.prediction_log = prediction_log
        self.monitor_reports: dict[int, dict[str, Any]] = {}

    # ----- loading and swapping ---------------------------------------------------------------
    def reload(self) -> ServingState:
        """Build a new snapshot from the registry's production versions and swap it in.

        Per version: one that cannot be loaded is left out and reported in the new state's
        problems; the others are served. Only when the registry itself cannot be read does the
        old snapshot stay, flagged stale, and the error propagates."""
        with self._reload_lock:
            try:
                new = build_state(self.home, self.data_source)
            except Exception:
                log.exception("registry could not be read; the versions served are now stale")
                self.state = stale(self.state)
                raise
            self.state = new          # the atomic swap
            # Cached answers carry their version's evidence and warnings, which a reload may
            # have re-read (an evaluation attached since): nothing older is answered.
            self.cache.clear()
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
        """Poll the registry; reload when the set of production versions changes (or when the
        registry is readable again after the served versions were flagged stale). A database
        registry also announces each committed stage change (LISTEN/NOTIFY): the watcher
        checks at once then, with ``interval_s`` still the upper bound (SQLite: polling only).
        """
        listener = stage_listener(self.home)

        def pause() -> bool:
            """Wait for the next check; False when the hub is closing."""
            if listener is None:
                return not self._stop.wait(interval_s)
            listener.wait(interval_s)
            return not self._stop.is_set()

        def loop() -> None:
            while pause():
                self._check()
            if listener is not None:
                listener.close()

        self._watcher = threading.Thread(target=loop, name="registry-watch", daemon=True)
        self._watcher.start()

    def _check(self) -> None:
        """One watcher check: reload when the production set changed or the served versions
        are stale; flag them stale when the registry cannot be read."""
        try:
            current = production_ids(self.home)
        except Exception:
            log.warning("watcher: registry not readable", exc_info=True)
            with self._reload_lock:
                if not any(p.status == "stale" for p in self.state.problems):
                    self.state = stale(self.state)
            return
        state = self.state
        if current != state.production_ids or any(p.status == "stale" for p in state.problems):
            with contextlib.suppress(Exception):   # logged; the state says stale
                self.reload()

    def close(self) -> None:
        self._stop.set()
        self.batcher.close()
        if self.prediction_log is not None:
            self.prediction_log.close()   # writes every queued forecast (SIGTERM loses none)

    # ----- forecasting -------------------------------------------------------------------------
    def prepare(self, symbol: str, bars: pd.DataFrame | None = None,
                model: str | None = None) -> Prepared:
        """Everything a forecast needs before the forward pass: the model (from one snapshot)
        and the window. With request bars this computes features — CPU work that the routes
        run off the event loop."""
        state = self.state                          # one snapshot for the whole request
        key_symbol = symbol.upper()
        unseen = False
        try:
            served = state.choose(symbol, model)
        except UnknownSymbol:
            served = state.choose_global(symbol, model)
            unseen = key_symbol not in served.bundle.scalers
            if bars is None:
                bars = self.store_bars(key_symbol)
        if bars is None:
            window = served.windows[key_symbol]
            as_of, last_close = served.as_of[key_symbol], served.last_close[key_symbol]
        else:
            bars = normalize_columns(bars, key_symbol)
            window = served.bundle.latest_window(key_symbol, bars, served_as=served.version,
                                                 normalized=True)
            as_of, last_close = bars.index[-1].isoformat(), float(bars["close"].iloc[-1])
        key = (key_symbol, as_of, served.version, None if bars is None else
               hash(bars.to_numpy().tobytes()))
        return Prepared(key_symbol, served, window, as_of, last_close, key, unseen)

    def store_bars(self, symbol: str) -> pd.DataFrame:
        """The symbol's daily bars from the service's store; `UnknownSymbol` when the store
        does not exist or does not hold the symbol."""
        from causalcast.store.frames import load_frames

        if self.store is None:
            raise UnknownSymbol(symbol)
        try:
            return load_frames(self.store, [symbol])[symbol]
        except (KeyError, ValueError) as exc:   # not stored, or no store there at all
            log.info("%s: not answered from the store %s (%s)", symbol, self.store, exc)
            raise UnknownSymbol(symbol) from exc

    async def answer(self, prepared: Prepared, use_cache: bool = True) -> dict[str, Any]:
        """The forecast of a prepared request: from the cache, or one micro-batched pass."""
        cached = self.cache.get(prepared.key) if use_cache else None
        if cached is not None:
            if self.metrics is not None:
                self.metrics.cache_hits.inc()
            response = {**cached, "cached": True}
        else:
            values = await self.batcher.submit(WindowJob(prepared.served, prepared.window))
            response = self._response(prepared, values)
            if use_cache:
                self.cache.put(prepared.key, response)
        return self._answered(prepared, response)

    def _answered(self, prepared: Prepared, response: dict[str, Any]) -> dict[str, Any]:
        """Stamp the version's monitoring status on the answer and queue it for the
        prediction log (no I/O here: the log's writer thread does that)."""
        served = prepared.served
        report = self.monitor_reports.get(served.version_id)
        response = {**response,
                    "monitor_status": "unknown" if report is None else report["status"]}
        if self.prediction_log is not None:
            cfg = served.bundle.model.config
            self.prediction_log.record_answer(
                response, served.version_id,
                None if cfg.likelihood == "gaussian" else float(cfg.df))
        return response

    async def forecast(self, symbol: str, bars: pd.DataFrame | None = None,
                       model: str | None = None, use_cache: bool = True) -> dict[str, Any]:
        return await self.answer(self.prepare(symbol, bars, model), use_cache)

    @staticmethod
    def _response(prepared: Prepared, values: dict[str, np.ndarray]) -> dict[str, Any]:
        served, last_close = prepared.served, prepared.last_close
        median, mean = price_median_and_mean(last_close, values["mean"], values["scale"],
                                             served.bundle.model.config.likelihood)
        rows = []
        for j, h in enumerate(served.bundle.horizons):
            rows.append({
                "horizon": int(h), "mean_log_return": float(values["mean"][j]),
                "median_price": float(median[j]),
                "mean_price": None if mean is None else float(mean[j]),
                "scale_log_return": float(values["scale"][j]),
                "p_up": float(values["prob_up"][j]),
                "lower_80": float(values["lower_80"][j]), "upper_80": float(values["upper_80"][j]),
                "lower_95": float(values["lower_95"][j]), "upper_95": float(values["upper_95"][j]),
            })
        return {"symbol": prepared.symbol, "as_of": prepared.as_of, "last_close": last_close,
                "model": served.name, "model_versions": [served.version], "forecasts": rows,
                "model_scope": served.scope, "unseen_symbol": prepared.unseen,
                "evidence": served.evidence,
                "warnings": list(served.warnings) + ([
                    f"{prepared.symbol}: not in the model's training symbols; its evidence was "
                    f"measured on the symbols it was evaluated on, not on {prepared.symbol}"]
                    if prepared.unseen else []),
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
