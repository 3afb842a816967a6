"""The prediction log's writer: forecasts are queued by the request path and appended to the
registry's metadata store by one background thread, in batches.

Why a thread and batches: a SQLite commit with ``synchronous=FULL`` costs an fsync (~ms); one
per forecast would put disk latency on every request. `record_answer` only appends one tuple
(the answer, its version and the time) to an in-memory queue and returns; the writer wakes
every ``flush_ms`` or as soon as ``max_rows`` items wait, and appends what is queued (up to
8 x ``max_rows`` answers) in one transaction. What the writer does per answer is kept small
(`RowBuilder`): a served forecast is checked, JSON-encoded and written once per forecast
object, so a cache hit costs one tuple and one short answer row (`registry.prediction_rows`:
forecasts and the answers that served them).

Durability: `close` (called by the service's shutdown, which SIGTERM triggers) writes every
queued row before it returns, so SIGTERM loses nothing. SIGKILL (or a power cut) loses the
answers still queued and the batch being committed: while the writer keeps up, the answers
of the last ``flush_ms`` (or the last ``max_rows`` answers when more arrive in that time; 200
ms / 512 by default) plus at most one batch. A batch is committed whole or not at all; a
forecast the row checks refuse is logged and skipped alone (counted in `refused`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from causalcast.registry.prediction_rows import AnswerRows, ServedForecast
from causalcast.registry.records import NewPrediction, RegistryError
from causalcast.registry.urls import as_home

log = logging.getLogger(__name__)
RETRIES = 5   # attempts per batch before it is dropped (counted in `dropped`, logged)


_SECOND: tuple[float, str] = (math.nan, "")   # the last whole second formatted, and its text


def utc_iso(at: float | None = None) -> str:
    """ISO UTC time of ``at`` (seconds since the epoch; default now), to the microsecond,
    exactly as ``datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")`` (the
    same round-half-even of the fraction). Why not that call: the log's writer stamps
    thousands of answers a second, and formatting the whole second once per second instead of
    once per answer takes ~2 µs off each (`docs/monitoring.md`)."""
    at = time.time() if at is None else at
    frac, whole = math.modf(at)
    micro = round(frac * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:                       # before 1970: modf keeps the sign on both parts
        whole, micro = whole - 1, micro + 1_000_000
    global _SECOND
    second = _SECOND                      # one tuple, read and replaced whole: thread-safe
    if second[0] != whole:
        second = _SECOND = (whole, datetime.fromtimestamp(whole, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"))
    return f"{second[1]}.{micro:06d}+00:00"


class RowBuilder:
    """Turns queued items into one batch of checked log rows (`AnswerRows`), in the writer
    thread. A served answer's horizons are checked and encoded once per forecast object
    (`ServedForecast`, memoised by identity): a cache hit hands the writer the very list it
    saw before, so thousands of cached answers a second cost one tuple each, not a check and
    JSON encoding per horizon, and its forecast is written once. The memo holds the list
    itself, so an identity cannot be reused while it is remembered; answers are never mutated
    after `record_answer` (the writer reads them later either way)."""

    MEMO = 1024   # distinct forecasts remembered (cleared when full: cheap, bounded memory)

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Any, ServedForecast]] = {}

    def served(self, forecasts: Any, where: str) -> ServedForecast:
        entry = self._memo.get(id(forecasts))
        if entry is None or entry[0] is not forecasts:
            entry = (forecasts, ServedForecast(forecasts, where))
            if len(self._memo) >= self.MEMO:
                self._memo.clear()
            self._memo[id(forecasts)] = entry
        return entry[1]

    def forget(self) -> None:
        """Drop every remembered forecast (after a failed batch: the ids a forecast remembers
        may name rows of a database that is gone, so the retry writes them again)."""
        self._memo.clear()

    def batch(self, items: Sequence[Any]) -> tuple[AnswerRows, int]:
        """The rows of ``items`` and how many items were refused by the checks (each logged
        and skipped: a bad forecast must not take the good ones of its batch with it)."""
        rows = AnswerRows()
        refused, first = 0, ""
        for item in items:
            try:
                if isinstance(item, NewPrediction):
                    rows.add_prediction(item)
                    continue
                response, version_id, df, source, at = item
                symbol = response["symbol"]
                rows.add(self.served(response["forecasts"], f"answer {symbol!r}"),
                         version_id, symbol, response["as_of"], response["last_close"], df,
                         utc_iso(at), response.get("cached", False), source,
                         str(response.get("monitor_status", "")))
            except (RegistryError, KeyError, TypeError, ValueError) as exc:
                refused += 1
                first = first or str(exc)
        if refused:   # one line per batch, not one per forecast
            log.error("prediction log: %d forecast(s) refused and not logged; the first: %s",
                      refused, first)
        return rows, refused


class PredictionLog:
    """Batched, off-the-request-path appends to the prediction log of the registry at
    ``home``. Thread-safe; `record` never blocks on I/O."""

    def __init__(self, home: str | Path, *, flush_ms: float = 200.0, max_rows: int = 512,
                 max_queued: int = 1_000_000, source: str = "service") -> None:
        if flush_ms <= 0 or max_rows < 1 or max_queued < max_rows:
            raise ValueError(f"prediction log: need flush_ms > 0, max_rows >= 1 and "
                             f"max_queued >= max_rows; got {flush_ms}, {max_rows}, "
                             f"{max_queued}")
        self.home = as_home(home)   # a folder, or a postgresql:// URL
        self.source = source        # who answered: "service", "predict", "replay"
        self.flush_s = flush_ms / 1000.0
        self.max_rows = max_rows
        self.max_queued = max_queued
        # NewPrediction rows, or (answer, version_id, df, source, epoch seconds) tuples
        # (record_answer)
        self._queue: deque[Any] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._closing = False
        self._in_flight = 0
        self.written = 0          # answers written (one log row each, all its horizons)
        self.dropped = 0          # rows refused because the queue was full (disk stalled)
        self.failures = 0         # batches that could not be written (retried)
        self.refused = 0          # forecasts refused by the row checks (logged, not written)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ request side
    def record(self, rows: Sequence[NewPrediction]) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("prediction log: closed")
            room = self.max_queued - len(self._queue)
            if room < len(rows):
                self.dropped += len(rows) - max(room, 0)
                rows = rows[:max(room, 0)]
            self._queue.extend(rows)
            if len(self._queue) >= self.max_rows:
                self._cond.notify()

    def record_answer(self, response: dict[str, Any], version_id: int, df: float | None,
                      source: str | None = None) -> None:
        """The request path's entry: one tuple appended (the time stamped now, formatted
        later); the rows are built by the writer thread, so the request pays only for the
        append."""
        with self._cond:
            if self._closing:
                raise RuntimeError("prediction log: closed")
            if len(self._queue) >= self.max_queued:
                self.dropped += 1
                return
            self._queue.append((response, version_id, df, source or self.source,
                                time.time()))  # type: ignore[arg-type]
            if len(self._queue) >= self.max_rows:
                self._cond.notify()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every row recorded so far is written; False on timeout."""
        with self._cond:
            self._cond.notify()
            return self._cond.wait_for(lambda: not self._queue and not self._in_flight,
                                       timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        """Write everything queued, then stop the writer (the service's shutdown)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._queue:
            log.error("prediction log: %d rows could not be written before shutdown",
                      len(self._queue))

    # ------------------------------------------------------------------ writer side
    def _run(self) -> None:
        from causalcast.registry import Registry

        registry = None
        builder = RowBuilder()
        while True:
            with self._cond:
                if not self._closing and len(self._queue) < self.max_rows:
                    self._cond.wait(self.flush_s)
                if not self._queue:
                    self._cond.notify_all()
                    if self._closing:
                        break
                    continue
                if len(self._queue) <= self.max_rows * 8:
                    items, self._queue = self._queue, deque()
                else:
                    items = [self._queue.popleft() for _ in range(self.max_rows * 8)]
                self._in_flight = len(items)
            rows, refused = builder.batch(items)
            for attempt in range(1, RETRIES + 1):
                try:
                    if registry is None:
                        registry = Registry.open(self.home, create=False)
                    registry.meta.append_predictions(rows)
                    self.written += len(rows)
                    break
                except Exception:
                    self.failures += 1
                    give_up = attempt == RETRIES
                    log.exception("prediction log: a batch of %d rows could not be written "
                                  "(%s)", len(rows), "dropped" if give_up else "retried")
                    if give_up:
                        self.dropped += len(rows)
                    else:
                        with self._cond:
                            self._cond.wait(min(1.0, self.flush_s * 5))
                        builder.forget()
                        rows, _ = builder.batch(items)
            with self._cond:
                self.refused += refused
                self._in_flight = 0
                self._cond.notify_all()
        if registry is not None:
            registry.close()


def log_cli_forecasts(home: str | Path, artifact: bytes, df: float | None,
                      forecasts: Sequence[Any], closes: dict[str, float]) -> int:
    """`causalcast predict --log-home`: append a bundle's forecasts (`models.forecast.
    Forecast`) to the prediction log, under the registry version whose artifact is these
    exact bytes. Written at once (a CLI run is short): returns the answers added; raises
    ValueError when no version of that registry holds the bundle."""
    import hashlib

    from causalcast.registry import Registry

    digest = hashlib.sha256(artifact).hexdigest()
    registry = Registry.open(home, create=False)
    try:
        version = next((v for v in registry.versions() if v.artifact_sha256 == digest), None)
        if version is None:
            raise ValueError(f"--log-home {home}: no registered version has this bundle's "
                             f"artifact (sha256 {digest[:12]}...); register it first")
        now = utc_iso()
        rows = []
        for f in forecasts:
            for h in f.horizons:
                row = f.horizon(h)
                rows.append(NewPrediction(version.version_id, f.symbol, str(f.as_of), int(h),
                                          closes[f.symbol], float(row["mean"]),
                                          float(row["scale"]), df, row, now, False,
                                          "predict"))
        return registry.meta.append_predictions(rows)
    finally:
        registry.close()
