// Runs: training runs with per-job progress, refreshed every few seconds while any runs;
// failed jobs show their error and traceback.
import { api, problem } from "../api.js";
import { $, ready, section, status, table } from "../dom.js";
import { escapeHtml, DASH } from "../format.js";

const POLL_MS = 2000;
const FINAL_FOLD = 999; // causalcast.training.plan.FINAL_FOLD
let selected = null;
let timer = null;

function bar(p) {
  const total = (p.done || 0) + (p.failed || 0) + (p.running || 0) + (p.pending || 0) || 1;
  const part = (k) => `<span class="${k}" style="width:${(100 * (p[k] || 0)) / total}%"></span>`;
  return `<div class="bar" role="img" aria-label="${p.done} done, ${p.failed} failed, ${p.running} running, ${p.pending} pending">${part("done")}${part("failed")}${part("running")}</div>`;
}

async function renderJobs() {
  if (!selected) return;
  const r = await api(`/v1/registry/runs/${encodeURIComponent(selected)}`);
  const out = $("#jobs");
  if (!r.ok) {
    out.innerHTML = `<p class="error">${escapeHtml(problem(r, "Run"))}</p>`;
    return;
  }
  const run = r.data;
  const failed = run.jobs.filter((j) => j.status === "failed");
  out.innerHTML = section(`Run ${run.run_id} (${run.status})`,
    table(["symbol", "model", "fold", "status", "attempts", "seconds", "version id", "error"], [...run.jobs].sort((a, b) => a.model.localeCompare(b.model) || a.fold - b.fold).map((j) => [
      j.symbol === "*" ? "all (global model)" : escapeHtml(j.symbol), escapeHtml(j.model), j.fold === FINAL_FOLD ? "final fit" : String(j.fold),
      j.status === "failed" ? '<span class="bad">failed</span>' : escapeHtml(j.status), String(j.attempts),
      j.seconds == null ? DASH : `${j.seconds.toFixed(2)} s`, j.version_id == null ? DASH : String(j.version_id),
      escapeHtml((j.error || "").slice(0, 80))]), { left: [0, 1, 3, 7] })
    + failed.map((j) => `<details><summary>Traceback: ${escapeHtml(j.model)} ${escapeHtml(j.symbol)} fold ${j.fold}</summary><pre tabindex="0">${escapeHtml(j.traceback || j.error || "")}</pre></details>`).join(""));
}

async function renderRuns() {
  const r = await api("/v1/registry/runs");
  const out = $("#runs");
  if (!r.ok) {
    out.innerHTML = `<p class="error">${escapeHtml(problem(r, "Runs"))}</p>`;
    return false;
  }
  const runs = r.data.runs;
  if (!selected && runs.length) selected = runs[0].run_id;
  out.innerHTML = table(["run", "name", "status", "progress", "done", "failed", "running", "pending", "started (UTC)", "finished (UTC)"],
    runs.map((run) => [
      `<button type="button" class="secondary" data-run="${escapeHtml(run.run_id)}" aria-pressed="${run.run_id === selected}">${escapeHtml(run.run_id)}</button>`,
      escapeHtml(run.name), run.status === "failed" ? '<span class="bad">failed</span>' : escapeHtml(run.status), bar(run.jobs),
      String(run.jobs.done), String(run.jobs.failed), String(run.jobs.running), String(run.jobs.pending),
      escapeHtml(run.created_at.slice(0, 19)), escapeHtml((run.finished_at || DASH).slice(0, 19))]), { left: [0, 1, 2] });
  out.querySelectorAll("button[data-run]").forEach((b) => b.addEventListener("click", () => {
    selected = b.dataset.run;
    renderRuns().then(renderJobs);
  }));
  const active = runs.some((run) => run.status === "running");
  status(`${runs.length} runs${active ? "; refreshing every 2 s while a run is in progress" : ""}.`);
  return active;
}

async function poll() {
  const active = await renderRuns();
  await renderJobs();
  clearTimeout(timer);
  if (active) timer = setTimeout(poll, POLL_MS);
}

export async function render(root) {
  root.innerHTML = section("Training runs", '<div id="runs"></div>') + '<div id="jobs"></div>';
  await poll();
  ready();
}
