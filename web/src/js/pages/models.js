// Models: every registry version with its evidence and lineage, the stage history, and
// promotion / rollback through the gates (behind the API key; refusals show every verdict).
import { api, problem } from "../api.js";
import { $, ready, section, status, table } from "../dom.js";
import { DASH, escapeHtml, evidence, recorded } from "../format.js";

function gatesTable(gates) {
  if (!gates || !gates.length) return "<p class=\"note\">No gate applies to this move.</p>";
  return table(["gate", "verdict", "detail"], gates.map((g) => [escapeHtml(g.gate),
    g.passed ? '<span class="ok">passed</span>' : '<span class="bad">failed</span>', escapeHtml(g.detail)]), { left: [0, 1, 2] });
}

async function showDetail(versionId) {
  const out = $("#detail");
  const r = await api(`/v1/registry/versions/${versionId}`);
  if (!r.ok) {
    out.innerHTML = `<p class="error">${escapeHtml(problem(r, "Version"))}</p>`;
    return;
  }
  const v = r.data;
  document.querySelectorAll("tr[data-id]").forEach((tr) => tr.classList.toggle("selected", tr.dataset.id === String(v.version_id)));
  const history = table(["at (UTC)", "from", "to", "action", "by", "reason"], v.history.map((e) => [
    escapeHtml(e.at.slice(0, 19)), escapeHtml(e.from_stage || DASH), escapeHtml(e.to_stage), escapeHtml(e.action), escapeHtml(e.by), escapeHtml(e.reason)]), { left: [0, 1, 2, 3, 4, 5] });
  const lineage = { data_fingerprint: v.data_fingerprint, run_id: v.run_id, lineage: v.lineage, features: v.feature_config, split: v.split_config, code: v.code_version };
  const actions = v.stage === "production"
    ? `<button type="button" id="rollback" data-name="${escapeHtml(v.name)}">Roll back ${escapeHtml(v.name)}</button>`
    : `<button type="button" id="promote" data-id="${v.version_id}">Promote ${escapeHtml(v.ref)} to production</button>`;
  out.innerHTML = `<h2>${escapeHtml(v.ref)} <span class="note">(id ${v.version_id}, ${escapeHtml(v.stage)})</span></h2>
    <form class="inline" id="action-form"><label for="reason">reason (recorded)<input id="reason" value="from the dashboard"></label>${actions}</form>
    <div id="action-result" role="status" aria-live="polite"></div>
    <h3>Promotion gates, checked now</h3>${gatesTable(v.gates)}
    <h3>Stage history</h3>${history}
    <h3>Lineage</h3><pre tabindex="0">${escapeHtml(JSON.stringify(lineage, null, 2))}</pre>
    <h3>Recorded metrics</h3><pre tabindex="0">${escapeHtml(JSON.stringify(v.metrics, null, 2))}</pre>
    <h3>Attached evaluation${v.evaluated_at ? ` (${escapeHtml(v.evaluated_at.slice(0, 19))} UTC)` : ""}</h3>${v.evaluation
      ? `<pre tabindex="0">${escapeHtml(JSON.stringify(v.evaluation, null, 2))}</pre>` : "<p>None attached: the evidence above is the recorded metrics'.</p>"}`;
  const reason = () => $("#reason").value;
  const promote = $("#promote");
  if (promote) promote.addEventListener("click", () => act("/v1/registry/promote", { version_id: v.version_id, reason: reason() }, v.version_id));
  const rollback = $("#rollback");
  if (rollback) rollback.addEventListener("click", () => act("/v1/registry/rollback", { name: v.name, reason: reason() }, v.version_id));
}

async function act(path, body, versionId) {
  const out = $("#action-result");
  out.innerHTML = "working...";
  const r = await api(path, { method: "POST", body });
  if (r.ok) {
    // refresh first, then say so: the message appears once the page shows the new state
    const moved = r.data.version || r.data.restored;
    await renderList();
    await showDetail(moved.version_id);
    $("#action-result").innerHTML = `<p class="ok">Done: ${escapeHtml(moved.ref)} is now ${escapeHtml(moved.stage)}. The service picks it up at its next registry poll.</p>`;
    return;
  }
  if (r.status === 409 && r.data && r.data.detail && r.data.detail.gates) {
    out.innerHTML = `<p class="error">Refused by the gates; nothing changed.</p>${gatesTable(r.data.detail.gates)}`;
  } else {
    out.innerHTML = `<p class="error">${escapeHtml(problem(r, "Refused"))}</p>`;
  }
}

async function renderList() {
  const r = await api("/v1/registry/versions");
  const list = $("#versions");
  if (!r.ok) {
    list.innerHTML = `<p class="error">${escapeHtml(problem(r, "Versions"))}</p>`;
    return [];
  }
  const all = [...r.data.versions].sort((a, b) => a.name.localeCompare(b.name) || b.version - a.version);
  const showFolds = $("#show-folds").checked;
  // walk-forward fold fits are evaluation material, not candidates for serving
  const versions = all.filter((v) => showFolds || !/\/fold\d+$/.test(v.name));
  list.innerHTML = table(["version", "stage", "accuracy (95 % CI)", "always up", "p DM", "p direction", "grade", "created (UTC)", "evaluated from", "details"],
    versions.map((v) => {
      const e = evidence(recorded(v));
      return [escapeHtml(v.ref), v.stage === "production" ? '<span class="ok">production</span>' : escapeHtml(v.stage),
        e ? e.accuracy : DASH, e ? e.alwaysUp : DASH, e ? e.pDM : DASH, e ? e.pDirection : DASH,
        e ? `<span class="grade">${escapeHtml(e.grade)}</span>` : DASH, escapeHtml(v.created_at.slice(0, 19)),
        escapeHtml((v.lineage.extra || {}).evaluated_from || DASH),
        `<button type="button" class="secondary" data-show="${v.version_id}" aria-label="Show ${escapeHtml(v.ref)}">Show</button>`];
    }), { left: [0, 1, 8], rowAttrs: (i) => `data-id="${versions[i].version_id}" id="v${versions[i].version_id}"` });
  list.querySelectorAll("button[data-show]").forEach((b) => b.addEventListener("click", () => showDetail(Number(b.dataset.show))));
  return all;
}

export async function render(root) {
  root.innerHTML = section("Registry versions", '<label><input type="checkbox" id="show-folds"> show the walk-forward fold fits</label><div id="versions"></div>') + '<div id="detail"></div>';
  $("#show-folds").addEventListener("change", renderList);
  const versions = await renderList();
  status(`${versions.length} versions; ${versions.filter((v) => v.stage === "production").length} in production.`);
  const wanted = Number((location.hash.match(/^#v(\d+)$/) || [])[1]);
  const first = versions.find((v) => v.version_id === wanted) || versions.find((v) => v.stage === "production") || versions[0];
  if (first) await showDetail(first.version_id);
  ready();
}
