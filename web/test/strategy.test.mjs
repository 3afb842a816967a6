import assert from "node:assert/strict";
import { test } from "node:test";
import { DAY, PRESETS, legSpec, orReason, parseStrikes, premiumWords, presetLegs, strategyRequest } from "../src/js/strategy.js";

const money = (x) => x.toFixed(4);

test("an iron condor is long put, short put, short call, long call at ascending strikes", () => {
  assert.deepEqual(presetLegs("iron-condor", [90, 95, 105, 110], 30), [
    { quantity: 1, kind: "put", strike: 90, days: 30 }, { quantity: -1, kind: "put", strike: 95, days: 30 },
    { quantity: -1, kind: "call", strike: 105, days: 30 }, { quantity: 1, kind: "call", strike: 110, days: 30 }]);
});

test("presets with stock, a straddle's shared strike and a calendar's two expiries", () => {
  assert.deepEqual(presetLegs("covered-call", [105], 30, null, 2).map((l) => [l.quantity, l.kind, l.strike]), [[2, "stock", null], [-2, "call", 105]]);
  assert.deepEqual(presetLegs("straddle", [100], 10).map((l) => [l.kind, l.strike]), [["call", 100], ["put", 100]]);
  assert.deepEqual(presetLegs("calendar", [100], 30, 90).map((l) => [l.quantity, l.days]), [[-1, 30], [1, 90]]);
  for (const [name, [, , signs, n]] of Object.entries(PRESETS)) {
    const strikes = Array.from({ length: n }, (_, i) => 90 + 5 * i);
    assert.equal(presetLegs(name, strikes, 30, 60).length, signs.length, name);
  }
});

test("bad preset input is refused with the preset and the problem", () => {
  assert.throws(() => presetLegs("bull-call", [105, 95], 30), /strictly ascending/);
  assert.throws(() => presetLegs("iron-condor", [90, 95], 30), /needs 4 strike/);
  assert.throws(() => presetLegs("bull-call", parseStrikes("95, x"), 30), /numbers > 0/);
  assert.throws(() => presetLegs("calendar", [100], 30, 20), /far expiry/);
  assert.throws(() => presetLegs("nope", [100], 30), /preset: expected one of/);
});

test("the request carries years, leaves stock legs without strike or expiry and omits empty prices", () => {
  assert.deepEqual(legSpec({ quantity: 1, kind: "stock", strike: null, days: null, price: null }), { quantity: 1, kind: "stock" });
  assert.deepEqual(legSpec({ quantity: -2, kind: "put", strike: 95, days: 73, price: 1.5 }), { quantity: -2, kind: "put", strike: 95, tau: 73 * DAY, price: 1.5 });
  const body = strategyRequest({ spot: 100, rate: 0.04, div: 0, sigma: 0.2 }, [{ quantity: 1, kind: "call", strike: 100, days: 30 }], { mu: 0, sigma: 0.05, nu: 5, days: 30 });
  assert.deepEqual(Object.keys(body).sort(), ["div", "forecast", "legs", "rate", "sigma", "spot"]);
  assert.equal(body.forecast.horizon, 30 * DAY);
  assert.ok(!("forecast" in strategyRequest({ spot: 100, rate: 0, div: 0, sigma: 0.2 }, [])));
});

test("null values show their reason, never NaN; the premium shows its sign in words", () => {
  assert.equal(orReason(null, "unbounded (P&L rises without limit as S grows)", money), "unbounded (P&L rises without limit as S grows)");
  assert.equal(orReason(Number.NaN, null, money).includes("NaN"), false);
  assert.equal(orReason(-3.97351, null, money), "-3.9735");
  assert.equal(premiumWords(-1.0231, money), "-1.0231 (received: credit)");
  assert.equal(premiumWords(2.5, money), "2.5000 (paid: debit)");
});
