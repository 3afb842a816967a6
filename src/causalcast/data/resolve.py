"""One data string -> OHLCV frames: the way every command names its data.

`resolve_source` dispatches on the string's prefix, in one place, so a new kind of source
is one more branch here and nowhere else:

* ``synthetic:N[,BARS[,STRENGTH[,SEED]]]``: a synthetic universe with a known accuracy
  ceiling, regenerated from its seed (a worker process needs nothing but the string);
* ``store:[PATH][?interval=1h&prices=raw&version=N]``: the versioned market data store
  (`causalcast.store.frames`; imported on use, since the store itself builds on `data`);
* anything else: a folder or file of CSV/Parquet bars, or ``sample:NAME`` (`load_ohlcv`).

It lives in `data` (not in `training`) because serving, evaluation and the CLI resolve the
same strings, and imports go one way: data is the first layer.
"""

from __future__ import annotations

import pandas as pd

from causalcast.data.quality import DataReport, validate_ohlcv
from causalcast.data.sources import load_ohlcv
from causalcast.data.synthetic import SyntheticUniverse, make_universe

SYNTHETIC_PREFIX = "synthetic:"


def parse_synthetic(text: str) -> dict:
    """``"synthetic:8,2520,0.325,0"`` -> make_universe keyword arguments."""
    body = text[len(SYNTHETIC_PREFIX):] if text.startswith(SYNTHETIC_PREFIX) else text
    parts = [p.strip() for p in body.split(",") if p.strip()]
    if not 1 <= len(parts) <= 4:
        raise ValueError(f"synthetic: expected N_SYMBOLS[,BARS[,STRENGTH[,SEED]]], got {text!r}")
    try:
        out = {"n_symbols": int(parts[0])}
        if len(parts) > 1:
            out["n_bars"] = int(parts[1])
        if len(parts) > 2:
            out["strength"] = float(parts[2])
        if len(parts) > 3:
            out["seed"] = int(parts[3])
    except ValueError:
        raise ValueError(f"synthetic: numbers expected in {text!r}") from None
    return out


def synthetic_universe(text: str) -> SyntheticUniverse:
    """The universe a ``synthetic:`` string names; the h > 1 Monte Carlo ceilings are skipped
    (tiny sample) because training needs only the bars and the exact h = 1 ceiling."""
    return make_universe(**parse_synthetic(text), mc_states=50, mc_paths=50)


def resolve_source(data: str, symbols: list[str] | tuple[str, ...] | None = None,
                   min_bars: int | None = None
                   ) -> tuple[dict[str, pd.DataFrame], SyntheticUniverse | None]:
    """OHLCV frames (validated) for the requested symbols, and the universe if synthetic."""
    universe = None
    symbols = [s.upper() for s in symbols] if symbols else None
    if data.startswith(SYNTHETIC_PREFIX):
        universe = synthetic_universe(data)
        frames = dict(universe.frames)
        if min_bars is not None:   # too short a universe fails here as a file would
            for symbol, frame in frames.items():
                validate_ohlcv(frame, f"{data} {symbol}", min_bars=min_bars)
    elif data.startswith("store:"):
        from causalcast.store import load_source

        frames = load_source(data, symbols, min_bars)
    else:
        frames = load_ohlcv(data, symbols=symbols or None, min_bars=min_bars)
    if symbols:
        missing = [s for s in symbols if s not in frames]
        if missing:
            raise KeyError(f"symbols: {missing} not in {data!r} (has {sorted(frames)[:10]}...)")
        frames = {s: frames[s] for s in symbols}
    if not frames:
        raise ValueError(f"data: no symbols found in {data!r}")
    return frames, universe


def validate_source(data: str, *, repairs: frozenset[str] | set[str] = frozenset(),
                    min_bars: int | None = None
                    ) -> tuple[dict[str, pd.DataFrame], dict[str, DataReport]]:
    """Frames and their per-symbol `DataReport` (``data validate``) for any data string: files
    and samples are validated as they load (repairs counted per file); synthetic and store
    bars are validated after `resolve_source`, under the same repairs and minimum length."""
    if data.startswith((SYNTHETIC_PREFIX, "store:")):
        frames, _ = resolve_source(data, min_bars=min_bars)
        checked = {s: validate_ohlcv(f, f"{data} {s}", min_bars=min_bars, repairs=repairs)
                   for s, f in frames.items()}
        return ({s: c[0] for s, c in checked.items()}, {s: c[1] for s, c in checked.items()})
    return load_ohlcv(data, repairs=repairs, min_bars=min_bars, with_reports=True)
