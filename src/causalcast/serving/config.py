"""Service settings: where the registry lives, limits, authentication."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# /docs, /redoc and /openapi.json: open to anyone (the default: the schema holds no secrets
# and the service is meant for a private network), behind the API key, or not served at all.
DOCS_MODES = ("open", "key", "off")


@dataclass(frozen=True)
class ServeConfig:
    home: Path = Path(".causalcast")
    api_key: str | None = field(default_factory=lambda: os.environ.get("CAUSALCAST_API_KEY")
                                or None)
    max_body_bytes: int = 2 * 1024 * 1024
    cache_items: int = 50_000
    max_batch: int = 256              # windows per forward pass
    poll_seconds: float = 2.0         # how often the registry is checked for promotions
    data_source: str | None = None    # bars to forecast from; default: the registry's lineage
    store: str | None = None          # bars of symbols without a model; default: home/data
    docs: Literal["open", "key", "off"] = "open"
    # Monitoring (docs/monitoring.md): every answered forecast is appended to the registry's
    # prediction log by a background writer (flushed every log_flush_ms or log_batch_rows);
    # every monitor_seconds the service scores matured forecasts and judges each version
    # (0 = never; `causalcast monitor score` does the same from outside).
    prediction_log: bool = True
    log_flush_ms: float = 200.0
    log_batch_rows: int = 512
    monitor_seconds: float = 60.0
