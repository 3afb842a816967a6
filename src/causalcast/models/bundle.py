"""A trained model, self-contained: everything needed to forecast from raw OHLCV bars.

`TrainedModel` holds the network (or baseline), the feature names and lookback, the
horizons, the fold scalers (one per training symbol, plus ``"*"`` pooled over all training
rows for symbols it never saw) and the per-horizon target standardisation. It serialises to
ONE safetensors blob plus a JSON-able config (`to_artifact` / `from_artifact`, built on
`causalcast.weights.serialize` / `parse`) — the registry stores those bytes
content-addressed — or to ``stem.safetensors`` + ``stem.json`` (`save` / `load`). Loading
verifies the checksum and that every tensor fits the rebuilt model; nothing is unpickled.

Equal models give equal bytes (sorted tensors, canonical JSON, no timestamps), so the
content address identifies the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from causalcast.data.quality import normalize_columns
from causalcast.features.indicators import build_features
from causalcast.features.pipeline import FoldScaler
from causalcast.models.base import ForecastModel, model_from_dict, model_to_dict
from causalcast.models.forecast import DEFAULT_LEVELS, Forecast, ForecastBatch
from causalcast.weights import (
    WeightsError,
    check_state_dict,
    load_weights,
    parse,
    save_weights,
    serialize,
)

KIND = "causalcast-bundle"
VERSION = 1
POOLED = "*"


@dataclass
class TrainedModel:
    model: ForecastModel
    feature_names: list[str]
    lookback: int
    horizons: tuple[int, ...]
    scalers: dict[str, FoldScaler]          # symbol -> scaler; POOLED for unseen symbols
    target_mean: np.ndarray                 # (H,) float64, training range only
    target_std: np.ndarray                  # (H,)
    meta: dict[str, Any] = field(default_factory=dict)   # symbols, fold, data, metrics...

    def __post_init__(self) -> None:
        cfg = self.model.config
        self.horizons = tuple(int(h) for h in self.horizons)
        self.target_mean = np.asarray(self.target_mean, dtype=np.float64)
        self.target_std = np.asarray(self.target_std, dtype=np.float64)
        problems = []
        if len(self.feature_names) != cfg.n_features:
            problems.append(f"{len(self.feature_names)} feature names for a model of "
                            f"{cfg.n_features} features")
        if len(self.horizons) != cfg.n_horizons or self.target_mean.shape != (cfg.n_horizons,) \
                or self.target_std.shape != (cfg.n_horizons,):
            problems.append(f"horizons {self.horizons} / target statistics do not match the "
                            f"model's {cfg.n_horizons} outputs")
        if self.lookback != cfg.lookback:
            problems.append(f"lookback {self.lookback} != model lookback {cfg.lookback}")
        for key, s in self.scalers.items():
            if s.mean_ is None or len(s.mean_) != cfg.n_features:
                problems.append(f"scaler {key!r} does not cover {cfg.n_features} features")
        if not np.all(self.target_std > 0):
            problems.append("target_std must be positive")
        if problems:
            raise WeightsError("bundle: " + "; ".join(problems))
        self.model.eval()

    @property
    def name(self) -> str:
        return self.model.name

    # ----- serialisation -------------------------------------------------------------------
    def _tensors_and_config(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        keys = sorted(self.scalers)
        for i, key in enumerate(keys):
            tensors[f"scaler.{i}.mean"] = torch.from_numpy(np.asarray(self.scalers[key].mean_))
            tensors[f"scaler.{i}.scale"] = torch.from_numpy(
                np.asarray(self.scalers[key].scale_))
        tensors["target.mean"] = torch.from_numpy(self.target_mean)
        tensors["target.std"] = torch.from_numpy(self.target_std)
        config = {
            "kind": KIND, "version": VERSION, "model": model_to_dict(self.model),
            "feature_names": list(self.feature_names), "lookback": int(self.lookback),
            "horizons": list(self.horizons),
            "scalers": [{"key": k, "clip": float(self.scalers[k].clip)} for k in keys],
            "meta": self.meta,
        }
        return tensors, config

    def to_artifact(self) -> tuple[bytes, dict[str, Any]]:
        """(safetensors bytes, config); the config is also inside the bytes' header."""
        tensors, config = self._tensors_and_config()
        data, _ = serialize(tensors, config)
        return data, config

    @classmethod
    def from_artifact(cls, data: bytes, config: dict[str, Any] | None = None,
                      sha256: str | None = None, source: str = "bundle") -> TrainedModel:
        """Verify (checksum if given, header, config agreement, tensor names and shapes)
        and rebuild; raises `WeightsError` for anything corrupt or mismatched."""
        tensors, stored = parse(data, config, sha256, source)
        return cls._from_parsed(tensors, stored, source)

    def save(self, stem: str | Path) -> str:
        """Write ``stem.safetensors`` and ``stem.json`` atomically; returns the SHA-256."""
        tensors, config = self._tensors_and_config()
        return save_weights(stem, tensors, config)

    @classmethod
    def load(cls, stem: str | Path) -> TrainedModel:
        stem = Path(stem)
        if stem.suffix in (".json", ".safetensors"):
            stem = stem.with_suffix("")
        tensors, stored = load_weights(stem)
        return cls._from_parsed(tensors, stored, str(stem))

    @classmethod
    def _from_parsed(cls, tensors: dict[str, torch.Tensor], cfg: dict[str, Any],
                     source: str) -> TrainedModel:
        if cfg.get("kind") != KIND or cfg.get("version") != VERSION:
            raise WeightsError(f"{source}: not a {KIND} v{VERSION} file "
                               f"(kind={cfg.get('kind')!r}, version={cfg.get('version')!r})")
        try:
            model = model_from_dict(cfg["model"])
        except (KeyError, ValueError, TypeError) as exc:
            raise WeightsError(f"{source}: model config rejected ({exc})") from None
        state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        check_state_dict(model, state, source)
        model.load_state_dict(state, strict=True)
        scalers = {}
        for i, entry in enumerate(cfg.get("scalers", [])):
            try:
                mean, scale = tensors[f"scaler.{i}.mean"], tensors[f"scaler.{i}.scale"]
            except KeyError:
                raise WeightsError(f"{source}: scaler {entry.get('key')!r} tensors "
                                   "missing") from None
            scalers[entry["key"]] = FoldScaler.from_state(
                {"mean": mean.numpy(), "scale": scale.numpy(), "clip": entry["clip"]})
        try:
            return cls(model=model, feature_names=list(cfg["feature_names"]),
                       lookback=int(cfg["lookback"]), horizons=tuple(cfg["horizons"]),
                       scalers=scalers, target_mean=tensors["target.mean"].numpy(),
                       target_std=tensors["target.std"].numpy(), meta=cfg.get("meta", {}))
        except KeyError as exc:
            raise WeightsError(f"{source}: field {exc} missing") from None

    # ----- prediction ------------------------------------------------------------------------
    def raw_params(self, windows: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Scaled windows (B, L, F) -> raw-unit (loc, scale), each (B, H), one forward pass."""
        x = torch.as_tensor(windows, dtype=torch.float32)
        if x.dim() != 3 or x.shape[1:] != (self.lookback, len(self.feature_names)):
            raise ValueError(f"windows: expected (batch, {self.lookback}, "
                             f"{len(self.feature_names)}), got {tuple(x.shape)}")
        with torch.inference_mode():
            loc, scale = self.model(x)
        loc = loc.double().numpy() * self.target_std + self.target_mean
        return loc, scale.double().numpy() * self.target_std

    def predict_windows(self, windows: np.ndarray | torch.Tensor,
                        levels: tuple[float, ...] = DEFAULT_LEVELS) -> ForecastBatch:
        loc, scale = self.raw_params(windows)
        cfg = self.model.config
        return ForecastBatch.from_params(loc, scale, self.horizons, cfg.likelihood, cfg.df,
                                         levels)

    @property
    def min_bars(self) -> int:
        """Bars a frame needs for one window: the lookback plus the longest indicator warm-up
        of the bundle's features (before it, a feature cannot be finite)."""
        from causalcast.features.indicators import INDICATORS

        warmup = max((INDICATORS[n].warmup for n in self.feature_names if n in INDICATORS),
                     default=0)
        return self.lookback + warmup

    def scaler_for(self, symbol: str) -> FoldScaler:
        scaler = self.scalers.get(symbol) or self.scalers.get(POOLED)
        if scaler is None:
            raise KeyError(f"symbol: {symbol!r} was not in training and the bundle has no "
                           f"pooled scaler; known {sorted(self.scalers)}")
        return scaler

    def latest_window(self, symbol: str, ohlcv: pd.DataFrame, *, served_as: str = "",
                      normalized: bool = False) -> np.ndarray:
        """Scaled (L, F) window ending at the frame's last bar, from raw OHLCV.

        Features are computed over the whole frame (EMAs and the running drawdown depend on
        all earlier bars), so pass the history you have, not just the last L bars. This is
        the one place that refuses too short a history (the service's and the CLI's message);
        ``served_as`` names the registry version in it. ``normalized``: the caller already
        ran `normalize_columns` (the service does, for the close and the as-of bar)."""
        if not normalized:
            ohlcv = normalize_columns(ohlcv, symbol)
        if len(ohlcv) < self.min_bars:
            serving = f" for {served_as}" if served_as else ""
            raise ValueError(f"{symbol}: {len(ohlcv)} bars, need at least {self.min_bars}"
                             f"{serving} (lookback {self.lookback} plus "
                             f"{self.min_bars - self.lookback} bars of indicator warm-up)")
        feats = build_features(ohlcv, self.feature_names).to_numpy(dtype=np.float64)
        tail = feats[-self.lookback:]
        if not np.isfinite(tail).all():
            raise ValueError(f"{symbol}: features of the last {self.lookback} bars are not "
                             "all finite (too little history for the indicators' warm-up, "
                             "or bad bars)")
        return self.scaler_for(symbol).transform(tail)

    def forecast(self, frames: Mapping[str, pd.DataFrame],
                 levels: tuple[float, ...] = DEFAULT_LEVELS) -> dict[str, Forecast]:
        """Forecast every horizon from each symbol's latest bar, in one batched pass."""
        if not frames:
            return {}
        symbols = list(frames)
        windows = np.stack([self.latest_window(s, frames[s]) for s in symbols])
        batch = self.predict_windows(windows, levels)
        out = {}
        for i, s in enumerate(symbols):
            last = frames[s].index[-1]
            as_of = last.isoformat() if hasattr(last, "isoformat") else str(last)
            out[s] = batch.row(i, s, self.name, as_of)
        return out
