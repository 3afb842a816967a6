"""Monitoring end to end: a real service logs every forecast under 32 concurrent requests and
loses none on SIGTERM; retraining through the executor and the gates promotes a better model,
refuses a worse one, and the running service serves the new version without a restart; a
retrained version worse live is rolled back."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from threading import Thread
from typing import ClassVar

import httpx
import numpy as np
import pandas as pd
import pytest

from causalcast.registry import NewPrediction, Registry
from tests.support.serving import Server, train_and_register

pytestmark = pytest.mark.slow


def test_32_concurrent_forecasts_are_all_logged_and_sigterm_loses_none(tmp_path: Path) -> None:
    train_and_register(tmp_path, models=("ridge",))
    # The writer would wait a minute before writing: only the shutdown flush can save them.
    server = Server(tmp_path, "--log-flush-ms", "60000", "--monitor-every", "0").wait_ready()
    try:
        def ask(i: int) -> dict:
            r = httpx.post(server.url + "/v1/forecast",
                           json={"symbol": ("SYN000", "SYN001", "SYN002")[i % 3]}, timeout=30)
            assert r.status_code == 200, r.text
            return r.json()
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(ask, range(32)))
        registry = Registry.open(tmp_path, create=False)
        assert registry.meta.predictions() == []       # still queued in the service
        registry.close()
    finally:
        server.stop()                                  # SIGTERM
    # uvicorn re-raises the SIGTERM after its graceful shutdown: -15 is the clean exit
    assert server.proc.returncode in (0, -15)
    horizons = len(answers[0]["forecasts"])
    registry = Registry.open(tmp_path, create=False)
    logged = registry.meta.predictions()
    registry.close()
    assert len(logged) == 32 * horizons
    assert sum(p.cached for p in logged) == sum(a["cached"] for a in answers) * horizons
    assert all(a["monitor_status"] == "unknown" for a in answers)
    first = answers[0]["forecasts"][0]
    match = [p for p in logged if p.symbol == answers[0]["symbol"] and p.horizon == 1]
    assert match and match[0].scale == first["scale_log_return"]
    assert match[0].forecast == first


def _production_run(home: Path, model: str, gates: tuple[str, ...] | None) -> str:
    """A registry run of ``model`` with walk-forward folds and a final fit, evaluated, the
    evaluation attached, and promoted (through ``gates``)."""
    from causalcast.evaluation.walkforward import evaluate_predictions
    from causalcast.pipeline import attach_to_final_fits
    from causalcast.training.runner import Executor, RunSpec

    spec = RunSpec(data="synthetic:3,900,0.325,5", models=(model,), scopes=("global",),
                   folds=(0, 1, "final"), n_folds=2, horizons=(1, 5), lookback=20, seed=0)
    summary = Executor("inline").run(spec, home=home, audit=True, audit_cuts=2)
    from causalcast.data.resolve import resolve_source

    frames, universe = resolve_source(spec.data)
    evaluation = evaluate_predictions(Path(summary.out_dir) / "walk", frames,
                                      audit_passed=summary.audit_passed, ceiling=universe)
    registry = Registry.open(home)
    try:
        attached = attach_to_final_fits(registry, summary.run_id, evaluation)
        registry.promote(attached[model], reason="test", gates=gates)
        return attached[model]
    finally:
        registry.close()


class _Hook(BaseHTTPRequestHandler):
    events: ClassVar[list] = []

    def do_POST(self) -> None:
        self.events.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_retrain_promotes_a_better_model_refuses_a_worse_one_and_is_served(tmp_path):
    from causalcast.monitoring.alerts import AlertHook
    from causalcast.monitoring.retrain import check_rollbacks, retrain

    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    Thread(target=hook.serve_forever, daemon=True).start()
    alert = AlertHook(webhook=f"http://127.0.0.1:{hook.server_port}/alert")
    ridge_v1 = _production_run(tmp_path, "ridge", None)          # all default gates
    naive_v1 = _production_run(tmp_path, "naive", ("leakage_audit",))  # forced in
    server = Server(tmp_path, "--poll", "0.5", "--monitor-every", "0").wait_ready()
    try:
        result = retrain(tmp_path, when="always", backend="inline", n_folds=2,
                         alert=alert)
        rows = {r["name"]: r for r in result["retrained"]}
        assert rows["ridge/global"]["promoted"], result
        assert not rows["naive/global"]["promoted"]
        assert "significant_vs_naive" in rows["naive/global"]["reason"]
        ridge_v2 = rows["ridge/global"]["candidate"]
        assert ridge_v2 != ridge_v1
        deadline = time.time() + 30
        while time.time() < deadline:
            body = httpx.post(server.url + "/v1/forecast",
                              json={"symbol": "SYN000", "model": "ridge/global"}).json()
            if body["model_versions"] == [ridge_v2]:
                break
            time.sleep(0.3)
        assert body["model_versions"] == [ridge_v2]   # hot swap, no restart
        assert server.proc.poll() is None
    finally:
        server.stop()
    events = [e["event"] for e in _Hook.events]
    assert events.count("promoted") == 1 and events.count("refused") == 1
    promoted = next(e for e in _Hook.events if e["event"] == "promoted")
    assert promoted["version"] == ridge_v2 and promoted["replaced"] == ridge_v1

    # Worse live than its predecessor after N scored forecasts: rolled back.
    registry = Registry.open(tmp_path, create=False)
    old, new = registry.get_version(ridge_v1), registry.get_version(ridge_v2)
    rows_ = []
    for i in range(30):
        for v, err in ((old, 0.001), (new, 0.05)):
            rows_.append(NewPrediction(v.version_id, "SYN000", f"2020-01-{1 + i % 28:02d}T00:"
                                       f"{i:02d}:00", 1, 100.0, err, 0.01, None, {}, "2026-01-01",
                                       False, "test"))
    registry.meta.append_predictions(rows_)
    preds = registry.meta.predictions()
    registry.meta.record_outcomes([(p.forecast_id, p.horizon, 0.0, p.as_of)
                                  for p in preds])
    done = check_rollbacks(registry, 20, alert)
    assert done and done[0]["rolled_back_to"] == ridge_v1
    assert registry.production("ridge/global").ref == ridge_v1
    registry.close()
    hook.shutdown()
    assert any(e["event"] == "rolled_back" for e in _Hook.events)
    assert naive_v1


def test_replay_logs_scores_and_flags_the_planted_regime_change(tmp_path: Path) -> None:
    from causalcast.data.resolve import resolve_source
    from causalcast.monitoring.replay import replay
    from causalcast.pipeline import with_regime_change

    ref = _production_run(tmp_path, "ridge", None)
    frames, _ = resolve_source("synthetic:3,900,0.325,5")
    changed = with_regime_change(frames, 800, seed=5)
    for s in frames:   # untouched before the change, spliced on continuously after it
        pd.testing.assert_frame_equal(changed[s].iloc[:800], frames[s].iloc[:800])
        r_old = np.diff(np.log(frames[s]["close"].to_numpy()[800:]))
        r_new = np.diff(np.log(changed[s]["close"].to_numpy()[800:]))
        assert r_new.std() > 1.5 * r_old.std()    # 3x annual volatility, realised noisily
    result = replay(tmp_path, changed, 750, 10)
    registry = Registry.open(tmp_path, create=False)
    logged = registry.meta.predictions(registry.get_version(ref).version_id)
    registry.close()
    assert len(logged) == 3 * 151 * 2            # symbols x (150 new bars + the last old) x h
    report = result["reports"][0]
    assert report["version"] == ref and report["status"] == "degraded", report["reasons"]
    timeline = dict(result["timeline"][ref])
    assert all(status != "degraded" for bars, status in timeline.items() if bars <= 50)


def test_the_service_scores_on_its_poll_and_publishes_the_status(tmp_path: Path) -> None:
    from causalcast.data.resolve import resolve_source
    from causalcast.data.sources import write_ohlcv

    train_and_register(tmp_path, models=("ridge",))
    frames, _ = resolve_source("synthetic:3,900,0.325,5")
    bars = tmp_path / "bars"
    write_ohlcv({s: f.iloc[:850] for s, f in frames.items()}, bars)
    server = Server(tmp_path, "--data", str(bars), "--monitor-every", "0.5",
                    "--log-flush-ms", "20").wait_ready()
    try:
        for s in ("SYN000", "SYN001", "SYN002"):
            first = httpx.post(server.url + "/v1/forecast", json={"symbol": s}).json()
            assert first["monitor_status"] == "unknown"
        write_ohlcv(frames, bars)                        # the outcome bars arrive
        deadline = time.time() + 60
        while time.time() < deadline:
            models = httpx.get(server.url + "/v1/models").json()["models"]
            if all(m["monitor_status"] == "ok" for m in models):
                break
            time.sleep(0.5)
        assert models and all(m["monitor_status"] == "ok" for m in models), models
        again = httpx.post(server.url + "/v1/forecast", json={"symbol": "SYN000"}).json()
        assert again["monitor_status"] == "ok"
        metrics = httpx.get(server.url + "/metrics").text
        assert 'causalcast_monitor_status{status="ok"' in metrics
        assert httpx.get(server.url + "/readyz").json()["status"] == "ok"
        monitor = httpx.get(server.url + "/v1/monitor").json()
        assert monitor["every_seconds"] == 0.5
        (report,) = monitor["reports"]          # one production version: ridge/global
        assert report["version"] == models[0]["version"] and report["status"] == "ok"
        first = min(int(h) for h in report["live"])
        assert report["live"][str(first)]["direction"]["n"] >= 3   # every symbol scored
        assert report["scored"] >= 3 * 2
    finally:
        server.stop()
    registry = Registry.open(tmp_path, create=False)
    scored = registry.meta.predictions(scored=True)
    registry.close()
    assert len(scored) >= 3 * 2      # each symbol's horizons 1 and 5 matured
