"""The service's monitoring poll: score what has matured, judge each served version, and
publish the verdicts (forecast responses, /v1/models, /readyz, Prometheus gauges).

Runs in its own daemon thread, never on the event loop; a failed pass is logged and the
previous verdicts stay (they are advisory: a degraded version keeps serving).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from causalcast.monitoring.drift import STATUSES

log = logging.getLogger(__name__)


def frame_loader(override: str | None = None, by_version: Mapping[int, str] | None = None):
    """``load_frames(version, symbols)`` for scoring: bars from ``override`` (the service's
    ``data_source``, `monitor --data`), else the data source the version was served from
    (``by_version``), else the one its lineage or job spec records."""
    def load(version: Any, symbols: Sequence[str]) -> Mapping[str, pd.DataFrame]:
        from causalcast.data.resolve import resolve_source

        data = (override or (by_version or {}).get(version.version_id)
                or (version.lineage.get("extra") or {}).get("data")
                or (version.config.get("job_spec") or {}).get("data"))
        if not data:
            raise ValueError(f"version {version.ref}: no data source recorded; pass --data")
        frames, _ = resolve_source(data, list(symbols))
        return frames
    return load


def monitor_pass(home: Any, data_source: str | None = None,
                 by_version: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
    """Score matured forecasts, then report every production version (one registry open)."""
    from causalcast.monitoring.scoring import score_pending
    from causalcast.monitoring.status import monitor_reports
    from causalcast.registry import Registry

    registry = Registry.open(home, create=False)
    try:
        load = frame_loader(data_source, by_version)
        score_pending(registry, load)
        return monitor_reports(registry, load)
    finally:
        registry.close()


class ServiceMonitor:
    """Polls every ``interval_s`` seconds and publishes into ``hub.monitor_reports`` and the
    ``causalcast_monitor_status`` gauge."""

    def __init__(self, hub: Any, interval_s: float, metrics: Any = None) -> None:
        self.hub = hub
        self.interval_s = interval_s
        self.gauge = None
        if metrics is not None:
            from prometheus_client import Gauge

            self.gauge = Gauge("causalcast_monitor_status",
                               "Live monitoring status of a served version (1 on the current "
                               "status's label)", ["version", "status"],
                               registry=metrics.registry)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[dict[str, Any]]:
        if self.hub.prediction_log is not None:
            self.hub.prediction_log.flush()
        sources = {m.version_id: m.bundle.meta.get("data") for m in self.hub.state.models}
        reports = monitor_pass(self.hub.home, self.hub.data_source, sources)
        self.hub.monitor_reports = {r["version_id"]: r for r in reports}   # one swap
        if self.gauge is not None:
            for r in reports:
                for status in (*STATUSES, "unknown"):
                    self.gauge.labels(r["version"], status).set(float(r["status"] == status))
        return reports

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.run_once()
                except Exception:
                    log.warning("monitoring pass failed; previous verdicts kept", exc_info=True)
        self._thread = threading.Thread(target=loop, name="monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
