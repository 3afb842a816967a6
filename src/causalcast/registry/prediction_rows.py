"""What a prediction-log row is, whatever the database: the checks every appended answer
passes and the records read back. The SQLite and PostgreSQL halves of the log differ only in
SQL.

Schema migration 4 splits the log in two: a *forecast* (``served_forecasts``: the version,
symbol, as-of bar, last close, df and its horizons as one JSON array of ``{"horizon", "mean",
"scale", "forecast"}`` entries — the served row with its whole distribution) and an *answer*
(``served_answers``: which forecast, when, cached or not, who answered, the status), one per
answered request. Outcomes belong to (forecast, horizon): every answer of one forecast has the
same outcome. Why: the service answers thousands of cached requests a second, and a cache hit
is the same forecast again; the log must not slow those requests (issue 15). One row per
horizon with its JSON cost about 32 µs per 4-horizon answer; a cached answer now costs one
short row (the forecast was written when it was first served). Reading gives one
`PredictionRecord` per (answer, horizon), as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from causalcast.registry.records import NewPrediction, PredictionRecord, RegistryError

FORECAST_COLUMNS = ("version_id", "symbol", "as_of", "last_close", "df", "horizons_json",
                    "n_horizons")
ANSWER_COLUMNS = ("forecast_id", "requested_at", "cached", "source", "monitor_status")


def forecast_json(forecast: dict[str, Any], where: str) -> None:
    """Refuse a served row that is not a JSON object of finite numbers, naming its place
    (like `canonical_json` refuses a non-finite number)."""
    import orjson

    if not isinstance(forecast, dict):
        raise RegistryError(f"{where}.forecast: expected a dict, got {type(forecast).__name__}")
    for key, value in forecast.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise RegistryError(f"{where}.forecast.{key}: not a finite number ({value!r})")
    try:
        orjson.dumps(forecast)
    except TypeError as exc:
        raise RegistryError(f"{where}.forecast: not JSON ({exc})") from None


def checked_horizon(horizon: Any, mean: Any, scale: Any, forecast: dict[str, Any],
                    where: str) -> dict[str, Any]:
    """One horizon's entry of an answer — ``{"horizon", "mean", "scale", "forecast"}`` —
    checked."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise RegistryError(f"{where}.horizon: expected an integer >= 1, got {horizon!r}")
    for name, value in (("mean", mean), ("scale", scale)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RegistryError(f"{where}.{name}: expected a finite number, got {value!r}")
    if scale <= 0:
        raise RegistryError(f"{where}.scale: must be > 0, got {scale!r}")
    forecast_json(forecast, where)
    return {"horizon": horizon, "mean": float(mean), "scale": float(scale),
            "forecast": forecast}


def horizons_json(entries: Sequence[dict[str, Any]], where: str) -> str:
    """Sorted-key JSON of an answer's checked horizon entries (orjson: the writer formats
    thousands a second); two entries for one horizon are refused."""
    import orjson

    horizons = [e["horizon"] for e in entries]
    if len(set(horizons)) != len(horizons):
        raise RegistryError(f"{where}: horizon given twice in one answer ({horizons})")
    return orjson.dumps(list(entries), option=orjson.OPT_SORT_KEYS).decode()


def checked_request(symbol: Any, as_of: Any, last_close: Any, requested_at: Any,
                    where: str) -> float:
    """What the horizons of one answer share, checked; the last close."""
    if not isinstance(last_close, (int, float)) or not math.isfinite(last_close) \
            or last_close <= 0:
        raise RegistryError(f"{where}.last_close: expected a finite number > 0, got "
                            f"{last_close!r}")
    if not symbol or not as_of or not requested_at:
        raise RegistryError(f"{where}: symbol, as_of and requested_at must be non-empty")
    return float(last_close)


class ServedForecast:
    """The horizons of one served answer (``response["forecasts"]``), checked and encoded
    once. Why: a cached answer is the same forecast object again and again — the log's writer
    keeps this per forecast object, writes the forecast once and then logs each answer of it
    as one short row. ``stored`` is ((version, symbol, as-of, close, df), forecast_id) once a
    batch that wrote it has committed."""

    __slots__ = ("json", "n", "stored")

    def __init__(self, rows: Any, where: str) -> None:
        if not isinstance(rows, list) or not rows:
            raise RegistryError(f"{where}.forecasts: expected a non-empty list of rows")
        entries = [checked_horizon(row.get("horizon") if isinstance(row, dict) else None,
                                   row.get("mean_log_return") if isinstance(row, dict) else None,
                                   row.get("scale_log_return") if isinstance(row, dict) else None,
                                   row, f"{where}.forecasts[{j}]")
                   for j, row in enumerate(rows)]
        self.json = horizons_json(entries, f"{where}.forecasts")
        self.n = len(entries)
        self.stored: tuple[tuple[Any, ...], int] | None = None


class AnswerRows:
    """A batch for ``MetadataStore.append_predictions``: the forecasts not yet in the log
    (`forecast_rows`) and one answer per answered request (`answer_rows`); every row passed
    the checks when it was added, so the stores write it as it is.

    An answer refers to its forecast by a stored id, or by ``-(i + 1)`` for the i-th new
    forecast of this batch (resolved by `answer_rows` once the store has the new ids). Served
    answers come whole (`add`); a forecast already written (`ServedForecast.stored`) costs
    the answer row only. `NewPrediction` items (replay, the CLI, tests) are one horizon each:
    consecutive items of the same answer (same version, symbol, as-of bar, close, df, request
    time, cache flag, source and status) become one forecast and one answer."""

    __slots__ = (
        "_answers",
        "_entries",
        "_forecasts",
        "_given",
        "_key",
        "_pending",
        "_where",
    )

    def __init__(self) -> None:
        self._forecasts: list[tuple[Any, ...]] = []
        self._answers: list[tuple[Any, ...]] = []
        # (id(ServedForecast), forecast key) -> (it, its ref): forecasts new in this batch
        self._pending: dict[tuple[int, tuple[Any, ...]], tuple[ServedForecast, int]] = {}
        self._key: tuple[Any, ...] | None = None     # the open NewPrediction answer
        self._entries: list[dict[str, Any]] = []
        self._where = ""
        self._given = 0                              # NewPrediction items seen

    def __len__(self) -> int:
        self._close_answer()
        return len(self._answers)

    def forecast_rows(self) -> list[tuple[Any, ...]]:
        """The new forecasts, in `FORECAST_COLUMNS` order; the store inserts them in this
        order and hands their ids to `answer_rows` and `committed`."""
        self._close_answer()
        return self._forecasts

    def answer_rows(self, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """The answers in `ANSWER_COLUMNS` order, with ``ids`` the stored ids of
        `forecast_rows`."""
        self._close_answer()
        return [a if a[0] >= 0 else (ids[-a[0] - 1], *a[1:]) for a in self._answers]

    def committed(self, ids: Sequence[int]) -> None:
        """The batch is in the log: its served forecasts remember their ids, so their next
        answers are one short row each."""
        for (_, key), (served, ref) in self._pending.items():
            served.stored = (key, ids[-ref - 1])

    def _new_forecast(self, row: tuple[Any, ...]) -> int:
        self._forecasts.append(row)
        return -len(self._forecasts)

    def _close_answer(self) -> None:
        if self._key is not None:
            (version_id, symbol, as_of, close, df, at, cached, source, status) = self._key
            ref = self._new_forecast((version_id, symbol, as_of, close, df,
                                      horizons_json(self._entries, self._where),
                                      len(self._entries)))
            self._answers.append((ref, at, cached, source, status))
            self._key, self._entries = None, []

    def add_prediction(self, p: NewPrediction) -> None:
        """One horizon given as a `NewPrediction`, checked; joins the open answer when it
        belongs to it."""
        where = f"predictions[{self._given}]"
        self._given += 1
        if not isinstance(p, NewPrediction):
            raise RegistryError(f"{where}: expected a NewPrediction, got {type(p).__name__}")
        entry = checked_horizon(p.horizon, p.mean, p.scale, p.forecast, where)
        close = checked_request(p.symbol, p.as_of, p.last_close, p.requested_at, where)
        key = (p.version_id, p.symbol, p.as_of, close, None if p.df is None else float(p.df),
               p.requested_at, int(bool(p.cached)), p.source, p.monitor_status)
        if key != self._key or any(e["horizon"] == p.horizon for e in self._entries):
            self._close_answer()
            self._key, self._where = key, where
        self._entries.append(entry)

    def add(self, served: ServedForecast, version_id: int, symbol: str, as_of: str,
            last_close: float, df: float | None, requested_at: str, cached: bool,
            source: str, monitor_status: str) -> None:
        """One served answer, checked: an answer row, and its forecast when not yet written."""
        if not isinstance(served, ServedForecast):
            raise RegistryError(f"answer {symbol!r}: expected a ServedForecast, got "
                                f"{type(served).__name__}")
        key = forecast_key(version_id, symbol, as_of, last_close, df, requested_at,
                           f"answer {symbol!r}")
        self.add_prepared(served, key, requested_at, int(bool(cached)), source,
                          monitor_status)

    def add_prepared(self, served: ServedForecast, key: tuple[Any, ...], requested_at: str,
                     cached: int, source: str, monitor_status: str) -> None:
        """One served answer whose parts were already checked (`add`, or the log's request
        path, `monitoring.predlog.RowBuilder.prepare`); ``key`` is `forecast_key`'s."""
        self._close_answer()
        stored = served.stored
        if stored is not None and stored[0] == key:
            ref = stored[1]
        else:
            pending = self._pending.get((id(served), key))
            if pending is not None and pending[0] is served:
                ref = pending[1]
            else:
                ref = self._new_forecast((*key, served.json, served.n))
                self._pending[(id(served), key)] = (served, ref)
        self._answers.append((ref, requested_at, cached, source, monitor_status))


def forecast_key(version_id: int, symbol: Any, as_of: Any, last_close: Any,
                 df: float | None, requested_at: Any, where: str) -> tuple[Any, ...]:
    """(version_id, symbol, as_of, last close, df): what identifies a served forecast beside
    its horizons, checked (`checked_request`)."""
    close = checked_request(symbol, as_of, last_close, requested_at, where)
    return (version_id, symbol, as_of, close, None if df is None else float(df))


def answer_batch(predictions: Sequence[NewPrediction] | AnswerRows) -> AnswerRows:
    """A batch as `AnswerRows` (every row checked before any is written): `NewPrediction`
    items are checked here, `AnswerRows` were checked when built."""
    if isinstance(predictions, AnswerRows):
        return predictions
    rows = AnswerRows()
    for p in predictions:
        rows.add_prediction(p)
    return rows


def records_from_rows(rows: Iterable[Any], scored: bool | None) -> list[PredictionRecord]:
    """Records of answers joined with their forecasts and outcomes (`predictions_query`: one
    row per (answer, outcome), ordered by answer): one record per (answer, horizon), with its
    outcome where recorded, kept when it matches ``scored``. A forecast's horizons are parsed
    once however many answers it had; they are JSON text (SQLite) or already a list
    (PostgreSQL jsonb)."""
    import orjson

    out: list[PredictionRecord] = []
    parsed: dict[int, list[dict[str, Any]]] = {}
    answer: Any = None
    outcomes: dict[int, tuple[float, str]] = {}

    def emit() -> None:
        entries = parsed.get(answer["forecast_id"])
        if entries is None:
            entries = answer["horizons_json"]
            if isinstance(entries, str):
                entries = orjson.loads(entries)
            parsed[answer["forecast_id"]] = entries
        for e in entries:
            realised, outcome_as_of = outcomes.get(e["horizon"], (None, None))
            if scored is None or scored == (realised is not None):
                out.append(PredictionRecord(
                    version_id=answer["version_id"], symbol=answer["symbol"],
                    as_of=answer["as_of"], horizon=e["horizon"],
                    last_close=answer["last_close"], mean=e["mean"], scale=e["scale"],
                    df=answer["df"], forecast=e["forecast"],
                    requested_at=answer["requested_at"], cached=bool(answer["cached"]),
                    source=answer["source"], monitor_status=answer["monitor_status"],
                    answer_id=answer["answer_id"], forecast_id=answer["forecast_id"],
                    realised=realised, outcome_as_of=outcome_as_of))

    for r in rows:
        if answer is None or r["answer_id"] != answer["answer_id"]:
            if answer is not None:
                emit()
            answer, outcomes = r, {}
        if r["outcome_horizon"] is not None:
            outcomes[r["outcome_horizon"]] = (r["realised"], r["outcome_as_of"])
    if answer is not None:
        emit()
    return out


def checked_outcomes(outcomes: Any, recorded_at: str) -> list[tuple[int, int, float, str, str]]:
    """(forecast_id, horizon, realised, outcome_as_of, recorded_at) rows; a non-finite
    realised return or a horizon that is not an integer >= 1 is refused, naming its place."""
    rows = []
    for i, (forecast_id, horizon, realised, at) in enumerate(outcomes):
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise RegistryError(f"outcomes[{i}].horizon: expected an integer >= 1, got "
                                f"{horizon!r}")
        if not isinstance(realised, (int, float)) or not math.isfinite(realised):
            raise RegistryError(f"outcomes[{i}].realised: expected a finite number, got "
                                f"{realised!r}")
        rows.append((int(forecast_id), horizon, float(realised), str(at), recorded_at))
    return rows


def predictions_query(version_id: int | None, scored: bool | None, since: str | None,
                      placeholder: str) -> tuple[str, list[Any]]:
    """The one SELECT behind `MetadataStore.predictions`: answers (oldest first) with their
    forecast and its outcomes, one row per (answer, outcome), for `records_from_rows`; in the
    driver's ``placeholder`` style (``?`` SQLite, ``%s`` psycopg). The scored filter here
    keeps the forecasts that can hold a match; `records_from_rows` filters each horizon."""
    sql = ("SELECT f.*, a.answer_id, a.requested_at, a.cached, a.source, a.monitor_status, "
           "o.horizon AS outcome_horizon, o.realised, o.outcome_as_of FROM served_answers a "
           "JOIN served_forecasts f USING (forecast_id) "
           "LEFT JOIN forecast_outcomes o USING (forecast_id) WHERE 1 = 1")
    args: list[Any] = []
    if version_id is not None:
        sql += f" AND f.version_id = {placeholder}"
        args.append(version_id)
    if scored is True:
        sql += (" AND EXISTS (SELECT 1 FROM forecast_outcomes s WHERE s.forecast_id = "
                "f.forecast_id)")
    elif scored is False:
        sql += (" AND (SELECT count(*) FROM forecast_outcomes s WHERE s.forecast_id = "
                "f.forecast_id) < f.n_horizons")
    if since is not None:
        sql += f" AND a.requested_at >= {placeholder}"
        args.append(since)
    return sql + " ORDER BY a.answer_id, o.horizon", args
