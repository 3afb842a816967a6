// Overview: each production model with its recorded walk-forward evidence, the service's
// readiness and the latest bar per served symbol.
import { api, problem } from "../api.js";
import { $, ready, section, status, table } from "../dom.js";
import { escapeHtml, evidence } from "../format.js";

export async function render(root) {
  const [versions, served, health] = await Promise.all([
    api("/v1/registry/versions?stage=production"), api("/v1/models"), api("/readyz")]);
  const h = health.data || {};
  status(`Service ${h.status || "unknown"}${h.detail ? ": " + h.detail : ""}`, h.status === "ok" ? "note" : "warn");
  let html = "";
  if (!versions.ok) {
    html += `<p class="error">${escapeHtml(problem(versions, "Production models"))}</p>`;
  } else if (!versions.data.versions.length) {
    html += section("Production models", "<p>No model is in production: nothing passed the promotion gates. See <a href=\"/ui/models\">Models</a>.</p>");
  } else {
    const cards = versions.data.versions.map((v) => {
      const e = evidence(v.metrics);
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
      return `<article class="card"><h3>${escapeHtml(v.ref)}</h3>${body}
        <p class="note">since ${escapeHtml(v.created_at.slice(0, 19))} UTC &middot; <a href="/ui/models#v${v.version_id}">details of ${escapeHtml(v.ref)}</a></p></article>`;
    });
    html += section("Production models and their evidence", `<div class="cards">${cards.join("")}</div>
      <p class="note">Out-of-sample walk-forward test rows pooled over folds. p-values are one-sided (the model beats the naive forecast); a grade above F needs a passed leakage audit and both p below 0.05.</p>`);
  }
  if (served.ok) {
    const rows = served.data.models.map((m) => [
      `<a href="/ui/symbol?symbol=${encodeURIComponent(m.symbol)}">${escapeHtml(m.symbol)}</a>`,
      escapeHtml(m.version), escapeHtml(m.stage), escapeHtml((m.as_of || "").slice(0, 10))]);
    html += section("Latest data per symbol", rows.length ? table(["symbol", "served by", "role", "last bar"], rows)
      : "<p>No symbol is served.</p>");
  } else {
    html += `<p class="error">${escapeHtml(problem(served, "Served symbols"))}</p>`;
  }
  root.innerHTML = html;
  ready();
}
