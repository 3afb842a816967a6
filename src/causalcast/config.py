"""Typed settings for every stage: defaults < TOML file < environment < explicit overrides.

One object carries the whole configuration so that a registered model can record exactly the
feature and split settings that produced it (invariant 8: every number is reproducible).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_HORIZONS: tuple[int, ...] = (1, 5, 10, 30)
ENV_PREFIX = "CAUSALCAST_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureConfig(_Section):
    """What the models see: lookback window length and forecast horizons (in bars)."""

    lookback: int = Field(60, ge=2, le=4096)
    horizons: tuple[int, ...] = DEFAULT_HORIZONS

    @field_validator("horizons")
    @classmethod
    def _horizons_positive_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("horizons: at least one horizon is required")
        if any(h < 1 for h in value):
            raise ValueError(f"horizons: every horizon must be >= 1 bar, got {list(value)}")
        if len(set(value)) != len(value):
            raise ValueError(f"horizons: duplicates in {list(value)}")
        return tuple(sorted(value))

    @property
    def max_horizon(self) -> int:
        return max(self.horizons)


class SplitConfig(_Section):
    """Temporal split geometry. Purge defaults to the largest horizon (see splits.py)."""

    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.15, gt=0, lt=1)
    purge: int | None = Field(None, ge=0, description="bars dropped before each evaluation "
                              "range; None means the largest horizon")
    embargo: int = Field(5, ge=0)
    n_folds: int = Field(5, ge=1)
    mode: Literal["expanding", "rolling"] = "expanding"

    @model_validator(mode="after")
    def _fractions_leave_training(self) -> SplitConfig:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% for training")
        return self


class AugmentConfig(_Section):
    """Training-only augmentation (invariant 3). Off by default."""

    enabled: bool = False
    jitter_std: float = Field(0.05, ge=0, description="noise in units of the training std")
    magnitude_warp_std: float = Field(0.1, ge=0)
    bootstrap_copies: int = Field(0, ge=0, description="block-bootstrapped training series")
    block_size: int = Field(20, ge=1)
    seed: int = 0


class Settings(_Section):
    seed: int = 42
    home: Path = Path(".causalcast")
    features: FeatureConfig = FeatureConfig()
    split: SplitConfig = SplitConfig()
    augment: AugmentConfig = AugmentConfig()

    def fingerprint_dict(self) -> dict[str, Any]:
        """The parts of the settings that change what a model learns, as plain JSON."""
        return json.loads(self.model_dump_json(include={"features", "split", "augment", "seed"}))


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """CAUSALCAST_SPLIT__EMBARGO=10 -> {"split": {"embargo": "10"}}; pydantic coerces types."""
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or not raw:
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        if path[0] not in Settings.model_fields:
            continue  # other components (serving, benchmarks) read their own variables
        value: Any = raw
        if path[-1] == "horizons":
            value = tuple(int(h) for h in raw.split(","))
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def read_toml(path: Path) -> dict[str, Any]:
    """A settings file as a dict, or a ValueError naming the file and what is wrong (a
    folder, a missing file, bad TOML): the CLI turns it into one line, exit 2."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected a TOML settings file") from None
    except FileNotFoundError:
        raise ValueError(f"{path}: no such settings file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Defaults, then a TOML file, then CAUSALCAST_* environment variables, then overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_toml(Path(path))
    data = _merge(data, _env_overrides(dict(os.environ if environ is None else environ)))
    if overrides:
        data = _merge(data, overrides)
    return Settings.model_validate(data)
