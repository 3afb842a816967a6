import assert from "node:assert/strict";
import { test } from "node:test";
import { DASH } from "../src/js/format.js";
import { comparedHorizon, liveTruth, NO_SCORES, reasonsList, reportsByVersion, statusBadge } from "../src/js/monitor.js";

const direction = (accuracy, lo, hi, n) => ({ accuracy, ci_low: lo, ci_high: hi, n, hits: Math.round(accuracy * n) });
const cover = (nominal, observed, lo, hi, n) => ({ nominal, observed, ci_low: lo, ci_high: hi, n });
const REPORT = {
  version: "ridge/global:1", status: "watch", reasons: ["input ret_1 drifted (PSI 0.50 > 0.25)", "b", "c", "d", "e"],
  distinct_scored: 120,
  live: {
    5: { direction: direction(0.55, 0.42, 0.67, 60), coverage: [cover(0.8, 0.7, 0.58, 0.8, 60), cover(0.95, 0.9, 0.8, 0.95, 60)], crps: 0.02 },
    1: { direction: direction(2 / 3, 0.5402, 0.7726, 60), coverage: [cover(0.5, 0.6, 0.5, 0.7, 60), cover(0.8, 0.9107, 0.8074, 0.9613, 60), cover(0.95, 1, 0.9358, 1, 60)], crps: 0.0079 },
  },
  walk_forward: { accuracy: 0.6125, ci_low: 0.5768, ci_high: 0.6469, n: 738 },
  live_below_walk_forward: { p_value: 0.84 },
};

test("live accuracy is shown with its interval and n, beside the walk-forward one", () => {
  const t = liveTruth(REPORT);
  assert.equal(t.scored, true);
  assert.equal(t.horizon, 1);                       // the shortest live horizon, not key order
  assert.equal(t.live, "66.7 % [54.0, 77.3] % (n = 60)");
  assert.equal(t.walkForward, "61.3 % [57.7, 64.7] % (n = 738)");
  assert.equal(t.cover80, "91.1 % [80.7, 96.1] % (n = 60)");
  assert.equal(t.cover95, "100.0 % [93.6, 100.0] % (n = 60)");
  assert.equal(t.pBelow, "0.840");
  assert.deepEqual(t.perHorizon.map((r) => r.horizon), [1, 5]);
  assert.equal(t.perHorizon[1].cover80, "70.0 % [58.0, 80.0] % (n = 60)");
});

test("the walk-forward horizon, when recorded, picks the live horizon compared", () => {
  assert.equal(comparedHorizon({ ...REPORT, walk_forward: { ...REPORT.walk_forward, horizon: 5 } }), 5);
  assert.equal(liveTruth({ ...REPORT, walk_forward: { ...REPORT.walk_forward, horizon: 5 } }).live, "55.0 % [42.0, 67.0] % (n = 60)");
});

test("nothing scored: unknown, said in words, never a bare or zero accuracy", () => {
  const t = liveTruth({ version: "x:1", status: "unknown", reasons: ["no scored forecasts yet"], live: {}, walk_forward: REPORT.walk_forward });
  assert.equal(t.scored, false);
  assert.equal(t.live, NO_SCORES);
  assert.equal(t.walkForward, "61.3 % [57.7, 64.7] % (n = 738)");
  const missing = liveTruth(undefined);
  assert.equal(missing.status, "unknown");
  assert.equal(missing.live, NO_SCORES);
  assert.equal(missing.walkForward, DASH);
});

test("status badges carry the word; reasons are escaped and folded after three", () => {
  assert.match(statusBadge("degraded"), />degraded</);
  assert.match(statusBadge("<script>"), />unknown</);
  const html = reasonsList(["<b>", ...REPORT.reasons]);
  assert.match(html, /&lt;b&gt;/);
  assert.match(html, /3 more reasons/);
  assert.equal(reasonsList([]), "");
  assert.deepEqual(Object.keys(reportsByVersion({ reports: [REPORT] })), ["ridge/global:1"]);
  assert.deepEqual(reportsByVersion(null), {});
});
