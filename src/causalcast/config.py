"""Typed settings for every stage: defaults < TOML file < environment < explicit overrides.

One object carries the whole configuration so that a registered model can record exactly the
feature and split settings that produced it (docs/design.md: every number is reproducible).

The layers are pydantic-settings sources: a TOML file (``--config FILE``, else the file
named by ``CAUSALCAST_CONFIG``), ``CAUSALCAST_*`` environment variables with ``__`` between
nested names (``CAUSALCAST_FEATURES__LOOKBACK=20``), then command-line overrides.
`load_settings` applies them itself, in that order, so that `settings_sources` can say where
each effective value came from (``causalcast config show``).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

DEFAULT_HORIZONS: tuple[int, ...] = (1, 5, 10, 30)
ENV_PREFIX = "CAUSALCAST_"
CONFIG_FILE_VARIABLE = "CAUSALCAST_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureConfig(_Section):
    """What the models see: lookback window length and forecast horizons (in bars)."""

    lookback: int = Field(60, ge=2, le=4096)
    horizons: tuple[int, ...] = DEFAULT_HORIZONS

    @field_validator("horizons", mode="before")
    @classmethod
    def _horizons_from_text(cls, value: Any) -> Any:
        """``"1,5,10"`` (an environment variable or a flag) as well as a list."""
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            try:
                return tuple(int(h) for h in text.split(",") if h.strip())
            except ValueError:
                raise ValueError(f"horizons: expected comma-separated integers, got "
                                 f"{value!r}") from None
        return value

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


class Settings(BaseSettings):
    """The whole configuration. Constructed from one merged dict by `load_settings` (only
    the init source is active here, so ``Settings()`` is the defaults, whatever the
    environment holds)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                      extra="forbid", frozen=True)

    seed: int = 42
    home: Path = Path(".causalcast")
    features: FeatureConfig = FeatureConfig()
    split: SplitConfig = SplitConfig()
    augment: AugmentConfig = AugmentConfig()

    def fingerprint_dict(self) -> dict[str, Any]:
        """The parts of the settings that change what a model learns, as plain JSON."""
        return json.loads(self.model_dump_json(include={"features", "split", "augment", "seed"}))

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return (init_settings,)


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (tests pass their own)."""

    def __init__(self, environ: dict[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self._environ.items() if v != ""}

    def decode_complex_value(self, field_name: str, field: Any, value: Any) -> Any:
        """JSON as pydantic-settings reads it, and also ``1,5,10`` for a list: not JSON,
        passed on as text for the field's own validator (``horizons``)."""
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            return value


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
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


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_leaves(value, f"{name}."))
        else:
            out[name] = value
    return out


def _layers(path: str | Path | None, overrides: dict[str, Any] | None,
            environ: dict[str, str] | None) -> list[tuple[str, dict[str, Any]]]:
    """(source label, nested values) from the lowest layer to the highest."""
    env = dict(os.environ if environ is None else environ)
    if path is None and env.get(CONFIG_FILE_VARIABLE):
        path = env[CONFIG_FILE_VARIABLE]
    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        layers.append((f"file {path}", read_toml(Path(path))))
    values = _EnvironSource(env)()
    labels = {name: ENV_PREFIX + name.upper().replace(".", "__")
              for name in _leaves(values)}
    for name, label in labels.items():   # one layer per variable: the label names it
        node: dict[str, Any] = {}
        cursor, parts = node, name.split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = _leaves(values)[name]
        layers.append((f"env {label}", node))
    if overrides:
        layers.append(("command line", overrides))
    return layers


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Defaults, then a TOML file (`path`, else ``$CAUSALCAST_CONFIG``), then CAUSALCAST_*
    environment variables (``__`` between nested names), then explicit overrides."""
    data: dict[str, Any] = {}
    for _, values in _layers(path, overrides, environ):
        data = _merge(data, values)
    return Settings.model_validate(data)


def settings_sources(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[Settings, dict[str, dict[str, Any]]]:
    """The effective settings and, per dotted name (``features.lookback``), its value and
    the layer it came from (``default``, ``file PATH``, ``env NAME``, ``command line``)."""
    settings = load_settings(path, overrides, environ)
    origin: dict[str, str] = {}
    for label, values in _layers(path, overrides, environ):
        for name in _leaves(values):
            origin[name] = label
    effective = _leaves(json.loads(settings.model_dump_json()))
    return settings, {name: {"value": value, "source": origin.get(name, "default")}
                      for name, value in effective.items()}
