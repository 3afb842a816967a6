import assert from "node:assert/strict";
import { test } from "node:test";
import { DASH, escapeHtml, evidence, pct, pctInterval, pValue, price, recorded } from "../src/js/format.js";

test("percentages carry their unit and intervals their bounds", () => {
  assert.equal(pct(0.5234), "52.3 %");
  assert.equal(pctInterval(0.612, 0.577, 0.647), "61.2 % [57.7, 64.7] %");
  assert.equal(pctInterval(0.6, null, 0.7), "60.0 %");
  assert.equal(pct(Number.NaN), DASH);
  assert.equal(pct(null), DASH);
});

test("p-values below 0.001 are not printed as zero", () => {
  assert.equal(pValue(2.5e-10), "< 0.001");
  assert.equal(pValue(0.0419), "0.042");
  assert.equal(pValue(undefined), DASH);
});

test("prices are grouped and fixed", () => {
  assert.equal(price(1234.5), "1,234.50");
  assert.equal(price(Infinity), DASH);
});

test("evidence reads a version's recorded walk-forward metrics", () => {
  const metrics = {
    walk_forward: { accuracy: 0.612, ci_low: 0.577, ci_high: 0.647, always_up: 0.491, sharpe: 6.89, n: 738, folds: [0, 1, 2] },
    significance: { horizon: 1, p_values: { dm_vs_naive: 2.5e-6, direction: 0.2 } },
    grade: { shown: "C", computed: "C" },
  };
  const e = evidence(metrics);
  assert.equal(e.accuracy, "61.2 % [57.7, 64.7] %");
  assert.equal(e.alwaysUp, "49.1 %");
  assert.equal(e.edge, "12.1 pp");
  assert.equal(e.pDM, "< 0.001");
  assert.equal(e.pDirection, "0.200");
  assert.equal(e.grade, "C");
  assert.equal(e.folds, 3);
  assert.equal(evidence({ val_loss: 1 }), null);
});

test("html is escaped", () => {
  assert.equal(escapeHtml('<a href="x">&\'</a>'), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
});

test("a version's evidence is its metrics overlaid by its attached evaluation", () => {
  const wf = { accuracy: 0.612, ci_low: 0.577, ci_high: 0.647, always_up: 0.491, n: 738 };
  const v = { metrics: { val_loss: 1, walk_forward: { accuracy: 0.1 } }, evaluation: { walk_forward: wf } };
  assert.deepEqual(recorded(v), { val_loss: 1, walk_forward: wf });
  assert.equal(evidence(recorded(v)).accuracy, "61.2 % [57.7, 64.7] %");
  assert.equal(evidence(recorded({ metrics: { val_loss: 1 }, evaluation: null })), null);
  assert.deepEqual(recorded(undefined), {});
});
