"""Training and inference speed of the forecasting models, and the Mamba block vs mambapy.

    python -m benchmarks.training [--quick] [--skip-train] [--threads 2]

Prints rich tables and writes benchmarks/results/training.json with the environment (torch
threads, CPU count, load average, OMP_/MKL_/MALLOC_ variables). Goals (issue 3):

* training one symbol (2520 bars, lookback 60, all ~30 indicators, up to 20 epochs) on 2
  threads: <= 20 s per model — measured with early stopping (what `run_job` does) and with
  early stopping off (all 20 epochs, the worst case);
* Mamba block forward+backward vs the pure-PyTorch `mambapy` on the same shapes
  (B=32, d_model=32, L=64, 2 layers, N=16, expand 2): throughput ratio >= 1.0, and time
  against sequence length 64...1024 growing linearly;
* single-window inference latency per model: <= 2 ms.

Timings on a shared machine are noisy: each figure is the median of several repetitions, and
the load average at the start is recorded beside it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from benchmarks.common import environment as common_environment
from causalcast.cli.common import table
from causalcast.io import atomic_write_json
from causalcast.models import build_model
from causalcast.models.bundle import TrainedModel
from causalcast.models.mamba import MambaConfig, ResidualBlock
from causalcast.training import JobSpec, run_job
from causalcast.training.job import PROFILES

RESULTS = Path(__file__).parent / "results" / "training.json"
MODELS = ("lstm", "tcn", "mamba", "ridge", "naive", "drift")
console = Console()


def environment(threads: int) -> dict:
    return {**common_environment(), "requested_threads": threads,
            "load_average_at_start": os.getloadavg(), "processor": platform.processor()}


def _median_ms(fn, reps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench_training(threads: int, quick: bool) -> list[dict]:
    """run_job on one synthetic symbol of 2520 bars, quick profile, lookback 60."""
    rows = []
    for early_stop in (True, False) if not quick else (True,):
        for name in MODELS:
            if not early_stop and name in ("ridge", "naive", "drift"):
                continue
            with tempfile.TemporaryDirectory() as out:
                spec = JobSpec(model=name, data="synthetic:1,2520,0.325,0", out_dir=out,
                               lookback=60, threads=threads, seed=0,
                               train_params={} if early_stop else {"patience": 10**6})
                start = time.perf_counter()
                result = run_job(spec)
                wall = time.perf_counter() - start
            if result.status != "ok":
                raise RuntimeError(f"{name}: {result.error}")
            epochs = result.train["epochs"]
            rows.append({"model": name, "early_stopping": early_stop, "epochs": epochs,
                         "fit_seconds": result.train["seconds"], "job_seconds": wall,
                         "seconds_per_epoch": result.train["seconds"] / max(epochs, 1),
                         "test_dir_acc": result.metrics["dir_acc"],
                         "ceiling": result.metrics.get("ceiling"),
                         "goal_seconds": 20.0, "meets_goal": wall <= 20.0})
            console.print(f"  trained {name:6s} early_stop={early_stop}: {wall:5.1f} s, "
                          f"{epochs} epochs", highlight=False)
    return rows


def _stack(cfg: MambaConfig) -> torch.nn.Module:
    return torch.nn.Sequential(*(ResidualBlock(cfg) for _ in range(2)))


def bench_mamba(quick: bool) -> dict:
    """Our Mamba blocks (full sequence, blocked parallel scan) vs mambapy, same shapes."""
    from mambapy.mamba import Mamba
    from mambapy.mamba import MambaConfig as PyConfig

    batch, d_model, n_state = 32, 32, 16
    torch.manual_seed(0)
    lengths = (64, 128, 256) if quick else (64, 128, 256, 512, 1024)
    reps = 3 if quick else 5
    rows = []
    ours_cfg = MambaConfig(n_features=1, n_horizons=1, lookback=64, d_model=d_model,
                           n_layers=2, d_state=n_state, expand=2, d_conv=4)
    ours = _stack(ours_cfg)
    theirs = Mamba(PyConfig(d_model=d_model, n_layers=2, d_state=n_state, expand_factor=2,
                            d_conv=4))
    n_ours = sum(p.numel() for p in ours.parameters())
    n_theirs = sum(p.numel() for p in theirs.parameters())
    for length in lengths:
        x = torch.randn(batch, length, d_model)

        def ours_step(x=x):
            ours.zero_grad(set_to_none=True)
            ours(x).square().mean().backward()

        def theirs_step(x=x):
            theirs.zero_grad(set_to_none=True)
            theirs(x).square().mean().backward()

        t_ours = _median_ms(ours_step, reps)
        t_theirs = _median_ms(theirs_step, reps)
        rows.append({"length": length, "ours_ms": t_ours, "mambapy_ms": t_theirs,
                     "ratio": t_theirs / t_ours})
        console.print(f"  mamba L={length:5d}: ours {t_ours:8.1f} ms, mambapy "
                      f"{t_theirs:8.1f} ms", highlight=False)
    # linear growth: slope of log(time) against log(L)
    logs = np.log([r["length"] for r in rows])
    slope_ours = float(np.polyfit(logs, np.log([r["ours_ms"] for r in rows]), 1)[0])
    slope_theirs = float(np.polyfit(logs, np.log([r["mambapy_ms"] for r in rows]), 1)[0])
    # the forecaster's own use: only the last output of the last block is needed
    x = torch.randn(batch, 64, d_model)
    last = ResidualBlock(ours_cfg)

    def last_step():
        last.zero_grad(set_to_none=True)
        last(x, last_only=True).square().mean().backward()

    def full_step():
        last.zero_grad(set_to_none=True)
        last(x)[:, -1:].square().mean().backward()

    return {"batch": batch, "d_model": d_model, "d_state": n_state, "expand": 2,
            "layers": 2, "params_ours": n_ours, "params_mambapy": n_theirs,
            "by_length": rows, "ratio_at_64": rows[0]["ratio"],
            "loglog_slope_ours": slope_ours, "loglog_slope_mambapy": slope_theirs,
            "one_block_last_output_ms": _median_ms(last_step, reps * 2),
            "one_block_full_sequence_ms": _median_ms(full_step, reps * 2)}


def bench_latency(quick: bool, threads: int) -> list[dict]:
    """One window (1, 60, F) through each quick-profile model, and through the bundle, with
    `threads` torch threads (1 by default: a single window gains nothing from a second
    thread, and serving workers run one thread each)."""
    torch.set_num_threads(threads)
    from causalcast.config import FeatureConfig, SplitConfig
    from causalcast.data.resolve import resolve_source
    from causalcast.training.data import build_training_data

    frames, _ = resolve_source("synthetic:1,800,0.325,0")
    data = build_training_data(frames, FeatureConfig(lookback=60), SplitConfig())
    window = data.x(data.rows("test")[-1:])
    reps = 100 if quick else 400
    rows = []
    for name in MODELS:
        torch.manual_seed(0)
        model = build_model(name, n_features=len(data.feature_names), n_horizons=4,
                            lookback=60, **PROFILES["quick"]["models"].get(name, {}))
        if not model.trainable:
            tr = data.rows("train")
            model.fit_closed_form(data.x_last(tr), data.y_std[tr], data.zero_point)
        model.eval()
        bundle = TrainedModel(model=model, feature_names=data.feature_names, lookback=60,
                              horizons=data.horizons, scalers=data.scalers,
                              target_mean=data.target_mean, target_std=data.target_std)
        x = torch.from_numpy(window)

        def forward(model=model, x=x):
            with torch.inference_mode():
                model(x)

        forward_ms = _median_ms(forward, reps, warmup=20)
        bundle_ms = _median_ms(lambda b=bundle: b.predict_windows(window), reps, warmup=20)
        rows.append({"model": name, "threads": threads, "forward_ms": forward_ms,
                     "predict_windows_ms": bundle_ms, "goal_ms": 2.0,
                     "meets_goal": bundle_ms <= 2.0})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer lengths and repetitions")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--latency-threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = environment(args.threads)
    console.print(f"torch {env['torch']}, {env['torch_threads']} threads, "
                  f"{env['cpu_count']} CPUs, load {env['load_average_at_start']}")
    out: dict = {"environment": env}
    if not args.skip_train:
        out["training"] = bench_training(args.threads, args.quick)
        torch.set_num_threads(args.threads)
        console.print(table(
            "Training one symbol (2520 bars, lookback 60), goal <= 20 s",
            ["model", "early stop", "epochs", "fit s", "job s", "s/epoch", "test acc",
             "ceiling"],
            [[r["model"], r["early_stopping"], r["epochs"], f"{r['fit_seconds']:.1f}",
              f"{r['job_seconds']:.1f}", f"{r['seconds_per_epoch']:.2f}",
              f"{r['test_dir_acc']:.3f}", f"{r['ceiling']:.3f}"] for r in out["training"]]))
    out["mamba_vs_mambapy"] = m = bench_mamba(args.quick)
    console.print(table(
        f"Mamba 2 blocks fwd+bwd, B={m['batch']} d={m['d_model']} N={m['d_state']} "
        f"(log-log slope ours {m['loglog_slope_ours']:.2f}, mambapy "
        f"{m['loglog_slope_mambapy']:.2f}; 1.0 = linear)",
        ["L", "ours ms", "mambapy ms", "mambapy / ours"],
        [[r["length"], f"{r['ours_ms']:.1f}", f"{r['mambapy_ms']:.1f}", f"{r['ratio']:.2f}"]
         for r in m["by_length"]]))
    console.print(f"one block, L=64: last output only {m['one_block_last_output_ms']:.1f} ms, "
                  f"full sequence {m['one_block_full_sequence_ms']:.1f} ms (fwd+bwd)")
    out["latency"] = bench_latency(args.quick, args.latency_threads)
    console.print(table(
        f"Single-window inference (1 x 60 x F, {args.latency_threads} thread), goal <= 2 ms",
        ["model", "forward ms", "predict_windows ms (with P(up), intervals)"],
        [[r["model"], f"{r['forward_ms']:.3f}", f"{r['predict_windows_ms']:.3f}"]
         for r in out["latency"]]))
    out["load_average_at_end"] = os.getloadavg()
    atomic_write_json(RESULTS, out)
    console.print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
