// Overview: each production model with its recorded walk-forward evidence and, beside it, its
// live monitor status with the reasons and live accuracy; the service's readiness and the
// latest bar per served symbol.
import { api, problem } from "../api.js";
import { $, ready, section, status, table } from "../dom.js";
import { escapeHtml, evidence, recorded } from "../format.js";
import { liveTruth, reasonsList, reportsByVersion, statusBadge } from "../monitor.js";

/** the live half of a card: status, reasons, live accuracy against the walk-forward one */
function liveBlock(v, monitor) {
  if (!monitor.ok) return `<p class="note">Live monitor: ${escapeHtml(problem(monitor, "GET /v1/monitor"))}</p>`;
  const t = liveTruth(reportsByVersion(monitor.data)[v.ref]);
  const live = t.scored
    ? `<dt>live direction accuracy (95 % CI), h = ${t.horizon}</dt><dd data-testid="live-accuracy">${t.live}</dd>
       <dt>80 % interval coverage, live</dt><dd>${t.cover80}</dd>`
    : `<dt>live direction accuracy</dt><dd data-testid="live-accuracy">${t.live}</dd>`;
  return `<h4>Live since promotion</h4><dl><dt>monitor status</dt><dd>${statusBadge(t.status)}</dd>${live}</dl>${reasonsList(t.reasons)}`;
}

export async function render(root) {
  const [versions, served, health, monitor] = await Promise.all([
    api("/v1/registry/versions?stage=production"), api("/v1/models"), api("/readyz"),
    api("/v1/monitor")]);
  const h = health.data || {};
  status(`Service ${h.status || "unknown"}${h.detail ? ": " + h.detail : ""}`, h.status === "ok" ? "note" : "warn");
  let html = "";
  if (!versions.ok) {
    html += `<p class="error">${escapeHtml(problem(versions, "Production models"))}</p>`;
  } else if (!versions.data.versions.length) {
    html += section("Production models", "<p>No model is in production: nothing passed the promotion gates. See <a href=\"/ui/models\">Models</a>.</p>");
  } else {
    const cards = versions.data.versions.map((v) => {
      const e = evidence(recorded(v));
      const body = e ? `<dl>
        <dt>direction accuracy (95 % CI)</dt><dd>${e.accuracy}</dd>
        <dt>always-up baseline</dt><dd>${e.alwaysUp}</dd>
        <dt>edge over always-up</dt><dd>${e.edge}</dd>
        <dt>p Diebold-Mariano vs naive</dt><dd>${e.pDM}</dd>
        <dt>p direction (Pesaran-Timmermann)</dt><dd>${e.pDirection}</dd>
        <dt>Sharpe after costs (per year)</dt><dd>${e.sharpe}</dd>
        <dt>honest grade</dt><dd><span class="grade">${escapeHtml(e.grade)}</span></dd>
        <dt>test rows, horizon</dt><dd>n = ${e.n}, h = ${e.horizon} bar(s)</dd></dl>`
        : `<p class="warn">No walk-forward evaluation recorded with this version.</p>`;
      return `<article class="card" data-version="${escapeHtml(v.ref)}"><h3>${escapeHtml(v.ref)}</h3>${body}${liveBlock(v, monitor)}
        <p class="note">since ${escapeHtml(v.created_at.slice(0, 19))} UTC &middot; <a href="/ui/models#v${v.version_id}">details of ${escapeHtml(v.ref)}</a></p></article>`;
    });
    html += section("Production models and their evidence", `<div class="cards">${cards.join("")}</div>
      <p class="note">Out-of-sample walk-forward test rows pooled over folds. p-values are one-sided (the model beats the naive forecast); a grade above F needs a passed leakage audit and both p below 0.05. Live: the forecasts this service answered, scored as their outcomes arrive (each version, symbol, bar and horizon once); ok, watch, degraded or unknown (nothing scored yet), with the monitor's reasons.</p>`);
  }
  if (served.ok) {
    const rows = served.data.models.map((m) => [
      `<a href="/ui/symbol?symbol=${encodeURIComponent(m.symbol)}">${escapeHtml(m.symbol)}</a>`,
      escapeHtml(m.version), escapeHtml(m.stage), escapeHtml((m.as_of || "").slice(0, 10)),
      statusBadge(m.monitor_status)]);
    html += section("Latest data per symbol", rows.length ? table(["symbol", "served by", "role", "last bar", "live status"], rows)
      : "<p>No symbol is served.</p>");
  } else {
    html += `<p class="error">${escapeHtml(problem(served, "Served symbols"))}</p>`;
  }
  root.innerHTML = html;
  ready();
}
