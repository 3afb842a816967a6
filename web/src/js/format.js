// Number formatting with units and intervals: the dashboard never shows a bare accuracy.
// Pure functions (no DOM), unit-tested with node's test runner (web/test/).

export const DASH = "\u2013";

export function isNum(x) {
  return typeof x === "number" && Number.isFinite(x);
}

/** 0.5234 -> "52.3 %" */
export function pct(x, digits = 1) {
  return isNum(x) ? `${(100 * x).toFixed(digits)} %` : DASH;
}

/** accuracy with its interval: "52.3 % [50.1, 54.4] %" */
export function pctInterval(x, lo, hi, digits = 1) {
  if (!isNum(x)) return DASH;
  if (!isNum(lo) || !isNum(hi)) return pct(x, digits);
  return `${(100 * x).toFixed(digits)} % [${(100 * lo).toFixed(digits)}, ${(100 * hi).toFixed(digits)}] %`;
}

/** p-values: "< 0.001", "0.042" */
export function pValue(p) {
  if (!isNum(p)) return DASH;
  return p < 0.001 ? "< 0.001" : p.toFixed(3);
}

export function num(x, digits = 2) {
  return isNum(x) ? x.toFixed(digits) : DASH;
}

/** price with its currency-free unit: "123.45" with thousands separators */
export function price(x, digits = 2) {
  return isNum(x) ? x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : DASH;
}

/** what a version row says about its evidence: its metrics overlaid by its latest attached
 * evaluation (the evaluation wins, as the promotion gates read them) */
export function recorded(version) {
  return { ...((version && version.metrics) || {}), ...((version && version.evaluation) || {}) };
}

/** the main numbers of a version's recorded walk-forward evidence, or null */
export function evidence(metrics) {
  const wf = metrics && metrics.walk_forward;
  const sig = (metrics && metrics.significance) || {};
  const p = sig.p_values || {};
  const grade = (metrics && metrics.grade) || {};
  if (!wf) return null;
  return {
    accuracy: pctInterval(wf.accuracy, wf.ci_low, wf.ci_high),
    alwaysUp: pct(wf.always_up),
    edge: isNum(wf.accuracy) && isNum(wf.always_up) ? `${((wf.accuracy - wf.always_up) * 100).toFixed(1)} pp` : DASH,
    pDM: pValue(p.dm_vs_naive),
    pDirection: pValue(p.direction),
    horizon: sig.horizon,
    n: wf.n,
    sharpe: num(wf.sharpe),
    grade: grade.shown || DASH,
    gradeComputed: grade.computed || DASH,
    folds: Array.isArray(wf.folds) ? wf.folds.length : DASH,
  };
}

export function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
