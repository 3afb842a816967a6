// Symbol: recent closes with the forecast fan (80 % and 95 % intervals per horizon), P(up)
// per horizon, and the serving model's recorded evidence beside it: walk-forward accuracy next
// to live accuracy, the live monitor's status and reasons, and live interval coverage.
import { api, problem } from "../api.js";
import { chart } from "../charts.js";
import { $, ready, section, status, table } from "../dom.js";
import { escapeHtml, evidence, pct, price, recorded } from "../format.js";
import { liveTruth, reasonsList, reportsByVersion, statusBadge } from "../monitor.js";
import { epoch, fanPoints } from "../series.js";

function fanChart(el, bars, forecast) {
  const fan = fanPoints(forecast);
  const hist = bars.dates.map(epoch);
  const future = fan.slice(1).map((p) => epoch(p.date));
  const x = [...hist, ...future];
  const pad = (n) => Array(n).fill(null);
  const closes = [...bars.close, ...pad(future.length)];
  const col = (k) => [...pad(hist.length - 1), ...fan.map((p) => p[k])];
  const data = [x, closes, col("hi95"), col("hi80"), col("mean"), col("lo80"), col("lo95")];
  const series = [
    { label: "close", colour: "#1d2430" },
    { label: "95 % upper", colour: "#9ecae1", width: 1 },
    { label: "80 % upper", colour: "#3182bd", width: 1 },
    { label: "expected price", colour: "#D55E00", width: 2, points: true },
    { label: "80 % lower", colour: "#3182bd", width: 1 },
    { label: "95 % lower", colour: "#9ecae1", width: 1 },
  ];
  chart(el, data, series, {
    time: true, yLabel: "price", height: 320,
    title: `${forecast.symbol}: last ${bars.close.length} closes and the forecast fan (80 % / 95 %)`,
    bands: [{ series: [2, 6], fill: "rgba(49,130,189,0.12)" }, { series: [3, 5], fill: "rgba(49,130,189,0.25)" }],
  });
}

/** live vs walk-forward for the serving version, from the monitor's latest report */
function liveSection(ref, monitor) {
  if (!monitor.ok) return section("Live vs walk-forward", `<p class="note">${escapeHtml(problem(monitor, "Live monitor"))}</p>`, "live");
  const t = liveTruth(reportsByVersion(monitor.data)[ref]);
  const head = `<dt>monitor status</dt><dd>${statusBadge(t.status)}</dd>`;
  if (!t.scored) {
    return section("Live vs walk-forward", `<div class="card"><dl>${head}
      <dt>live direction accuracy</dt><dd data-testid="live-accuracy">${t.live}</dd>
      <dt>walk-forward (95 % CI)</dt><dd data-testid="walk-forward-accuracy">${t.walkForward}</dd></dl>${reasonsList(t.reasons)}</div>`, "live");
  }
  const card = `<div class="card"><dl>${head}
    <dt>live direction accuracy (95 % CI)</dt><dd data-testid="live-accuracy">${t.live}</dd>
    <dt>walk-forward (95 % CI)</dt><dd data-testid="walk-forward-accuracy">${t.walkForward}</dd>
    <dt>p live below walk-forward</dt><dd>${t.pBelow}</dd>
    <dt>80 % interval: outcomes inside</dt><dd data-testid="coverage-80">${t.cover80}</dd>
    <dt>95 % interval: outcomes inside</dt><dd data-testid="coverage-95">${t.cover95}</dd></dl>${reasonsList(t.reasons)}</div>`;
  const rows = t.perHorizon.map((r) => [String(r.horizon), r.accuracy, r.cover80, r.cover95, r.crps]);
  return section("Live vs walk-forward", `${card}
    <p class="note">Live: this service's forecasts of ${escapeHtml(ref)} scored against the bars that followed (all its symbols, each bar and horizon once; h = ${t.horizon} bar(s), as the walk-forward figure). Intervals are 95 % Wilson intervals.</p>
    ${table(["horizon (bars)", "live accuracy (95 % CI)", "80 % coverage", "95 % coverage", "CRPS (log return)"], rows, { caption: "Live scores per horizon" })}`, "live");
}

export async function render(root) {
  const served = await api("/v1/models");
  if (!served.ok) {
    root.innerHTML = `<p class="error">${escapeHtml(problem(served, "Served symbols"))}</p>`;
    ready();
    return;
  }
  const symbols = [...new Set(served.data.models.map((m) => m.symbol))];
  if (!symbols.length) {
    root.innerHTML = "<p>No symbol is served: promote a model first (see Models).</p>";
    ready();
    return;
  }
  const wanted = new URLSearchParams(location.search).get("symbol");
  const symbol = symbols.includes(wanted) ? wanted : symbols[0];
  root.innerHTML = `<form class="inline" method="get"><label for="symbol">symbol<select id="symbol" name="symbol">${symbols.map((s) => `<option${s === symbol ? " selected" : ""}>${escapeHtml(s)}</option>`).join("")}</select></label><button type="submit">Show</button></form>
    <div class="grid"><div><div id="fan"></div><div id="horizons"></div></div><aside id="evidence" aria-label="Evidence"></aside></div>`;
  const [bars, forecast, versions, monitor] = await Promise.all([
    api(`/v1/symbols/${encodeURIComponent(symbol)}/bars?n=120`),
    api("/v1/forecast", { method: "POST", body: { symbol } }),
    api("/v1/registry/versions?stage=production"),
    api("/v1/monitor"),
  ]);
  if (!forecast.ok) {
    $("#fan").innerHTML = `<p class="error">${escapeHtml(problem(forecast, "Forecast"))}</p>`;
    ready();
    return;
  }
  const f = forecast.data;
  const sorted = [...f.forecasts].sort((a, b) => a.horizon - b.horizon);
  if (bars.ok) fanChart($("#fan"), bars.data, f);
  else $("#fan").innerHTML = `<p class="error">${escapeHtml(problem(bars, "Price history"))}</p>`;
  $("#horizons").innerHTML = section("Forecast per horizon", table(
    ["horizon (bars)", "P(up)", "expected price", "80 % interval (price)", "95 % interval (price)", "mean log return"],
    fanPoints(f).slice(1).map((p, i) => [String(sorted[i].horizon), pct(sorted[i].p_up), price(p.mean), `${price(p.lo80)} to ${price(p.hi80)}`,
      `${price(p.lo95)} to ${price(p.hi95)}`, `${(100 * sorted[i].mean_log_return).toFixed(2)} %`]),
    { caption: `as of ${f.as_of.slice(0, 10)}, last close ${price(f.last_close)}; model ${f.model}` }));
  const ref = f.model_versions[0];
  const v = versions.ok ? versions.data.versions.find((x) => x.ref === ref) : null;
  const e = v && evidence(recorded(v));
  $("#evidence").innerHTML = section(`Evidence of ${ref}`, e ? `<div class="card"><dl>
      <dt>direction accuracy (95 % CI)</dt><dd>${e.accuracy}</dd><dt>always up</dt><dd>${e.alwaysUp}</dd>
      <dt>p DM vs naive</dt><dd>${e.pDM}</dd><dt>p direction</dt><dd>${e.pDirection}</dd>
      <dt>Sharpe /yr</dt><dd>${e.sharpe}</dd><dt>grade</dt><dd><span class="grade">${escapeHtml(e.grade)}</span></dd>
      <dt>test rows</dt><dd>${e.n} (h = ${e.horizon})</dd></dl></div>
      <p class="note">Walk-forward test, all symbols of the model pooled.</p>`
    : '<p class="warn">No walk-forward evaluation recorded with this version.</p>') + liveSection(ref, monitor);
  status(`${symbol}: forecast from ${f.model_versions.join(", ")}${f.cached ? " (cached)" : ""}.`);
  ready();
}
