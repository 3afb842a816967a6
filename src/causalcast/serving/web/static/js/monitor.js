// Live truth from GET /v1/monitor: a production version's status with its reasons, and its
// live directional accuracy beside the walk-forward accuracy it was promoted on, always with
// intervals and n. Pure functions (no DOM), unit-tested with node's test runner (web/test/).
import { DASH, escapeHtml, isNum, num, pctInterval } from "./format.js";

export const NO_SCORES = "no scored forecasts yet";
const REASONS_SHOWN = 3;

/** {version ref: report} from the endpoint's answer */
export function reportsByVersion(data) {
  return Object.fromEntries(((data && data.reports) || []).map((r) => [r.version, r]));
}

/** the horizon live and walk-forward accuracy are compared on: the walk-forward one when it
 * says, else the shortest live horizon (as the monitor's own test does) */
export function comparedHorizon(report) {
  const wf = report && report.walk_forward;
  if (wf && isNum(wf.horizon)) return wf.horizon;
  const hs = Object.keys((report && report.live) || {}).map(Number).filter(Number.isFinite);
  return hs.length ? Math.min(...hs) : null;
}

function coverage(row, nominal) {
  const c = ((row && row.coverage) || []).find((x) => Math.abs(x.nominal - nominal) < 1e-9);
  return c ? `${pctInterval(c.observed, c.ci_low, c.ci_high)} (n = ${c.n})` : DASH;
}

/** a direction block {accuracy, ci_low, ci_high, n} as "66.7 % [54.1, 77.3] % (n = 60)" */
function accuracy(d) {
  return d && isNum(d.accuracy) ? `${pctInterval(d.accuracy, d.ci_low, d.ci_high)} (n = ${d.n})` : DASH;
}

/** Everything the pages show of one report, as display strings; `scored` false when the
 * version has no scored forecast yet (status unknown). */
export function liveTruth(report) {
  const status = (report && report.status) || "unknown";
  const reasons = (report && report.reasons) || [];
  const wf = (report && report.walk_forward) || null;
  const walkForward = wf && isNum(wf.accuracy) ? accuracy(wf) : DASH;
  const h = comparedHorizon(report);
  const row = h === null ? null : report.live[String(h)];
  if (!report || !row || !row.direction || !isNum(row.direction.accuracy)) {
    return { status, reasons, scored: false, live: NO_SCORES, walkForward, horizon: h, perHorizon: [] };
  }
  const below = report.live_below_walk_forward;
  const perHorizon = Object.keys(report.live).map(Number).sort((a, b) => a - b).map((k) => {
    const r = report.live[String(k)];
    return { horizon: k, accuracy: accuracy(r.direction), cover80: coverage(r, 0.8), cover95: coverage(r, 0.95),
      crps: num(r.crps, 4) };
  });
  return {
    status, reasons, scored: true, horizon: h, walkForward, perHorizon,
    live: accuracy(row.direction),
    cover80: coverage(row, 0.8),
    cover95: coverage(row, 0.95),
    distinct: report.distinct_scored,
    pBelow: below && isNum(below.p_value) ? (below.p_value < 0.001 ? "< 0.001" : below.p_value.toFixed(3)) : DASH,
  };
}

/** the status as a labelled badge (the word itself, never colour alone) */
export function statusBadge(status) {
  const s = ["ok", "watch", "degraded"].includes(status) ? status : "unknown";
  return `<span class="monitor ${s}" data-testid="monitor-status">${s}</span>`;
}

/** the reasons as a list: the first few, the rest folded away */
export function reasonsList(reasons) {
  if (!reasons || !reasons.length) return "";
  const li = (r) => `<li>${escapeHtml(r)}</li>`;
  const first = reasons.slice(0, REASONS_SHOWN).map(li).join("");
  const rest = reasons.slice(REASONS_SHOWN);
  const more = rest.length
    ? `<details><summary>${rest.length} more reason${rest.length > 1 ? "s" : ""}</summary><ul>${rest.map(li).join("")}</ul></details>`
    : "";
  return `<div class="reasons" data-testid="monitor-reasons"><ul>${first}</ul>${more}</div>`;
}
