import assert from "node:assert/strict";
import { test } from "node:test";
import { SMILE_POINTS, analyticsRequests, byStrike, excludedPerExpiry, quoteStates, sliceFor, smileSeries, usableRows, utcText } from "../src/js/chain.js";
import { strategyRequest } from "../src/js/strategy.js";

const E1 = "2026-02-01T15:00:00+00:00";
const E2 = "2026-04-03T15:00:00+00:00";
const row = (expiry, strike, type) => ({ expiry, strike, type, bid: 1, ask: 1.1, spot: 100, as_of: "2026-01-02T15:00:00+00:00" });
// rows 1 and 4 flagged by validation; the others are posted in order 0, 2, 3, 5, 6
const CHAIN = {
  chain: [row(E1, 95, "put"), row(E1, 95, "call"), row(E1, 105, "call"), row(E1, 105, "put"), row(E2, 90, "put"), row(E2, 100, "call"), row(E2, 110, "call")],
  flags: [null, "bid: zero (no buyer; the mid is not a price)", null, null, "bid/ask: crossed (bid > ask)", null, null],
  expiries: [{ expiry: E1 }, { expiry: E2 }],
};

test("only unflagged quotes are posted, and each answer maps back to its row", () => {
  const { rows, index } = usableRows(CHAIN);
  assert.deepEqual(index, [0, 2, 3, 5, 6]);
  assert.deepEqual(rows, index.map((i) => CHAIN.chain[i]));
  const body = analyticsRequests(rows, "american", 0.03);
  assert.deepEqual(body.iv, { chain: rows, style: "american", rate: 0.03 });
  assert.deepEqual(body.surface, { chain: rows, style: "american", rate: 0.03, smile_points: SMILE_POINTS });
});

test("every quote says whether it is fitted and, when not, the service's reason", () => {
  const { index } = usableRows(CHAIN);
  const iv = { implied_volatility: [0.21, 0.2, null, 0.25, 0.24], reason: [null, null, "below intrinsic value", null, null] };
  const surface = { excluded: [{ row: 2, reason: "in the money: the out-of-the-money quote is used" }, { row: 1, reason: "in the money: x" },
    { expiry: "2026-04-03", reason: "expiry skipped: 2 usable quotes, the fit needs 5" }] };
  const states = quoteStates(CHAIN, index, iv, surface);
  assert.deepEqual(states.map((s) => s.state), ["fitted", "flagged", "not-fitted", "no-iv", "flagged", "not-fitted", "not-fitted"]);
  assert.deepEqual(states.map((s) => s.iv), [0.21, null, 0.2, null, null, 0.25, 0.24]);
  assert.equal(states[1].reason, CHAIN.flags[1]);
  assert.equal(states[2].reason, "in the money: x");                   // posted row 1 is chain row 2
  assert.equal(states[3].reason, "below intrinsic value");             // an IV refusal stays the reason
  assert.match(states[6].reason, /expiry skipped/);
  assert.deepEqual(excludedPerExpiry(CHAIN, states), { [E1]: 3, [E2]: 3 });
  // without a surface (the fit failed) every quote with an implied vol is still shown as such
  assert.deepEqual(quoteStates(CHAIN, index, iv, null).map((s) => s.state), ["fitted", "flagged", "fitted", "no-iv", "flagged", "fitted", "fitted"]);
});

test("an expiry's quotes by strike, calls beside puts; a missing side is null", () => {
  assert.deepEqual(byStrike(CHAIN, E1), [{ strike: 95, call: 1, put: 0 }, { strike: 105, call: 2, put: 3 }]);
  assert.deepEqual(byStrike(CHAIN, E2), [{ strike: 90, call: null, put: 4 }, { strike: 100, call: 5, put: null }, { strike: 110, call: 6, put: null }]);
});

test("the report's slice is found by time, whatever its format", () => {
  const surface = { expiries: [{ expiry: "2026-02-01 15:00:00+00:00", tau: 0.08 }, { expiry: "2026-04-03 15:00:00+00:00", tau: 0.25 }] };
  assert.equal(sliceFor(surface, E2).tau, 0.25);
  assert.equal(sliceFor(surface, "2026-05-01T15:00:00+00:00"), null);
  assert.equal(sliceFor(null, E1), null);
  assert.equal(utcText(E1), "2026-02-01 15:00 UTC");
  assert.equal(utcText("2026-02-01 15:00:00.500000+00:00"), "2026-02-01 15:00 UTC");
});

test("a smile's chart data: one x axis of every strike, market points and the curve in vol points", () => {
  const [x, market, fit] = smileSeries({ strike: [95, 105], implied_volatility: [0.25, 0.2], fit_strike: [90, 95, 110], fit_implied_volatility: [0.3, 0.26, 0.21] });
  assert.deepEqual(x, [90, 95, 105, 110]);
  assert.deepEqual(market, [null, 25, 20, null]);
  assert.deepEqual(fit.map((v) => (v === null ? null : Math.round(v * 1e9) / 1e9)), [30, 26, null, 21]);
});

test("with a chain the strategy request carries it and leaves spot and dividend to the chain", () => {
  const rows = usableRows(CHAIN).rows;
  const body = strategyRequest({ spot: 100, rate: 0.04, div: 0.01, sigma: 0.2 }, [{ quantity: 1, kind: "call", strike: 100, days: 30 }], null, rows);
  assert.deepEqual(Object.keys(body).sort(), ["chain", "legs", "rate", "sigma"]);
  assert.equal(body.chain, rows);
});
