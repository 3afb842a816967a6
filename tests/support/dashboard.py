"""A small registry shaped like the main job's (`causalcast run`), for the dashboard tests:
the real stages on a tiny synthetic universe - parallel walk-forward training of naive, drift
and ridge, evaluation with significance tests, evaluated versions promoted through the gates,
and the HTML/JSON report - so every page has real numbers to show."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from causalcast.audit import run_audit
from causalcast.config import load_settings
from causalcast.data.resolve import resolve_source
from causalcast.evaluation.report import write_report
from causalcast.pipeline import Dataset, evaluate_dataset, promote_evaluated, train_dataset

DATA = "synthetic:3,900,0.45,11"
MODELS = ("naive", "drift", "ridge")


def build_home(home: Path, workers: int = 2) -> list[dict]:
    """Train, evaluate, promote and report into `home`; returns the promotion rows."""
    frames, universe = resolve_source(DATA)
    settings = load_settings(overrides={"features": {"lookback": 12, "horizons": (1, 5)}},
                             environ={})
    ds = Dataset("synthetic", DATA, frames, run_audit(frames, settings, n_cuts=3), universe)
    train_dataset(ds, home=home, models=MODELS, n_folds=3, horizons=(1, 5), lookback=12,
                  seed=0, profile="quick", workers=workers)
    evaluate_dataset(ds)
    rows = promote_evaluated(ds, home)
    write_report([ds.evaluation], home / "report.html")
    return rows


# Live truth for the monitor panels: forecasts the service answers from past bars (the
# request's own `bars`) mature at once against the synthetic source, which holds the bars
# after them, so the service's monitor poll scores them on its next pass.
LIVE_ENDS = range(820, 880, 5)      # the last bar of each forecast's window (of 900)
WINDOW = 100                        # bars sent per forecast (lookback 12 + indicator warm-up)


def score_live_forecasts(url: str, key: str, timeout_s: float = 60.0) -> dict:
    """Ask the running service for forecasts from past bars of every symbol (and once from
    its own bars, as the Symbol page does), then wait until its monitor has scored every
    matured one; returns GET /v1/monitor's report of the production version."""
    frames, _ = resolve_source(DATA)
    headers = {"X-API-Key": key}
    for symbol, frame in frames.items():
        for end in LIVE_ENDS:
            window = frame.iloc[end - WINDOW:end]
            bars = [{"date": d.isoformat(), **{k: float(row[k]) for k in
                                               ("open", "high", "low", "close", "volume")}}
                    for d, row in window.iterrows()]
            r = httpx.post(f"{url}/v1/forecast", headers=headers,
                           json={"symbol": symbol, "bars": bars}, timeout=30)
            assert r.status_code == 200, r.text
        # today's forecast (never matures): logged now, so page visits add no new rows
        today = httpx.post(f"{url}/v1/forecast", headers=headers, json={"symbol": symbol},
                           timeout=30)
        assert today.status_code == 200, today.text
        served = today.json()["model_versions"][0]
    horizons = 2
    expected = len(frames) * len(LIVE_ENDS) * horizons
    deadline = time.time() + timeout_s
    while True:
        reports = httpx.get(f"{url}/v1/monitor", headers=headers).json()["reports"]
        report = next((r for r in reports if r["version"] == served), None)
        if report and report["distinct_scored"] >= expected:
            return report
        assert time.time() < deadline, f"monitor scored too few forecasts: {reports}"
        time.sleep(0.5)


# The strategy builder against POST /v1/options/strategy (test_dashboard_browser.py).
NUMBER = re.compile(r"-?[\d,]*\.?\d+")


def agrees(text: str, value: float, what: str) -> None:
    """The number at the start of ``text`` equals ``value`` to the precision it is shown with
    (a percentage is the value × 100)."""
    m = NUMBER.match(text.strip())
    assert m, f"{what}: no number in {text!r} (the service says {value})"
    shown = m.group().replace(",", "")
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    expected = 100 * value if text.strip().endswith("%") else value
    assert abs(float(shown) - expected) <= 0.5 * 10 ** -decimals + 1e-9, (what, text, value)


def page_shows(page: Any, api: dict) -> None:
    """Every number the strategy builder shows is the service's answer, with its units;
    a null is shown as the service's reason ("unbounded"), never as NaN."""
    out = page.locator("#strategy-out")
    testid = lambda name: out.get_by_test_id(name).inner_text()  # noqa: E731
    premium = testid("net-premium")
    agrees(premium, api["net_premium"], "net premium")
    assert ("debit" if api["net_premium"] > 0 else "credit") in premium, premium
    agrees(testid("horizon"), api["horizon_years"], "horizon")
    shown = [float(x.replace(",", "")) for x in NUMBER.findall(testid("breakevens"))]
    assert len(shown) == len(api["breakevens"]), (shown, api["breakevens"])
    if api["breakevens"]:
        for text, value in zip(testid("breakevens").split(", "), api["breakevens"],
                               strict=True):
            agrees(text, value, "breakeven")
    for field in ("max_profit", "max_loss"):
        text = testid(field.replace("_", "-"))
        if api[field] is None:
            assert text == api[f"{field}_reason"] and "unbounded" in text, (field, text)
        else:
            agrees(text, api[field], field)
    laws = api["distributions"]
    assert out.locator("[data-testid^='pop-']").count() == len(laws)
    for law, res in laws.items():
        agrees(testid(f"pop-{law}"), res["pop"], f"POP under {law}")
        agrees(testid(f"expected-pnl-{law}"), res["expected_pnl"], f"expected P&L, {law}")
    for i, leg in enumerate(api["legs"], 1):
        agrees(testid(f"leg-price-{i}"), leg["price"], f"leg {i} price")
    for greek, value in api["greeks"].items():
        agrees(testid(f"greek-{greek}"), value, greek)
    text = out.inner_text()
    assert api["units"]["money"] in text and api["greeks_units"]["theta"] in text
    assert "NaN" not in text and "undefined" not in text, text


def same_legs(sent: list[dict], expected: list[dict]) -> None:
    """The legs a page sent (or shows) are the expected ones, floats to 1e-12."""
    assert len(sent) == len(expected), (sent, expected)
    for a, b in zip(sent, expected, strict=True):
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-12)
                                            if isinstance(b[k], float) else a[k] == b[k]
                                            for k in b), (a, b)
