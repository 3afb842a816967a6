// Evaluation: the walk-forward report's numbers, interactive - leaderboard with intervals,
// equity on a log axis with drawdowns and rolling Sharpe, accuracy per horizon, reliability.
/* global uPlot */
import { api, problem } from "../api.js";
import { chart, COLOURS } from "../charts.js";
import { $, ready, section, status, table } from "../dom.js";
import { escapeHtml, num, pct, pctInterval, pValue } from "../format.js";
import { drawdown, epoch, rollingSharpe } from "../series.js";

const BASELINES = new Set(["naive"]);

function leaderboard(result) {
  return table(["model", "h (bars)", "n", "direction accuracy (95 % CI)", "always up", "Bayes ceiling", "p DM", "p direction", "CRPS", "coverage 90 %", "ECE", "Sharpe /yr", "max drawdown", "grade", "beats naive"],
    result.leaderboard.map((r) => [escapeHtml(r.model), String(r.h), String(r.n), pctInterval(r.accuracy, r.ci_low, r.ci_high), pct(r.always_up),
      pct(r.ceiling), pValue(r.p_dm), pValue(r.p_direction), num(r.crps, 5), pct(r.coverage_90), num(r.ece, 3), num(r.sharpe), pct(r.max_drawdown),
      `<span class="grade">${escapeHtml(r.grade_shown)}</span>${r.grade_shown !== r.grade_computed ? ` <span class="note">(rubric ${escapeHtml(r.grade_computed)})</span>` : ""}`,
      r.beats_naive ? '<span class="ok">yes</span>' : '<span class="bad">no</span>']));
}

function curves(result) {
  const tables = [];
  const labels = [];
  for (const [name, m] of Object.entries(result.models)) {
    if (BASELINES.has(name)) continue;
    tables.push([m.backtest.dates.map(epoch), m.backtest.equity]);
    labels.push(name);
  }
  if (result.buy_and_hold) {
    tables.push([result.buy_and_hold.dates.map(epoch), result.buy_and_hold.equity]);
    labels.push("buy-and-hold");
  }
  return { data: uPlot.join(tables), labels };
}

function equityCharts(el, result) {
  const { data, labels } = curves(result);
  const series = labels.map((l, i) => ({ label: l, colour: l === "buy-and-hold" ? "#000000" : COLOURS[i % COLOURS.length], dash: l === "buy-and-hold" ? [6, 4] : undefined }));
  const cost = (result.cost_bps || 0) + (result.slippage_bps || 0);
  el.innerHTML = '<div id="eq"></div><div id="dd"></div><div id="rs"></div>';
  chart($("#eq", el), data, series, { time: true, logY: true, yLabel: "growth of 1 (log)", title: `Equity after ${cost} bps per unit turnover (log axis; drag to zoom, click a legend entry to hide it)` });
  const dd = [data[0], ...data.slice(1).map((ys) => drawdown(ys).map((v) => (v == null ? null : 100 * v)))];
  chart($("#dd", el), dd, series, { time: true, yLabel: "drawdown %", height: 180, title: "Drawdown from the running peak (%)" });
  const rs = [data[0], ...data.slice(1).map((ys) => rollingSharpe(ys, 63))];
  chart($("#rs", el), rs, series, { time: true, yLabel: "Sharpe /yr", height: 180, title: "Rolling Sharpe ratio, 63 test bars, annualised" });
}

function horizonChart(el, result) {
  const names = Object.keys(result.models).filter((n) => !BASELINES.has(n));
  const hs = [...new Set(names.flatMap((n) => Object.keys(result.models[n].metrics).map(Number)))].sort((a, b) => a - b);
  const x = hs;
  const ref = result.models[names[0]].metrics;
  const series = [];
  const ys = [];
  names.forEach((n, i) => {
    ys.push(hs.map((h) => result.models[n].metrics[h]?.direction.accuracy ?? null));
    series.push({ label: `${n} accuracy`, colour: COLOURS[i % COLOURS.length], points: true });
  });
  ys.push(hs.map((h) => ref[h]?.direction.up_rate ?? null));
  series.push({ label: "always up", colour: "#000000", dash: [4, 4], points: true });
  const rows = names.flatMap((n) => hs.map((h) => {
    const d = result.models[n].metrics[h]?.direction;
    return d ? [escapeHtml(n), String(h), pctInterval(d.accuracy, d.ci_low, d.ci_high), pct(d.up_rate)] : null;
  }).filter(Boolean));
  el.innerHTML = '<div id="hz"></div>' + table(["model", "h (bars)", "accuracy (95 % Wilson CI)", "always up"], rows);
  chart($("#hz", el), [x, ...ys], series, { xLabel: "horizon (bars)", xSplits: hs, yLabel: "direction accuracy", height: 220, title: "Direction accuracy per horizon" });
}

function reliabilityChart(el, result) {
  const names = Object.keys(result.models).filter((n) => n !== "naive" && n !== "drift");
  const tables = [];
  const labels = [];
  for (const n of names) {
    const m = result.models[n];
    const rel = m.metrics[String(m.horizons[0])].reliability;
    if (!rel) continue;
    const pts = rel.mean_predicted.map((p, i) => [p, rel.observed_rate[i]]).filter(([p, o]) => p != null && o != null).sort((a, b) => a[0] - b[0]);
    tables.push([pts.map((p) => p[0]), pts.map((p) => p[1])]);
    labels.push(`${n} (ECE ${num(rel.ece, 3)})`);
  }
  if (!tables.length) {
    el.innerHTML = "<p>No reliability table in this report.</p>";
    return;
  }
  tables.push([[0, 1], [0, 1]]);
  labels.push("perfect calibration");
  const data = uPlot.join(tables);
  const series = labels.map((l, i) => (i === labels.length - 1 ? { label: l, colour: "#7F7F7F", dash: [4, 4] } : { label: l, colour: COLOURS[i % COLOURS.length], points: true }));
  chart(el, data, series, { xLabel: "forecast P(up)", yLabel: "realised up-rate", height: 300, xRange: [0, 1], yRange: [0, 1], title: "Reliability of P(up), shortest horizon" });
}

export async function render(root) {
  const r = await api("/v1/evaluation/report");
  if (!r.ok) {
    root.innerHTML = `<p class="error">${escapeHtml(problem(r, "Evaluation report"))}</p>`;
    ready();
    return;
  }
  const results = r.data.results;
  const options = results.map((res, i) => `<option value="${i}">${escapeHtml(res.label || `result ${i + 1}`)}</option>`).join("");
  root.innerHTML = `<form class="inline"><label for="dataset">dataset<select id="dataset">${options}</select></label></form><div id="result"></div>`;
  const show = (i) => {
    const res = results[i];
    const d = res.data;
    $("#result").innerHTML = `<p>${d.symbols.length} symbol(s), ${d.n_folds} walk-forward folds, test dates ${escapeHtml(d.test_start)} to ${escapeHtml(d.test_end)}; leakage audit <b>${escapeHtml(res.audit.status)}</b>; tests at ${res.alpha}.</p>`
      + (res.warnings || []).map((w) => `<p class="warn">${escapeHtml(w)}</p>`).join("")
      + section("Summary", `<ul>${(res.summary || []).map((s) => `<li>${escapeHtml(s)}</li>`).join("")}</ul>`)
      + section("Leaderboard (shortest horizon, pooled test rows)", leaderboard(res))
      + section("Equity, drawdown and rolling Sharpe", '<div id="equity"></div>')
      + section("Accuracy per horizon", '<div id="horizons"></div>')
      + section("Reliability", '<div id="reliability"></div>');
    equityCharts($("#equity"), res);
    horizonChart($("#horizons"), res);
    reliabilityChart($("#reliability"), res);
  };
  $("#dataset").addEventListener("change", (e) => show(Number(e.target.value)));
  show(0);
  status(`${results.length} evaluated dataset(s).`);
  ready();
}
