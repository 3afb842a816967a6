"""The prediction log's writer: forecasts are queued by the request path and appended to the
registry's metadata store by one background thread, in batches.

Why a thread and batches: a SQLite commit with ``synchronous=FULL`` costs an fsync (~ms); one
per forecast would put disk latency on every request. `record_answer` prepares the answer's
row (`RowBuilder.prepare`: checked, time formatted, one tuple; a few µs, no I/O) and appends
it to an in-memory queue; the writer wakes every ``flush_ms`` or as soon as ``max_rows``
items wait, and appends what is queued (up to 8 x ``max_rows`` answers) in one transaction.
A served forecast is checked, JSON-encoded and written once per forecast object, so a cache
hit costs one tuple and one short answer row (`registry.prediction_rows`: forecasts and the
answers that served them).

Durability: `close` (called by the service's shutdown, which SIGTERM triggers) writes every
queued row before it returns, so SIGTERM loses nothing. SIGKILL (or a power cut) loses the
answers still queued and the batch being committed: while the writer keeps up, the answers
of the last ``flush_ms`` (or the last ``max_rows`` answers when more arrive in that time; 200
ms / 512 by default) plus at most one batch. A batch is committed whole or not at all; an
answer the row checks refuse is logged and not queued (counted in `refused`).
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

from causalcast.registry.prediction_rows import AnswerRows, ServedForecast, forecast_key
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


# A served answer ready for the log (`RowBuilder.prepare`): `AnswerRows.add_prepared`'s
# arguments (served forecast, its key, requested_at, cached, source, status). A plain tuple:
# the request path builds one per answer, and a named tuple costs ten times as much to make.
AnswerParts = tuple


class RowBuilder:
    """Turns served answers into checked log rows (`AnswerRows`). A served answer's horizons
    are checked and encoded once per forecast object (`ServedForecast`, memoised by identity):
    a cache hit hands the log the very list it saw before, so thousands of cached answers a
    second cost one tuple each, not a check and JSON encoding per horizon, and its forecast is
    written once. The memo holds the list itself, so an identity cannot be reused while it is
    remembered; answers are never mutated after `PredictionLog.record_answer`.

    Two halves, for two threads: `prepare` runs on the request path (the answer checked, its
    time formatted, everything the row needs in one tuple), `batch` in the writer (the tuples
    into one batch). Why the request path does the work: the writer shares the GIL with the
    event loop, and work it does in a burst for 512 answers at once stalls every request in
    flight for that long (the tail of the latency), while the same microseconds spread over
    the requests that caused them cost only their share of throughput
    (`docs/monitoring.md`)."""

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

    def prepare(self, response: dict[str, Any], version_id: int, df: float | None,
                source: str, at: float) -> AnswerParts:
        """One served answer as its row's parts, checked; raises `RegistryError` (or
        KeyError/TypeError/ValueError for a malformed answer) naming the field."""
        symbol = response["symbol"]
        where = f"answer {symbol!r}"
        served = self.served(response["forecasts"], where)
        requested_at = utc_iso(at)
        key = forecast_key(version_id, symbol, response["as_of"], response["last_close"], df,
                           requested_at, where)
        return (served, key, requested_at, int(bool(response.get("cached", False))), source,
                str(response.get("monitor_status", "")))

    def batch(self, items: Sequence[Any]) -> tuple[AnswerRows, int]:
        """The rows of ``items`` (`AnswerParts` answers or `NewPrediction` rows) and how many
        were refused by the checks (each skipped: a bad row must not take the good ones of its
        batch with it; one log line per batch)."""
        rows = AnswerRows()
        refused, first = 0, ""
        for item in items:
            if type(item) is tuple:
                rows.add_prepared(*item)
                continue
            try:
                rows.add_prediction(item)
            except RegistryError as exc:
                refused += 1
                first = first or str(exc)
        if refused:
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
        # NewPrediction rows, or AnswerParts of served answers (record_answer)
        self._queue: deque[Any] = deque()
        self._builder = RowBuilder()
        self._cond = threading.Condition(threading.Lock())
        self._closing = False
        self._in_flight = 0
        self.written = 0          # answers written (one log row each, all its horizons)
        self.dropped = 0          # rows refused because the queue was full (disk stalled)
        self.failures = 0         # batches that could not be written (retried)
        self.refused = 0          # answers refused by the row checks (logged, not written)
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
        """The request path's entry: the answer checked and turned into its row's parts
        (`RowBuilder.prepare`, a few µs, no I/O) and queued for the writer. An answer the
        checks refuse is counted in `refused` and logged (the first, then every 1000th); the
        request is answered either way."""
        try:
            item = self._builder.prepare(response, version_id, df, source or self.source,
                                         time.time())
        except (RegistryError, KeyError, TypeError, ValueError) as exc:
            with self._cond:
                self.refused += 1
                count = self.refused
            if count % 1000 == 1:
                log.error("prediction log: forecast refused and not logged (%d so far): %s",
                          count, exc)
            return
        # No lock on this path: deque.append is atomic, and only the writer takes items out
        # (popleft, never replacing the deque). The service stops taking requests before it
        # closes the log, so no answer arrives after the writer's last drain.
        if self._closing:
            raise RuntimeError("prediction log: closed")
        queue = self._queue
        if len(queue) >= self.max_queued:
            with self._cond:
                self.dropped += 1
            return
        queue.append(item)
        if len(queue) == self.max_rows:   # wake the writer once per batch, not per answer
            with self._cond:              # (should two threads skip this exact length, the
                self._cond.notify()       # writer still wakes within flush_ms)

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
        builder = self._builder
        while True:
            with self._cond:
                if not self._closing and len(self._queue) < self.max_rows:
                    self._cond.wait(self.flush_s)
                if not self._queue:
                    self._cond.notify_all()
                    if self._closing:
                        break
                    continue
                take = min(len(self._queue), self.max_rows * 8)
                self._in_flight = take
            pop = self._queue.popleft        # record_answer appends without the lock
            items = [pop() for _ in range(take)]
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
                        # the ids its forecasts remember may name rows of a database that
                        # is gone: written again, from the same items
                        for item in items:
                            if type(item) is tuple:
                                item[0].stored = None
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
