"""`causalcast serve`: the HTTP service (uvicorn) over the registry's promoted models."""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path

import typer

from causalcast.cli.common import (
    console,
    err_console,
    fail,
    json_option,
    print_json,
    print_json_line,
    table,
)
from causalcast.cli.sources import data_option, store_option
from causalcast.serving.config import DOCS_MODES

# glibc allocator settings measured to halve small-MLP inference latency on 2 cores (see the
# options benchmark), and single-threaded BLAS: each worker process owns one core, and OpenBLAS
# threads (the option jets' matmuls) would only contend with the other workers. They only take
# effect at process start, hence the re-exec below.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "268435456",
                 "MALLOC_TOP_PAD_": "67108864", "OMP_WAIT_POLICY": "PASSIVE",
                 "OPENBLAS_NUM_THREADS": "1"}


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


KEY_ENV = "CAUSALCAST_API_KEY"
KEY_FILE_ENV = "CAUSALCAST_API_KEY_FILE"
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def read_api_key(path: Path) -> str:
    """The key from a file (first line, surrounding whitespace dropped): the way to pass it
    without putting it in the command line, where any user can read it with `ps`."""
    try:
        key = path.read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--api-key-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
    if not key or not key[0].strip():
        fail(f"--api-key-file {path}: the file is empty")
    return key[0].strip()


def check_home(text: str) -> Path | str:
    """The --home folder, or a ``postgresql://`` registry (artifacts from
    ``CAUSALCAST_ARTIFACTS_URL``; several replicas may serve one). Another URL is refused (as a
    path it would silently become a folder named 'http:'); a folder without a registry is
    served with a warning (options only)."""
    from causalcast.registry.urls import is_database_url, redact

    if is_database_url(text):
        from causalcast.registry import Registry, RegistryError

        try:  # a wrong URL or an unreachable server is one line now, not a 503 later
            Registry.open(text, create=False).close()
        except RegistryError as exc:
            fail(f"--home {redact(text)}: {exc}")
        return text
    if URL_SCHEME.match(text):
        fail(f"--home {text}: expected a folder holding a causalcast registry or a "
             "postgresql:// URL, got another URL")
    home = Path(text)
    if home.exists() and not home.is_dir():
        fail(f"--home {home}: not a folder")
    from causalcast.serving.app import registry_exists

    if not registry_exists(home):
        err_console.print(f"[yellow]warning:[/] no model registry under {home}: serving option "
                          "pricing only; forecasts answer 503 until one is created "
                          "(restart to pick it up)", highlight=False)
    return home


def serve(
    home_text: str = typer.Option(".causalcast", "--home", envvar="CAUSALCAST_REGISTRY_URL",
                                  help="Registry folder to serve from, or a postgresql:// URL "
                                  "(artifacts from CAUSALCAST_ARTIFACTS_URL)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", help="TCP port, 1-65535."),
    api_key_file: Path = typer.Option(None, "--api-key-file", envvar=KEY_FILE_ENV,
                                      help="Require the key in this file (first line) as "
                                      "X-API-Key on every route but health. Preferred: the "
                                      "key stays out of the command line."),
    api_key: str = typer.Option(None, "--api-key", envvar=KEY_ENV,
                                help=f"The key itself; better set {KEY_ENV} or use "
                                "--api-key-file, since a command-line argument is visible "
                                "to every user in `ps`."),
    docs: str = typer.Option("open", "--docs", help="/docs, /redoc and /openapi.json: "
                             "'open' (no key needed), 'key' (behind the API key) or 'off'."),
    cache_items: int = typer.Option(50_000, "--cache-items", help="0 disables the cache."),
    poll: float = typer.Option(2.0, "--poll", help="Seconds between registry checks for "
                               "promotions (0: only /v1/admin/reload)."),
    data: str = data_option("Bars to forecast from (default: the data each model was "
                            "trained on)."),
    store: str = store_option("Market data store answering symbols that have no model of "
                              "their own (with the global model); default: HOME/data."),
    max_body: int = typer.Option(2 * 1024 * 1024, "--max-body", help="Bytes; larger is 413."),
    workers: int = typer.Option(1, "--workers", help="Server processes (each loads the "
                                "models and watches the registry itself)."),
    log_level: str = typer.Option("warning", "--log-level"),
    check: bool = typer.Option(False, "--check", metavar="", help="Check the options and "
                               "what would be served (every production version's artifact "
                               "hashed and its header checked), then exit without listening: "
                               "0 all servable, 1 a version would fail to load."),
    as_json: bool = json_option("With --check: the report as JSON; otherwise the startup "
                                "object as one JSON line on stdout before listening."),
    prediction_log: bool = typer.Option(True, "--prediction-log/--no-prediction-log", metavar="",
                                        help="Append every answered forecast to the "
                                        "registry's prediction log (docs/monitoring.md)."),
    log_flush_ms: float = typer.Option(200.0, "--log-flush-ms", help="Longest a logged "
                                       "forecast waits in memory (SIGKILL loses at most this)."),
    monitor_every: float = typer.Option(60.0, "--monitor-every", help="Seconds between "
                                        "scoring/drift passes (0: none)."),
) -> None:
    """Serve forecasts, option prices, Greeks and probabilities over HTTP."""
    if not 1 <= port <= 65535:
        fail(f"--port: expected 1-65535, got {port}")
    if workers < 1:
        fail(f"--workers: expected at least 1, got {workers}")
    if docs not in DOCS_MODES:
        fail(f"--docs: expected one of {', '.join(DOCS_MODES)}, got {docs!r}")
    if not math.isfinite(poll) or poll < 0:
        fail(f"--poll: expected seconds >= 0, got {poll}")
    if not math.isfinite(log_flush_ms) or log_flush_ms <= 0:
        fail(f"--log-flush-ms: expected milliseconds > 0, got {log_flush_ms}")
    if not math.isfinite(monitor_every) or monitor_every < 0:
        fail(f"--monitor-every: expected seconds >= 0, got {monitor_every}")
    if max_body < 1:
        fail(f"--max-body: expected a positive number of bytes, got {max_body}")
    if api_key_file is not None and api_key:
        fail("--api-key-file and --api-key (or CAUSALCAST_API_KEY): give only one")
    key = read_api_key(api_key_file) if api_key_file is not None else (api_key or None)
    if docs == "key" and not key:
        fail("--docs key: needs an API key (--api-key-file or CAUSALCAST_API_KEY)")
    home = check_home(home_text)
    if check:
        report_servable(home, as_json)
        return
    missing = {k: v for k, v in ALLOCATOR_ENV.items() if k not in os.environ}
    if missing and os.environ.get("CAUSALCAST_NO_REEXEC") != "1":
        os.environ.update(missing)
        os.environ["CAUSALCAST_NO_REEXEC"] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "causalcast", *sys.argv[1:]])
    import json

    import uvicorn

    from causalcast.serving.app import CONFIG_ENV, create_app
    from causalcast.serving.config import ServeConfig

    config = ServeConfig(home=home, api_key=key, cache_items=cache_items, poll_seconds=poll,
                         data_source=data, max_body_bytes=max_body, docs=docs, store=store,
                         prediction_log=prediction_log, log_flush_ms=log_flush_ms,
                         monitor_seconds=monitor_every)
    where = {"open": " (docs: /docs)", "key": " (docs: /docs, with the key)", "off": ""}[docs]
    from causalcast.registry.urls import redact

    if as_json:
        print_json_line({"command": "serve", "home": redact(str(home)),
                         "url": f"http://{host}:{port}", "docs": docs, "workers": workers})
    else:
        typer.echo(f"causalcast serving {redact(str(home))} on http://{host}:{port}{where}")
    options = {"host": host, "port": port, "log_level": log_level, "loop": "uvloop",
               "http": "httptools", "access_log": False}
    if workers == 1:
        uvicorn.run(create_app(config), **options)
        return
    # The workers read their settings (the key included) from the environment, which only
    # this user can read, never from argv.
    os.environ[CONFIG_ENV] = json.dumps({
        "home": str(home), "api_key": config.api_key, "cache_items": cache_items,
        "poll_seconds": poll, "data_source": data, "max_body_bytes": max_body, "docs": docs,
        "store": store, "prediction_log": prediction_log, "log_flush_ms": log_flush_ms,
        "monitor_seconds": monitor_every})
    uvicorn.run("causalcast.serving.app:app_from_env", factory=True, workers=workers,
                **options)


def report_servable(home: Path, as_json: bool) -> None:
    """What `serve` would load from `home`: each production version and whether its artifact
    is sound (the same check promotion makes). Exit 1 when one is not."""
    from causalcast.registry import ArtifactError, Registry, RegistryError
    from causalcast.serving.app import registry_exists

    rows: list[dict] = []
    if registry_exists(home):
        try:
            with Registry.open(home, create=False) as reg:
                for version in reg.versions(stage="production"):
                    try:
                        reg.check_loadable(version)
                        problem = None
                    except ArtifactError as exc:
                        problem = str(exc)
                    rows.append({"version": version.ref, "ok": problem is None,
                                 "problem": problem})
        except RegistryError as exc:
            fail(str(exc))
    ok = all(r["ok"] for r in rows)
    if as_json:
        print_json({"home": str(home), "registry": registry_exists(home), "ok": ok,
                    "production": rows})
    else:
        console.print(table(f"Would serve from {home}: {len(rows)} production version(s)",
                            ["version", "servable", "problem"],
                            [(r["version"], "yes" if r["ok"] else "NO", r["problem"] or "")
                             for r in rows]))
    if not ok:
        raise typer.Exit(1)
