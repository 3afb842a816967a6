import assert from "node:assert/strict";
import { test } from "node:test";
import { addBusinessDays, drawdown, epoch, fanPoints, linspace, payoff, rollingSharpe } from "../src/js/series.js";

const close = (a, b, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test("drawdown is measured from the running peak and is never positive", () => {
  const dd = drawdown([1, 2, 1, 3, 1.5, null, 3]);
  assert.deepEqual(dd.slice(0, 5), [0, 0, -0.5, 0, -0.5]);
  assert.equal(dd[5], null);
  assert.equal(dd[6], 0);
  // random curves: every value in [-1, 0] and zero at each new high
  for (let k = 0; k < 50; k++) {
    let v = 1;
    const eq = Array.from({ length: 200 }, () => (v *= Math.exp((Math.random() - 0.5) * 0.1)));
    const d = drawdown(eq);
    let peak = -Infinity;
    eq.forEach((x, i) => {
      assert.ok(d[i] <= 0 && d[i] > -1);
      if (x >= peak) { peak = x; close(d[i], 0); }
    });
  }
});

test("rolling Sharpe equals mean/sd of the window's returns, annualised", () => {
  const returns = [0.01, -0.02, 0.015, 0.005, -0.01, 0.02, 0.0];
  const eq = [1];
  for (const r of returns) eq.push(eq[eq.length - 1] * (1 + r));
  const rs = rollingSharpe(eq, 4, 252);
  assert.equal(rs[3], null);
  const w = returns.slice(3, 7);
  const mean = w.reduce((a, b) => a + b) / 4;
  const sd = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / 3);
  close(rs[7], (mean / sd) * Math.sqrt(252), 1e-9);
  assert.equal(rollingSharpe([1, 1, 1, 1, 1], 3)[4], null); // no variation, no ratio
});

test("business days skip weekends", () => {
  assert.equal(addBusinessDays("2013-06-14", 1), "2013-06-17"); // Friday -> Monday
  assert.equal(addBusinessDays("2013-06-14", 5), "2013-06-21");
  assert.equal(addBusinessDays("2013-06-12T00:00:00", 2), "2013-06-14");
});

test("the fan turns the service's log-return bounds into prices around the last close", () => {
  const f = { as_of: "2013-06-14T00:00:00", last_close: 100, forecasts: [
    { horizon: 5, expected_price: 101, lower_80: -0.1, upper_80: 0.1, lower_95: -0.2, upper_95: 0.2 },
    { horizon: 1, expected_price: 100.5, lower_80: -0.02, upper_80: 0.03, lower_95: -0.04, upper_95: 0.05 }] };
  const fan = fanPoints(f);
  assert.equal(fan.length, 3);
  assert.deepEqual(fan[0], { date: "2013-06-14", mean: 100, lo80: 100, hi80: 100, lo95: 100, hi95: 100 });
  assert.equal(fan[1].date, "2013-06-17");
  close(fan[1].lo80, 100 * Math.exp(-0.02));
  close(fan[2].hi95, 100 * Math.exp(0.2));
  for (const p of fan) assert.ok(p.lo95 <= p.lo80 && p.lo80 <= p.hi80 && p.hi80 <= p.hi95);
});

test("pay-off of a call spread is capped and floored", () => {
  const spots = linspace(50, 150, 101);
  const legs = [{ kind: "call", strike: 90, qty: 1, premium: 12 }, { kind: "call", strike: 110, qty: -1, premium: 4 }];
  const pnl = payoff(legs, spots);
  close(Math.min(...pnl), -8);
  close(Math.max(...pnl), 12);
  close(pnl[50], 10 - 8); // spot 100
  const put = payoff([{ kind: "put", strike: 100, qty: 2 }], [80, 120]);
  assert.deepEqual(put, [40, 0]);
});

test("epoch reads plain dates as UTC midnight", () => {
  assert.equal(epoch("1970-01-02"), 86400);
});
