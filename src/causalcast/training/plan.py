"""What a training run is made of: a `RunSpec` (the run description) and its planned jobs.

A run trains every (scope, model, fold) combination of its description:

* **scope**: ``per-symbol`` (one model per symbol) and/or ``global`` (one network across all
  the run's symbols, `JobKey.symbol == ALL_SYMBOLS`);
* **fold**: walk-forward fold indices (``0 .. n_folds-1``, each a model trained on what lies
  before its validation block and tested on its own out-of-sample block: what evaluation
  scores) and/or ``final``.

**Final fit.** One temporal split per (scope, model) with the split settings' fractions: the
model trains on the oldest ~70 % of bars, early-stops on the next ~15 %, and the newest ~15 %
(after a purge of the largest horizon plus the embargo) stays out-of-sample, so the registered
version carries honest test metrics. It is exactly what ``causalcast train`` fits with
``--folds 1`` (``JobSpec(n_folds=1, fold=0)``); in the registry its `JobKey.fold` is
`FINAL_FOLD` (999), so a run can hold walk-forward folds and the final fit side by side. It is
the version meant for production; walk-forward versions exist for evaluation.

Every job of a run uses the run's seed, so the same description gives byte-identical
artifacts whatever backend or worker count executes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from causalcast.config import DEFAULT_HORIZONS, AugmentConfig, FeatureConfig, SplitConfig
from causalcast.registry import ALL_SYMBOLS, JobKey
from causalcast.registry.names import path_component
from causalcast.training.job import JobSpec
from causalcast.training.profiles import PROFILES

FINAL = "final"
#: `JobKey.fold` of the final fit (walk-forward folds use their index, which stays below it).
FINAL_FOLD = 999
SCOPES = ("per-symbol", "global")
GLOBAL_LABEL = "global"


class PlanError(ValueError):
    """A run description that cannot be planned; the message names the field."""


def parse_set_value(raw: str) -> Any:
    """A ``--set`` value: an int, a float, a comma-separated list of numbers, else text."""
    if "," in raw:
        return tuple(parse_set_value(part.strip()) for part in raw.split(",") if part.strip())
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            continue
    return raw


def format_set_value(value: Any) -> str:
    """The ``--set`` spelling of a value (`parse_value` reads it back exactly: floats are
    written with ``repr``, which round-trips)."""
    if isinstance(value, list | tuple):
        return ",".join(format_set_value(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def parse_folds(text: str | int | None, n_folds: int) -> tuple[int | str, ...]:
    """``"final"``, ``"all"``, ``"0,2"``, ``"all,final"`` -> fold selection.

    ``None`` picks the natural default: the final fit when ``n_folds == 1``, else every
    walk-forward fold. With ``n_folds == 1`` fold ``0`` *is* the final fit (the single
    temporal split) and is returned as ``"final"``."""
    if text is None:
        return (FINAL,) if n_folds == 1 else tuple(range(n_folds))
    out: list[int | str] = []
    for part in (p.strip().lower() for p in str(text).split(",")):
        if not part:
            continue
        if part == FINAL:
            items: list[int | str] = [FINAL]
        elif part == "all":
            items = [FINAL] if n_folds == 1 else list(range(n_folds))
        else:
            try:
                k = int(part)
            except ValueError:
                raise PlanError(f"folds: expected fold numbers, 'all' or 'final', got "
                                f"{part!r}") from None
            items = [FINAL] if (n_folds == 1 and k == 0) else [k]
        out += [i for i in items if i not in out]
    if not out:
        raise PlanError(f"folds: nothing selected by {text!r}")
    return tuple(out)


@dataclass
class RunSpec:
    """The run description: what to train, on which data, with which settings.

    ``data`` is a job data string (folder/file, ``sample:msft``, ``synthetic:N,BARS,S,SEED``);
    ``symbols`` None means every symbol of the source. ``model_params`` maps a model name to
    its overrides of the profile; ``train_params`` and ``split`` override the profile's
    training settings and `SplitConfig`. Stored as the run's config in the registry, so a
    rerun of the same run id needs nothing but the id."""

    data: str
    models: tuple[str, ...]
    symbols: tuple[str, ...] | None = None
    scopes: tuple[str, ...] = ("per-symbol",)
    folds: tuple[int | str, ...] = (FINAL,)
    n_folds: int = 5
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    lookback: int = 60
    features: tuple[str, ...] | None = None
    seed: int = 0
    profile: str = "quick"
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    train_params: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    #: `AugmentConfig` fields of training-only augmentation ({}: off; ``{"enabled": True}``:
    #: on with the defaults); used by the trainer on training windows only.
    augment: dict[str, Any] = field(default_factory=dict)
    #: Read only bars dated on or before this ISO date (tuning trials).
    until: str | None = None

    def __post_init__(self) -> None:
        from causalcast.models.base import model_class

        if not isinstance(self.data, str) or not self.data:
            raise PlanError("data: expected a data string (folder, file, sample:NAME or "
                            "synthetic:N,...)")
        self.models = tuple(str(m) for m in self.models)
        if not self.models:
            raise PlanError("models: at least one model is required")
        if len(set(self.models)) != len(self.models):
            raise PlanError(f"models: duplicates in {list(self.models)}")
        for name in self.models:
            try:
                model_class(name)
            except KeyError as exc:
                raise PlanError(str(exc).strip("'\"")) from None
        unknown = set(self.model_params) - set(self.models)
        if unknown:
            raise PlanError(f"model_params: {sorted(unknown)} are not among the run's models "
                            f"{list(self.models)}")
        if self.symbols is not None:
            self.symbols = tuple(s.upper() for s in self.symbols)
            if not self.symbols:
                raise PlanError("symbols: empty selection (use None for every symbol)")
        self.scopes = tuple(self.scopes)
        bad = [s for s in self.scopes if s not in SCOPES]
        if bad or not self.scopes:
            raise PlanError(f"scopes: choose one or both of {list(SCOPES)}, got "
                            f"{list(self.scopes)}")
        if not isinstance(self.n_folds, int) or not 1 <= self.n_folds < FINAL_FOLD:
            raise PlanError(f"n_folds: expected 1..{FINAL_FOLD - 1}, got {self.n_folds!r}")
        self.folds = parse_folds(",".join(str(f) for f in self.folds), self.n_folds)
        for f in self.folds:
            if f != FINAL and not 0 <= int(f) < self.n_folds:
                raise PlanError(f"folds: walk-forward fold {f} out of range 0..{self.n_folds - 1}"
                                f" (n_folds={self.n_folds})")
        if self.profile not in PROFILES:
            raise PlanError(f"profile: choose from {list(PROFILES)}, got {self.profile!r}")
        try:
            features = FeatureConfig(lookback=self.lookback, horizons=tuple(self.horizons))
            SplitConfig(**{"n_folds": self.n_folds, **self.split})
        except ValueError as exc:
            raise PlanError(f"settings: {exc}") from None
        self.horizons = features.horizons
        if self.features is not None:
            self.features = tuple(self.features)
        self.augment = dict(self.augment or {})
        check_augment(self.augment)
        if self.until is not None:
            try:
                pd.Timestamp(self.until)
            except (TypeError, ValueError):
                raise PlanError(f"until: expected an ISO date, got {self.until!r}") from None

    # ----- storage (the registry keeps it as the run's config) ------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("models", "symbols", "scopes", "folds", "horizons", "features"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise PlanError(f"run spec: unknown fields {sorted(unknown)}")
        return cls(**data)

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(lookback=self.lookback, horizons=self.horizons)

    def split_config(self, n_folds: int) -> SplitConfig:
        return SplitConfig(**{"n_folds": n_folds, **self.split})


def check_augment(augment: dict[str, Any]) -> None:
    """`PlanError` naming the field for augmentation settings training cannot honour."""
    try:
        config = AugmentConfig(**{"enabled": True, **augment})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanError(f"augment.{where}: {first['msg']} (got {first.get('input')!r})"
                        ) from None
    if config.enabled and config.bootstrap_copies:
        raise PlanError("augment.bootstrap_copies: block-bootstrapped training series are not "
                        "used by training (the leakage audit checks them); use jitter_std / "
                        "magnitude_warp_std")


@dataclass(frozen=True)
class PlannedJob:
    """One job of a run: its registry key, the spec a worker runs, the version name."""

    key: JobKey
    spec: JobSpec
    name: str            # registry version name, e.g. "lstm/SYN000" or "tcn/global/fold2"
    scope: str           # symbol, or "global"

    @property
    def fold_label(self) -> str:
        return FINAL if self.key.fold == FINAL_FOLD else f"fold{self.key.fold}"

    @property
    def label(self) -> str:
        return f"{self.key.model}/{self.scope}/{self.fold_label}"

    @property
    def job_dir(self) -> Path:
        return self.spec.job_dir(self.scope)


def name_part(symbol: str, *, reserved: frozenset[str] = frozenset()) -> str:
    """A symbol as a registry-name component: `causalcast.registry.names.path_component`, the
    one rule that also names job folders (``^GSPC`` -> ``x_GSPC-<hash>``)."""
    return path_component(symbol, "symbol", reserved=reserved)


def version_name(model: str, scope: str, fold: int | str, *, symbol: bool = False) -> str:
    """``lstm/SYN000`` for a final fit, ``lstm/SYN000/fold2`` for a walk-forward fold.
    ``symbol=True`` says ``scope`` is a symbol: one spelled like the ``global`` label is then
    encoded, so it never shares a name with the global model."""
    reserved = frozenset({GLOBAL_LABEL}) if symbol else frozenset()
    base = f"{model}/{name_part(scope, reserved=reserved)}"
    return base if fold == FINAL else f"{base}/fold{int(fold)}"


def plan_run(spec: RunSpec, symbols: list[str], out_root: str | Path, *,
             longest_first: bool = True) -> list[PlannedJob]:
    """Every (scope, model, fold) job of the run. With `longest_first` (parallel backends)
    deep models come before closed-form baselines, which shortens the tail where one worker
    finishes a long job while the others idle; without it (inline) the models keep the
    description's order. Global models come before per-symbol ones.

    Job outputs go to ``out_root/final/...`` (final fits) and ``out_root/walk/...``
    (walk-forward folds): both use ``fold0`` folders, so they need separate roots. With a
    single symbol a global model would be the per-symbol model, so it is planned once, under
    the symbol's key."""
    from causalcast.models.base import model_class

    if not symbols:
        raise PlanError("symbols: the data source has no symbols")
    out_root = Path(out_root)
    scopes: list[tuple[str, tuple[str, ...], str]] = []
    if "global" in spec.scopes:
        scopes.append((ALL_SYMBOLS, tuple(symbols), GLOBAL_LABEL))
    if "per-symbol" in spec.scopes:
        scopes += [(s, (s,), s) for s in symbols]
    if len(symbols) == 1:  # one symbol: the global model is the per-symbol model
        scopes = [(symbols[0], (symbols[0],), symbols[0])]
    models = (sorted(spec.models, key=lambda m: not model_class(m).trainable)
              if longest_first else list(spec.models))
    jobs = []
    for key_symbol, job_symbols, scope in scopes:
        for model in models:
            for fold in spec.folds:
                final = fold == FINAL
                job = JobSpec(
                    model=model, data=spec.data,
                    out_dir=str(out_root / (FINAL if final else "walk")),
                    symbols=job_symbols, fold=0 if final else int(fold),
                    n_folds=1 if final else spec.n_folds, horizons=spec.horizons,
                    lookback=spec.lookback, features=spec.features, seed=spec.seed,
                    profile=spec.profile, threads=1, resume=True,
                    model_params=dict(spec.model_params.get(model, {})),
                    train_params=dict(spec.train_params), split=dict(spec.split),
                    augment=dict(spec.augment) or None, until=spec.until)
                jobs.append(PlannedJob(
                    key=JobKey(key_symbol, model, FINAL_FOLD if final else int(fold)),
                    spec=job, scope=scope,
                    name=version_name(model, scope, fold, symbol=key_symbol != ALL_SYMBOLS)))
    return jobs
