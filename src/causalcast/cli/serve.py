"""`causalcast serve`: the HTTP service (uvicorn) over the registry's promoted models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

# glibc allocator settings measured to halve small-MLP inference latency on 2 cores (see the
# options benchmark), and single-threaded BLAS: each worker process owns one core, and OpenBLAS
# threads (the option jets' matmuls) would only contend with the other workers. They only take
# effect at process start, hence the re-exec below.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "268435456",
                 "MALLOC_TOP_PAD_": "67108864", "OMP_WAIT_POLICY": "PASSIVE",
                 "OPENBLAS_NUM_THREADS": "1"}


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    home: Path = typer.Option(Path(".causalcast"), "--home", help="Registry to serve from."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    api_key: str = typer.Option(None, "--api-key", envvar="CAUSALCAST_API_KEY",
                                help="Require this X-API-Key on every route but health."),
    cache_items: int = typer.Option(50_000, "--cache-items", help="0 disables the cache."),
    poll: float = typer.Option(2.0, "--poll", help="Seconds between registry checks for "
                               "promotions (0: only /v1/admin/reload)."),
    data: str = typer.Option(None, "--data", help="Bars to forecast from (default: the data "
                             "each model was trained on)."),
    max_body: int = typer.Option(2 * 1024 * 1024, "--max-body", help="Bytes; larger is 413."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes (each loads the "
                                "models and watches the registry itself)."),
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Serve forecasts, option prices, Greeks and probabilities over HTTP."""
    missing = {k: v for k, v in ALLOCATOR_ENV.items() if k not in os.environ}
    if missing and os.environ.get("CAUSALCAST_NO_REEXEC") != "1":
        os.environ.update(missing)
        os.environ["CAUSALCAST_NO_REEXEC"] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "causalcast", *sys.argv[1:]])
    import json

    import uvicorn

    from causalcast.serving.app import CONFIG_ENV, create_app
    from causalcast.serving.config import ServeConfig

    config = ServeConfig(home=home, api_key=api_key or None, cache_items=cache_items,
                         poll_seconds=poll, data_source=data, max_body_bytes=max_body)
    typer.echo(f"causalcast serving {home} on http://{host}:{port} (docs: /docs)")
    options = {"host": host, "port": port, "log_level": log_level, "loop": "uvloop",
               "http": "httptools", "access_log": False}
    if workers == 1:
        uvicorn.run(create_app(config), **options)
        return
    os.environ[CONFIG_ENV] = json.dumps({
        "home": str(home), "api_key": config.api_key, "cache_items": cache_items,
        "poll_seconds": poll, "data_source": data, "max_body_bytes": max_body})
    uvicorn.run("causalcast.serving.app:app_from_env", factory=True, workers=workers,
                **options)
