"""HTTP service under load: wrk, 32 connections, >= 30 s per scenario, against `causalcast
serve` started here. Goals on 2 cores: /v1/forecast p99 <= 25 ms uncached and <= 5 ms cached;
/v1/options/price with 1000 options p99 <= 25 ms; zero errors.

The uncached scenario runs a server started with `--cache-items 0`, so every request goes
through the micro-batched forward pass. The prediction log (docs/monitoring.md) is on by
default; each forecast scenario also runs with `--no-prediction-log`: both servers run side by
side and wrk alternates between them (`--rounds`, default 3), and the ratio of the median p99s
log on / log off (goal <= 1.10) is printed with the per-round ratios and the machine's load
average. Needs `wrk` (Debian
package `wrk`)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import report

GOALS_MS = {"forecast (cached)": 5.0, "forecast (uncached)": 25.0,
            "options/price, 1000 options": 25.0,
            "options/price/columns, 1000 options": 25.0}
# Context rows without a goal: the same option batch from one connection (the service time a
# client sees when the server is not saturated) and without Greeks.
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


LOG_TOLERANCE = 0.10


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * UNITS[unit]


def parse_wrk(out: str) -> dict:
    pct = {int(p): _ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s))", out,
                                                   re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(x) for x in sock.groups()) if sock else 0)
    return {"p50_ms": pct.get(50), "p90_ms": pct.get(90), "p99_ms": pct.get(99),
            "requests_per_s": rps, "requests": total, "errors": errors}


def run_wrk(url: str, body: dict | bytes, seconds: int, connections: int, workdir: Path,
            headers: dict[str, str] | None = None) -> dict:
    """wrk POSTing ``body`` (a dict sent as JSON, or raw bytes such as an Arrow stream, read
    by the Lua script from a file so binary bodies need no escaping)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    body_file = workdir / "body.bin"
    body_file.write_bytes(raw)
    headers = headers or {"Content-Type": "application/json"}
    script = workdir / "post.lua"
    script.write_text('wrk.method = "POST"\n'
                      + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n"
                                for k, v in headers.items())
                      + f'local f = io.open({json.dumps(str(body_file))}, "rb")\n'
                      "wrk.body = f:read(\"*all\")\nf:close()\n")
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True)
    return {**parse_wrk(out.stdout), "raw": out.stdout}


def option_batch(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"options": [
        {"spot": float(s), "strike": 100.0, "tau": float(t), "sigma": float(v), "rate": 0.03,
         "div": 0.01, "kind": "call" if i % 2 else "put"}
        for i, (s, t, v) in enumerate(zip(rng.uniform(60, 180, n), rng.uniform(0.05, 2, n),
                                          rng.uniform(0.1, 0.8, n), strict=True))]}


def as_columns(batch: dict) -> dict:
    """The same options as one array per field (POST /v1/options/price/columns)."""
    rows = batch["options"]
    return {"columns": {k: [o[k] for o in rows] for k in rows[0]},
            **{k: v for k, v in batch.items() if k != "options"}}


def merged(runs: list[dict]) -> dict:
    """Several wrk runs of one scenario as one row: the median p50/p90/p99 over the runs (each
    run's own percentiles are kept too), requests and errors summed."""
    out = {k: float(np.median([r[k] for r in runs])) for k in ("p50_ms", "p90_ms", "p99_ms",
                                                                  "requests_per_s")}
    return {**out, "p99_ms_per_round": [r["p99_ms"] for r in runs],
            "requests": sum(r["requests"] for r in runs),
            "errors": sum(r["errors"] for r in runs), "raw": "\n".join(r["raw"] for r in runs)}


def log_pairs(home: Path, pairs: list[tuple[str, list[str]]], body: dict, args: argparse.
              Namespace, workdir: Path) -> dict[str, dict]:
    """Each forecast scenario with the prediction log on and off: both servers run side by
    side and wrk alternates between them for ``--rounds`` rounds (on-off, off-on, ...), so the
    machine's load drifts over both alike; the ratio compares median p99s over the rounds."""
    from tests.support.serving import Server

    results = {}
    for name, flags in pairs:
        servers = {name: Server(home, *SERVER_ARGS, "--workers", str(args.workers), *flags),
                   f"{name}, log off": Server(home, *SERVER_ARGS, "--workers",
                                              str(args.workers), *flags,
                                              "--no-prediction-log")}
        runs: dict[str, list[dict]] = {k: [] for k in servers}
        try:
            for server in servers.values():
                server.wait_ready(timeout=300)
                run_wrk(server.url + "/v1/forecast", body, 3, args.connections, workdir)
            for r in range(args.rounds):
                for key in (list(servers) if r % 2 == 0 else list(servers)[::-1]):
                    runs[key].append(run_wrk(servers[key].url + "/v1/forecast", body,
                                             args.seconds, args.connections, workdir))
        finally:
            for server in servers.values():
                server.stop()
        results.update({k: {**merged(v), "connections": args.connections}
                        for k, v in runs.items()})
    return results


SERVER_ARGS = ("--poll", "0", "--monitor-every", "0")


def main(argv: list[str] | None = None, *, name: str = "serving", only: str = "") -> None:
    """Run the scenarios whose name contains `only` (or `--only`) and write
    results/<name>.json; `benchmarks.serving_prediction_log` is this with the forecast
    scenarios only, under its own name, so it never overwrites the full results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="log on/off alternations per "
                        "forecast scenario (each --seconds long)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--only", default=only, help="run only scenarios whose name contains "
                        "this text")
    parser.add_argument("--results", default=name, help="results/<name>.json to write")
    parser.add_argument("--home", type=Path, help="Registry with promoted models (default: "
                        "train and promote small models into a temporary one).")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.serving import Server, train_and_register

    workdir = Path(tempfile.mkdtemp(prefix="cc-serve-bench-"))
    home = args.home
    if home is None:
        home = workdir / "home"
        train_and_register(home, models=("lstm",))
    forecast = {"symbol": "SYN000"}   # the default (best validation loss) promoted model
    options = option_batch(1000)
    c = args.connections
    # The prediction log is on by default; the "log off" peers measure what it costs (same
    # run, same machine load, interleaved): p99 with the log must stay within LOG_TOLERANCE.
    pairs = [p for p in (("forecast (cached)", []),
                         ("forecast (uncached)", ["--cache-items", "0"]))
             if args.only in p[0] or args.only in f"{p[0]}, log off"]
    scenarios = [("options/price, 1000 options", [], "/v1/options/price", options, c),
                 ("options/price, 1000 options, 1 connection", [], "/v1/options/price",
                  options, 1),
                 ("options/price, 1000 options, no Greeks", [], "/v1/options/price",
                  {**options, "greeks": False}, c),
                 ("options/price/columns, 1000 options", [], "/v1/options/price/columns",
                  as_columns(options), c),
                 ("options/price/columns, 1000 options, 1 connection", [],
                  "/v1/options/price/columns", as_columns(options), 1)]
    scenarios = [s for s in scenarios if args.only in s[0]]
    results = log_pairs(home, pairs, forecast, args, workdir)
    for name, flags, path, body, connections in scenarios:
        server = Server(home, *SERVER_ARGS, "--workers", str(args.workers), *flags)
        try:
            server.wait_ready(timeout=300)
            run_wrk(server.url + path, body, 3, connections, workdir)   # warm-up
            res = run_wrk(server.url + path, body, args.seconds, connections, workdir)
        finally:
            server.stop()
        results[name] = {**res, "connections": connections}
    rows = []
    for name, res in results.items():
        goal = GOALS_MS.get(name)
        res["goal_p99_ms"] = goal
        res["meets_goal"] = None if goal is None else (res["p99_ms"] <= goal
                                                        and res["errors"] == 0)
        rows.append([name, res["connections"], f"{res['p50_ms']:.2f}", f"{res['p99_ms']:.2f}",
                     f"{res['requests_per_s']:.0f}", res["errors"],
                     "-" if goal is None else f"{goal:.0f}",
                     "-" if goal is None else ("yes" if res["meets_goal"] else "NO")])
    log_cost = {}
    for name, _ in pairs:
        on, off = results[name], results[f"{name}, log off"]
        ratio = on["p99_ms"] / off["p99_ms"]
        per_round = [a / b for a, b in zip(on["p99_ms_per_round"], off["p99_ms_per_round"],
                                           strict=True)]
        log_cost[name] = {"p99_ratio_log_on_vs_off": ratio,
                          "p99_ratio_per_round": per_round,
                          "p50_ratio_log_on_vs_off": on["p50_ms"] / off["p50_ms"],
                          "throughput_ratio_log_on_vs_off":
                              on["requests_per_s"] / off["requests_per_s"],
                          "within_tolerance": ratio <= 1 + LOG_TOLERANCE}
        print(f"prediction log, {name}: median p99 log on / log off = {ratio:.3f} "
              f"({'within' if ratio <= 1 + LOG_TOLERANCE else 'OUTSIDE'} "
              f"{LOG_TOLERANCE:.0%}); per round "
              + ", ".join(f"{x:.2f}" for x in per_round))
    load = os.getloadavg()
    print(f"machine load average during the run (1/5/15 min): {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} on {os.cpu_count()} cores")
    report(args.results, f"HTTP service, wrk {args.connections} connections x {args.seconds} s"
           f" (log on/off: median of {args.rounds} alternating rounds)",
           ["scenario", "conns", "p50 ms", "p99 ms", "req/s", "errors", "goal p99 ms",
            "meets goal"],
           rows, {"connections": args.connections, "seconds": args.seconds,
                  "rounds": args.rounds,
                  "server_workers": args.workers, "prediction_log_cost": log_cost,
                  "load_average": load, "cores": os.cpu_count(),
                  "results": {k: {kk: vv for kk, vv in v.items() if kk != "raw"}
                              for k, v in results.items()},
                  "wrk_output": {k: v["raw"] for k, v in results.items()}})


if __name__ == "__main__":
    main()
