"""`causalcast predict`: forecasts on the command line, from the registry's production models
(the default, as the service answers them) or from bundle files (`--model`).

From the registry each symbol is answered exactly as ``POST /v1/forecast`` with its bars would
answer it (the same `ModelHub`): by its own production model, or — for a symbol no model was
trained on — by the production global model with its pooled scaler (``unseen_symbol``), and
every forecast carries its version's evidence (docs/serving.md). Bundle files have no
registry version, hence no attached evaluation: their evidence is null, and says so.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import typer

from causalcast.cli.common import (
    JSON_OPTION,
    clear_errors,
    console,
    err_console,
    fail,
    print_json,
    table,
)
from causalcast.cli.sources import SYNTHETIC_ALIAS, data_option, data_source

NO_EVIDENCE = ("a bundle file, not a registry version: no evaluation is attached to it "
               "(forecast from the registry with --home for the evidence)")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


def find_bundles(path: Path) -> list[Path]:
    """Bundle stems at `path`: a stem, its .json/.safetensors, or a folder searched below."""
    if path.is_dir():
        stems = sorted(p.with_suffix("") for p in path.rglob("model.json"))
        if not stems:
            fail(f"--model: no trained bundle (model.json) under {path}")
        return stems
    stem = path.with_suffix("") if path.suffix in (".json", ".safetensors") else path
    if not stem.with_suffix(".json").exists():
        fail(f"--model: {stem.with_suffix('.json')} not found")
    return [stem]


def _bundle_forecasts(model: Path, frames: dict, wanted: list[str] | None,
                      log_home: Path | None = None) -> list[dict]:
    from causalcast.models.bundle import TrainedModel
    from causalcast.weights import WeightsError

    out = []
    for stem in find_bundles(model):
        try:
            bundle = TrainedModel.load(stem)
        except WeightsError as exc:
            fail(f"{stem}: {exc}")
        trained = [s for s in bundle.meta.get("symbols", []) if s in frames]
        chosen = wanted or trained or list(frames)
        with clear_errors():
            forecasts = bundle.forecast({s: frames[s] for s in chosen})
        for f in forecasts.values():
            out.append({"bundle": str(stem), **http_vocabulary(f.to_dict()),
                        "evidence": None, "evidence_missing": NO_EVIDENCE})
        if log_home is not None:
            _log_bundle_forecasts(log_home, stem, bundle, forecasts, frames)
    return out


def _log_bundle_forecasts(log_home: Path, stem: Path, bundle: Any, forecasts: dict,
                          frames: dict) -> None:
    """`--log-home`: a bundle's forecasts appended under the registry version that holds
    exactly this bundle's artifact (docs/monitoring.md)."""
    from causalcast.monitoring.predlog import log_cli_forecasts
    from causalcast.registry import RegistryError

    cfg = bundle.model.config
    with clear_errors():
        try:
            log_cli_forecasts(
                log_home, Path(f"{stem}.safetensors").read_bytes(),
                None if cfg.likelihood == "gaussian" else float(cfg.df),
                list(forecasts.values()),
                {s: float(frames[s]["close"].iloc[-1]) for s in forecasts})
        except RegistryError as exc:
            raise ValueError(f"--log-home {log_home}: {exc}") from None


def http_vocabulary(forecast: dict[str, Any]) -> dict[str, Any]:
    """A `Forecast.to_dict()` in the names the HTTP service answers with (``forecasts``,
    ``horizon``, ``mean_log_return``, ``p_up``, ``lower_80`` ...), so a script reads the
    CLI's ``--json`` and the service's response the same way."""
    rows = []
    for h in forecast["horizons"]:
        row = {"horizon": h["h"], "mean_log_return": h["mean"], "scale": h["scale"],
               "p_up": h["prob_up"]}
        for level, (lower, upper) in sorted(h["intervals"].items()):
            row[f"lower_{level}"], row[f"upper_{level}"] = lower, upper
        rows.append(row)
    rest = {k: v for k, v in forecast.items() if k != "horizons"}
    return {**rest, "forecasts": rows}


def registry_forecasts(home: Path, frames: dict, symbols: list[str], *,
                       log: bool = True) -> list[dict[str, Any]]:
    """The service's answers (`ModelHub`) for each symbol's bars, from `home`'s production
    versions; one clear line (exit 2) when a symbol cannot be answered. With ``log`` every
    answer is appended to the registry's prediction log, as the service's are."""
    from causalcast.registry import Registry, RegistryError
    from causalcast.serving.hub import ModelHub
    from causalcast.serving.loading import UnknownSymbol

    try:
        Registry.open(home, create=False).close()
    except RegistryError as exc:
        fail(f"--home {home}: {exc}")
    # Loading problems are reported below, one line each, not as the service's log records.
    logging.getLogger("causalcast.serving").setLevel(logging.CRITICAL)
    prediction_log = None
    if log:
        from causalcast.monitoring.predlog import PredictionLog

        prediction_log = PredictionLog(home, source="predict")
    hub = ModelHub(home, cache_items=0, prediction_log=prediction_log)
    try:
        try:
            state = hub.reload()
        except Exception as exc:
            fail(f"--home {home}: the registry cannot be read ({exc})")
        for problem in state.problems:
            err_console.print(f"[yellow]not used[/] {problem.version}: {problem.reason}",
                              highlight=False)
        if not state.models:
            fail(f"--home {home}: no production model could be loaded")
        out = []
        for symbol in symbols:
            try:
                prepared = hub.prepare(symbol, frames[symbol])
            except UnknownSymbol:
                fail(f"symbol {symbol}: no production model serves it and no production "
                     "global model (with a pooled scaler) can")
            except (KeyError, ValueError) as exc:
                fail(str(exc).strip("'\""))
            out.append(asyncio.run(hub.answer(prepared, use_cache=False)))
        return out
    finally:
        hub.close()


def _print_table(out: list[dict]) -> None:
    rows = []
    for f in out:     # bundle files and the service answer in the same vocabulary
        ev = f.get("evidence")
        if ev is None:
            note = "no evidence (bundle file)"
        else:
            acc = "n/a" if ev["accuracy"] is None else f"{ev['accuracy']:.3f}"
            note = (f"{f['model_scope']}{' unseen' if f['unseen_symbol'] else ''}; acc {acc}; "
                    f"beats naive {'yes' if ev['beats_naive'] else 'no'}")
        for h in f["forecasts"]:
            rows.append((f["model"], f["symbol"], f["as_of"][:10], h["horizon"],
                         f"{h['mean_log_return']:+.4f}", f"{h['p_up']:.3f}",
                         f"[{h['lower_80']:+.3f}, {h['upper_80']:+.3f}]", note))
    console.print(table("Forecasts (log returns from the last bar)",
                        ["model", "symbol", "as of", "horizon", "mean_log_return", "p_up",
                         "80% interval", "evidence"], rows))
    for f in out:
        for warning in f.get("warnings", []):
            console.print(f"[bold yellow]warning[/] {f['symbol']}: {warning}", highlight=False)


def predict(
    model: Path = typer.Option(None, "--model", help="A bundle (stem or .json) or a folder of "
                               "them, e.g. the --out of train; default: the registry's "
                               "production models (--home)."),
    home: Path = typer.Option(Path(".causalcast"), "--home", help="Registry whose production "
                              "models answer (when no --model is given)."),
    data: str | None = data_option("Bars to forecast from (each symbol's latest bar)."),
    synthetic: str | None = SYNTHETIC_ALIAS,
    symbols: str | None = typer.Option(None, "--symbols", "--symbol",
                                       help="Comma-separated symbols; default: all."),
    seed: int = typer.Option(0, "--seed", hidden=True, help="Deprecated with --synthetic "
                             "(write the seed into --data synthetic:N,BARS,STRENGTH,SEED)."),
    as_json: bool = JSON_OPTION,
    log: bool = typer.Option(True, "--log/--no-log", metavar="",
                             help="Append the registry's answers to "
                             "its prediction log, as the service does (docs/monitoring.md)."),
    log_home: Path | None = typer.Option(None, "--log-home", help="With --model: append the "
                                         "bundle's forecasts to this registry's prediction "
                                         "log (the bundle must be a registered version)."),
) -> None:
    """Forecast every horizon from each symbol's latest bar, with the evidence behind it."""
    from causalcast.data.resolve import resolve_source

    source = data_source(data, synthetic, seed)
    wanted = [s.strip().upper() for s in symbols.split(",")] if symbols else None
    with clear_errors():
        frames, _ = resolve_source(source, wanted)
    if model is not None:
        out = _bundle_forecasts(model, frames, wanted, log_home)
    else:
        if log_home is not None:
            fail("--log-home: only with --model (registry forecasts are logged into --home)")
        out = registry_forecasts(home, frames, wanted or list(frames), log=log)
    if as_json:
        print_json(out)
    else:
        _print_table(out)
