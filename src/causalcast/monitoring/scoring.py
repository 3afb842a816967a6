"""Scoring logged forecasts once their outcome bars have arrived.

A forecast made at bar ``as_of`` for ``h`` bars ahead matures when the store holds the bar
``h`` bars after ``as_of``; its realised outcome is the log return between the two closes,
exactly the walk-forward target ``y_h`` (`docs/evaluation.md`), so live and walk-forward
figures measure the same thing. Only outcomes are stored; every score is recomputed from
(forecast, outcome) by `causalcast.evaluation` (`forecast_metrics`, `trade_forecasts`): there
is one scorer for walk-forward, report and live.

Duplicates: the same version asked about the same (symbol, as_of, horizon) many times (cache
hits, retries) gives one forecast, counted once in live metrics (the first logged).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from causalcast.evaluation import binomial_test, forecast_metrics
from causalcast.evaluation.portfolio import trade_forecasts
from causalcast.evaluation.scores import called
from causalcast.registry.records import PredictionRecord

# (version, symbols) -> bars of those symbols (`service_loop.frame_loader`)
FrameLoader = Callable[[Any, Sequence[str]], Mapping[str, pd.DataFrame]]


def bar_time(iso: str) -> pd.Timestamp:
    """An as-of string as the store's (tz-naive) index spells it."""
    ts = pd.Timestamp(iso)
    return ts.tz_convert(None) if ts.tzinfo is not None else ts


def realised_outcomes(predictions: Sequence[PredictionRecord],
                      frames: Mapping[str, pd.DataFrame]
                      ) -> list[tuple[int, int, float, str]]:
    """(forecast_id, horizon, realised log return, outcome bar) of each matured forecast
    (once, however many answers served it): the as-of bar is in the frame and so is the bar
    ``horizon`` bars later. Predictions made from bars the store does not hold (request bars)
    never mature here."""
    out = []
    seen: set[tuple[int, int]] = set()
    for p in predictions:
        if (p.forecast_id, p.horizon) in seen:
            continue
        seen.add((p.forecast_id, p.horizon))
        frame = frames.get(p.symbol)
        if frame is None or frame.empty:
            continue
        i = frame.index.get_indexer([bar_time(p.as_of)])[0]
        j = i + p.horizon
        if i < 0 or j >= len(frame):
            continue
        close = frame["close"].to_numpy(dtype=float)
        out.append((p.forecast_id, p.horizon, float(np.log(close[j] / close[i])),
                    frame.index[j].isoformat()))
    return out


def score_pending(registry: Any, load_frames: FrameLoader) -> dict[str, int]:
    """Record the outcome of every matured, not yet scored prediction in the registry's log.
    ``load_frames(version, symbols)`` gives the bars its forecasts were made from.
    Idempotent: a prediction's outcome is written once."""
    pending = registry.meta.predictions(scored=False)
    by_version: dict[int, list[PredictionRecord]] = {}
    for p in pending:
        by_version.setdefault(p.version_id, []).append(p)
    added = 0
    for version_id, preds in by_version.items():
        version = registry.get_version(version_id)
        symbols = sorted({p.symbol for p in preds})
        frames = load_frames(version, symbols)
        added += registry.meta.record_outcomes(realised_outcomes(preds, frames))
    return {"pending": len(pending), "scored": added}


def scored_table(predictions: Sequence[PredictionRecord]) -> pd.DataFrame:
    """Scored predictions as a table, one row per distinct (symbol, as_of, horizon)."""
    rows = [{"answer_id": p.answer_id, "symbol": p.symbol, "date": bar_time(p.as_of),
             "horizon": p.horizon, "close": p.last_close, "mean": p.mean, "scale": p.scale,
             "df": p.df, "y": p.realised, "requested_at": p.requested_at}
            for p in predictions if p.realised is not None]
    cols = ["answer_id", "symbol", "date", "horizon", "close", "mean", "scale", "df", "y",
            "requested_at"]
    table = pd.DataFrame(rows, columns=cols)
    return (table.sort_values(["answer_id", "horizon"])
            .drop_duplicates(["symbol", "date", "horizon"], keep="first")
            .sort_values(["horizon", "date", "symbol"]).reset_index(drop=True))


def live_metrics(predictions: Sequence[PredictionRecord], *, cost_bps: float = 5.0,
                 alpha: float = 0.05) -> dict[str, Any]:
    """Per horizon with two or more scored forecasts: `forecast_metrics` (direction with its
    Wilson interval, CRPS, NLL, 80/95 % coverage, Brier) and, on the first horizon, the sign
    strategy's P&L after ``cost_bps`` (`trade_forecasts`, filled at the next close)."""
    table = scored_table(predictions)
    out: dict[str, Any] = {}
    first = int(table["horizon"].min()) if len(table) else None
    for h, rows in table.groupby("horizon", sort=True):
        if len(rows) < 2:
            continue
        dfs = rows["df"].dropna().unique()
        df = float(dfs[0]) if len(dfs) else None
        # `called`: as in walk-forward evaluation, a mean within a tie of zero calls nothing
        rows = rows.assign(mean=called(rows["mean"].to_numpy(), rows["scale"].to_numpy()))
        m = forecast_metrics(rows["close"].to_numpy(), rows["y"].to_numpy(),
                             rows["mean"].to_numpy(), scale=rows["scale"].to_numpy(), df=df,
                             alpha=alpha)
        m["pnl"] = None
        if int(h) == first:    # traded on the first horizon, as the walk-forward backtest
            try:
                book = trade_forecasts(rows, "mean", None, cost_bps=cost_bps)
                m["pnl"] = {"cost_bps": cost_bps, **book.stats}
            except ValueError:    # no symbol has two scored bars yet
                pass
        out[str(int(h))] = m
    return out


def below_walk_forward(hits: int, n: int, walk_forward_accuracy: float | None,
                       alpha: float = 0.05) -> dict[str, Any] | None:
    """Is live directional accuracy significantly below the walk-forward estimate? One-sided
    exact binomial test of the live hits against the walk-forward accuracy as a fixed rate
    (the walk-forward figure is treated as known; with its own sampling error the test is
    slightly liberal, stated in docs/monitoring.md)."""
    if walk_forward_accuracy is None or n < 1 or not 0 < walk_forward_accuracy < 1:
        return None
    res = binomial_test(hits, n, walk_forward_accuracy, alternative="less", alpha=alpha)
    return {"live_accuracy": hits / n, "walk_forward_accuracy": walk_forward_accuracy,
            "n": n, "p_value": res.p_value, "significantly_below": res.p_value < alpha,
            "alpha": alpha}
