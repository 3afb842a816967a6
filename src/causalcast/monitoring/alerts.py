"""The alert hook: a JSON event POSTed to a webhook URL and/or piped to a command's stdin.

Events (docs/monitoring.md): ``degraded`` (a version's live status became degraded),
``promoted`` (a retrain promoted a new version), ``refused`` (a retrain's candidate failed
the gates), ``rolled_back`` (a retrained version was worse live and was rolled back),
``failed`` (a retrain could not complete). Every event carries ``event``, ``at`` (UTC ISO),
``host``, ``name`` (the registry name) and event-specific fields (``version``, ``reasons``,
``gates``, ``error``...). Delivery never raises: a hook that fails is logged, because an
alert must not stop the retrain or the monitor that raised it.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from causalcast.monitoring.predlog import utc_iso

log = logging.getLogger(__name__)
EVENTS = ("degraded", "promoted", "refused", "rolled_back", "failed")


@dataclass(frozen=True)
class AlertHook:
    webhook: str | None = None       # http(s) URL; receives POST application/json
    command: str | None = None       # shell command; receives the JSON on stdin
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(f"--alert-webhook: expected an http(s) URL, got {self.webhook!r}")

    def __call__(self, event: str, **fields: Any) -> dict[str, Any]:
        if event not in EVENTS:
            raise ValueError(f"alert event: unknown {event!r}; choose from {list(EVENTS)}")
        payload = {"event": event, "at": utc_iso(), "host": socket.gethostname(), **fields}
        body = json.dumps(payload, default=str).encode()
        if self.webhook:
            try:
                req = urllib.request.Request(self.webhook, data=body, method="POST",
                                             headers={"content-type": "application/json"})
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    resp.read()
            except Exception:
                log.warning("alert webhook %s failed for %s", self.webhook, event,
                            exc_info=True)
        if self.command:
            try:
                subprocess.run(self.command, shell=True, input=body, timeout=self.timeout_s,
                               check=True, capture_output=True)
            except Exception:
                log.warning("alert command failed for %s", event, exc_info=True)
        return payload


Alert = Callable[..., Any]


def no_alert(event: str, **fields: Any) -> None:
    """The hook when none is configured."""
