"""One self-contained HTML report (PNG figures embedded as base64) and the same numbers as JSON.

`write_report(results, path)` takes one or more results of
`walkforward.evaluate_predictions` (e.g. the synthetic universe and the MSFT sample) and
writes ``path`` (HTML) and ``path.with_suffix(".json")``. The HTML holds nothing it would have
to fetch: figures are data URIs, styles inline, and the full result is embedded in a
``<script type="application/json" id="causalcast-results">`` element, so the file can be
mailed or archived and still be checked number by number.

Each section starts with the honest summary ("ridge does not beat the naive baseline ..."),
then the leaderboard with p-values and grades, then the figures: accuracy per horizon with
Wilson intervals beside always-up (and the Bayes ceiling on synthetic data), equity curves
after costs against buy-and-hold on a log axis with the drawdown and rolling Sharpe ratio
below, forecast against realised with 80 % / 95 % intervals, and the reliability diagram;
detail tables follow, folded (``<details>``) so the page stays short.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from causalcast.evaluation import plots
from causalcast.io import atomic_write_json, atomic_write_text

BASELINES = ("naive", "drift")

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1150px;color:#222;line-height:1.4}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
h3{margin-top:1.6rem}table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:right}
th{background:#f4f4f4}td{white-space:nowrap}td:first-child,th:first-child{text-align:left}
.yes{color:#0a7a2f;font-weight:600}.no{color:#b3261e;font-weight:600}
.summary li{margin:.25rem 0}.warn{background:#fff4e5;border-left:4px solid #f0a020;
padding:.4rem .8rem}img{max-width:100%;border:1px solid #eee;margin:.4rem 0}
.note{color:#666;font-size:.85rem}.scroll{overflow-x:auto}
.figs{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-start}
details{margin:.6rem 0}summary{cursor:pointer;font-weight:600;font-size:1.05rem}
"""


# --------------------------------------------------------------------------- formatting


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return html.escape(x)
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}f}"


def _p(p: Any) -> str:
    if p is None:
        return "–"
    return "&lt; 0.001" if p < 0.001 else f"{p:.3f}"


def _pct(x: Any) -> str:
    return "–" if x is None or isinstance(x, str) else f"{100 * x:.1f} %"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            "</table></div>")


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _verdict(flag: bool) -> str:
    return '<span class="yes">yes</span>' if flag else '<span class="no">no</span>'


# --------------------------------------------------------------------------- figures


def _figure(make: Callable[[], bytes], alt: str) -> str:
    try:
        return _img(make(), alt)
    except Exception as exc:  # a figure that cannot be drawn must not lose the numbers
        return f'<p class="warn">figure "{html.escape(alt)}" not drawn: {html.escape(str(exc))}</p>'


def _figures(result: Mapping[str, Any]) -> str:
    models = result["models"]
    label = result.get("label") or "predictions"
    parts = []
    rows = {name: {int(h): (hm["direction"]["accuracy"], hm["direction"]["ci_low"],
                            hm["direction"]["ci_high"]) for h, hm in m["metrics"].items()}
            for name, m in models.items() if name != "naive"}
    reference = max(models.values(), key=lambda m: m["n_test"])
    up = {int(h): hm["direction"]["up_rate"] for h, hm in reference["metrics"].items()}
    ceiling = {int(h): hm["ceiling"]["accuracy"] for h, hm in reference["metrics"].items()
               if hm.get("ceiling")} or None
    parts.append(_figure(lambda: plots.accuracy_by_horizon(
        rows, up, ceiling, f"{label}: directional accuracy per horizon (95 % Wilson)"),
        "accuracy per horizon"))
    curves = {n: m["backtest"]["equity"] for n, m in models.items() if n != "naive"}
    dates = {n: m["backtest"]["dates"] for n, m in models.items() if n != "naive"}
    bh = result.get("buy_and_hold")
    if bh:
        curves["buy-and-hold"], dates["buy-and-hold"] = bh["equity"], bh["dates"]
    cost = result.get("cost_bps", 0) + result.get("slippage_bps", 0)
    parts.append(_figure(lambda: plots.equity_curves(
        curves, f"{label}: equal-weight book after {cost:g} bps per unit turnover", dates),
        "equity curves"))
    best = _best_model(result)
    if best:
        ex = models[best]["excerpt"]
        bands = {f"{k} interval": (v[0], v[1]) for k, v in
                 sorted(ex["bands"].items(), key=lambda kv: -float(kv[0].rstrip("%")))}
        parts.append(_figure(lambda: plots.forecast_vs_realised(
            ex["realised"], ex["mean"], bands,
            f"{label}: {best}, {ex['symbol']}, h={ex['h']}, last {len(ex['dates'])} test bars"),
            "forecast vs realised"))
    tables = {n: m["metrics"][str(m["horizons"][0])]["reliability"]
              for n, m in models.items()
              if n not in BASELINES and "reliability" in m["metrics"][str(m["horizons"][0])]}
    if tables:
        parts.append(_figure(lambda: plots.reliability(
            tables, f"{label}: reliability of P(up)"), "reliability diagram"))
    return "\n".join(parts)


def _best_model(result: Mapping[str, Any]) -> str | None:
    for row in result.get("leaderboard", []):
        if row["model"] not in BASELINES:
            return row["model"]
    return next(iter(result["models"]), None)


# --------------------------------------------------------------------------- tables


def _leaderboard(result: Mapping[str, Any]) -> str:
    rows = []
    for r in result["leaderboard"]:
        grade = r["grade_shown"] if r["grade_shown"] == r["grade_computed"] else \
            f"{r['grade_shown']} (rubric {r['grade_computed']})"
        rows.append([
            html.escape(r["model"]), str(r["h"]), str(r["n"]),
            f"{_f(r['accuracy'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}]",
            _f(r["always_up"]), _f(r["ceiling"]), _f(r["mae"], 4), _f(r["rmse"], 4),
            _f(r["mape_pct"], 2), _f(r["crps"], 5), _f(r["coverage_90"]), _f(r["brier"], 4),
            _f(r["ece"]), _f(r["dm_stat"], 2), _p(r["p_dm"]), _p(r["p_direction"]),
            _f(r["sharpe"], 2), _pct(r["max_drawdown"]), grade, _verdict(r["beats_naive"])])
    return _table(["model", "h", "n", "accuracy [95 % CI]", "always up", "ceiling", "MAE",
                   "RMSE", "MAPE %", "CRPS", "cov 90 %", "Brier", "ECE", "DM stat",
                   "p DM", "p direction", "Sharpe", "max DD", "grade",
                   "beats naive @5 %"], rows)


def _horizon_tables(result: Mapping[str, Any]) -> str:
    rows = []
    for name, m in result["models"].items():
        for h, hm in m["metrics"].items():
            cov = {c["nominal"]: c["observed"] for c in hm.get("coverage", [])}
            d = hm["direction"]
            rows.append([
                html.escape(name), h, str(hm["n"]),
                f"{_f(d['accuracy'])} [{_f(d['ci_low'])}, {_f(d['ci_high'])}]",
                _f(d["up_rate"]), _f(hm.get("ceiling", {}).get("accuracy")),
                _f(hm["dm_vs_naive"]["statistic"], 2), _p(hm["dm_vs_naive"]["p_a_better"]),
                _p(hm["direction_test"]["p_value"]), _p(hm["pt_pooled"]["p_value"]),
                _f(hm.get("nll")), _f(hm.get("crps"), 5),
                " / ".join(_f(cov.get(k), 2) for k in (0.5, 0.8, 0.9, 0.95)),
                _f(hm.get("brier"), 4), _f(hm.get("reliability", {}).get("ece"))])
    return _table(["model", "h", "n", "accuracy [95 % CI]", "always up", "ceiling",
                   "DM stat", "p DM (one-sided)", "p direction (clustered)", "p PT (pooled)",
                   "NLL", "CRPS", "coverage 50/80/90/95 %", "Brier", "ECE"], rows)


def _fold_table(result: Mapping[str, Any]) -> str:
    rows = []
    for name, m in result["models"].items():
        h = str(m["horizons"][0])
        for fold, v in m["metrics"][h]["folds"].items():
            rows.append([html.escape(name), fold, f"{v['start']} – {v['end']}", str(v["n"]),
                         f"{_f(v['accuracy'])} [{_f(v['ci_low'])}, {_f(v['ci_high'])}]",
                         _f(v["up_rate"])])
    return _table(["model", "fold", "test dates", "n", "accuracy [95 % CI]", "always up"],
                  rows)


def _backtest_table(result: Mapping[str, Any]) -> str:
    def row(name: str, s: Mapping[str, Any]) -> list[str]:
        return [html.escape(name), _pct(s["total_return"]), _pct(s["annualised_return"]),
                _f(s["sharpe"], 2), _f(s["sortino"], 2), _pct(s["max_drawdown"]),
                _f(s["calmar"], 2), _pct(s["hit_rate"]), _f(s["profit_factor"], 2),
                _f(s["turnover"], 1), _pct(s["exposure"])]

    rows = [row(n, m["backtest"]["stats"]) for n, m in result["models"].items()]
    if result.get("buy_and_hold"):
        rows.append(row("buy-and-hold", result["buy_and_hold"]["stats"]))
    return _table(["strategy", "total return", "annualised", "Sharpe", "Sortino", "max DD",
                   "Calmar", "hit rate", "profit factor", "turnover / yr", "exposure"], rows)


def _pairwise_table(result: Mapping[str, Any]) -> str:
    rows = []
    for h, tests in result.get("pairwise", {}).items():
        for t in tests:
            rows.append([html.escape(t["a"]), html.escape(t["b"]), h, str(t["n_dates"]),
                         _f(t["statistic"], 2), _p(t["p_value"]), _p(t["p_a_better"]),
                         _p(t["p_b_better"])])
    if not rows:
        return "<p>Only one model: nothing to compare.</p>"
    return _table(["model a", "model b", "h", "dates", "DM stat", "p two-sided",
                   "p a better", "p b better"], rows)


def _ensemble_block(result: Mapping[str, Any]) -> str:
    e = result.get("ensemble") or {}
    if not e:
        return "<p>No ensemble was built.</p>"
    if "skipped" in e:
        return f"<p>Ensemble skipped: {html.escape(e['skipped'])}</p>"
    parts = [f"<p>{html.escape(e['method'])} of {html.escape(', '.join(e['candidates']))}; "
             f"weights fitted on each fold's validation rows only (test rows poisoned: "
             f"weights {'unchanged' if e['isolation_check']['passed'] else 'CHANGED'}). "
             f"Best single model by validation MSE: {html.escape(e['best_single'])}.</p>"]
    rows = []
    for fold, by_h in e["weights"].items():
        for h, w in by_h.items():
            rows.append([fold, h] + [_f(w.get(c)) for c in e["candidates"]])
    parts.append(_table(["fold", "h", *e["candidates"]], rows))
    vs = e.get("vs_best_single") or {}
    if vs:
        parts.append(_table(
            ["h", "accuracy ensemble", f"accuracy {e['best_single']}", "DM stat",
             "p ensemble better"],
            [[h, _f(v["accuracy_ensemble"]), _f(v["accuracy_best_single"]),
              _f(v["statistic"], 2), _p(v["p_ensemble_better"])] for h, v in vs.items()]))
    return "\n".join(parts)


# --------------------------------------------------------------------------- document


def _section(result: Mapping[str, Any]) -> str:
    data = result["data"]
    label = result.get("label") or "predictions"
    summary = "".join(f"<li>{html.escape(s)}</li>" for s in result.get("summary", []))
    warnings = "".join(f'<p class="warn">{html.escape(w)}</p>'
                       for w in result.get("warnings", []))
    audit = result["audit"]
    return f"""
<h2>{html.escape(label)}</h2>
<p>{len(data['symbols'])} symbol(s), {data['n_folds']} walk-forward fold(s), test dates
{data['test_start']} – {data['test_end']}, models {html.escape(', '.join(data['models']))};
costs {result['cost_bps']:g} bps + slippage {result['slippage_bps']:g} bps per unit turnover;
leakage audit: <b>{html.escape(audit['status'])}</b>; tests at {result['alpha']:g}.</p>
{warnings}
<h3>Summary</h3><ul class="summary">{summary}</ul>
<h3>Leaderboard (shortest horizon, pooled test rows of every fold)</h3>
{_leaderboard(result)}
<p class="note">p DM: Diebold–Mariano (HLN, h−1 HAC lags) of squared log-return errors against
the zero-return forecast, per-date means across symbols, one-sided (model better).
p direction: Pesaran–Timmermann null tested with date-clustered variance. A grade above F is
shown only when the leakage audit passed and both p-values are below {result['alpha']:g}.</p>
<h3>Figures</h3>
<div class="figs">{_figures(result)}</div>
<details><summary>Every horizon</summary>
{_horizon_tables(result)}</details>
<details><summary>Accuracy per fold</summary>
{_fold_table(result)}</details>
<details open><summary>Backtest (decided at the close of t, filled at the next bar, after
costs)</summary>
{_backtest_table(result)}</details>
<details><summary>Models against each other (Diebold–Mariano)</summary>
{_pairwise_table(result)}</details>
<details><summary>Ensemble</summary>
{_ensemble_block(result)}</details>
"""


def render_html(results: Sequence[Mapping[str, Any]], title: str) -> str:
    payload = json.dumps(list(results), default=str).replace("</", "<\\/")
    sections = "\n".join(_section(r) for r in results)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Every number is out of sample: walk-forward test ranges after purge and
embargo, never seen by training, ensemble weights or tuning. The same numbers are in the JSON
file beside this one and embedded below.</p>
{sections}
<script type="application/json" id="causalcast-results">{payload}</script>
</body></html>
"""


def write_report(results: Mapping[str, Any] | Sequence[Mapping[str, Any]], path: str | Path,
                 title: str = "causalcast walk-forward evaluation") -> Path:
    """Write the HTML report to `path` and the same numbers to `path` with suffix .json."""
    items = [results] if isinstance(results, Mapping) else list(results)
    if not items:
        raise ValueError("results: nothing to report")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path.with_suffix(".json"), items[0] if len(items) == 1 else items)
    atomic_write_text(path, render_html(items, title))
    return path
