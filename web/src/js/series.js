// Series arithmetic behind the charts (pure, unit-tested): drawdowns, rolling Sharpe, the
// forecast fan's future dates and option payoffs.

/** drawdown from the running peak, as a fraction <= 0, for an equity curve */
export function drawdown(equity) {
  let peak = -Infinity;
  return equity.map((v) => {
    if (v == null || !Number.isFinite(v)) return null;
    peak = Math.max(peak, v);
    return v / peak - 1;
  });
}

/** annualised Sharpe ratio of the simple returns of `equity` over a trailing window;
 *  null until the window is full or when the returns do not vary */
export function rollingSharpe(equity, window = 63, periodsPerYear = 252) {
  const r = equity.map((v, i) => (i === 0 || equity[i - 1] == null || v == null ? null : v / equity[i - 1] - 1));
  return r.map((_, i) => {
    if (i < window) return null;
    const w = r.slice(i - window + 1, i + 1).filter((x) => x != null);
    if (w.length < window) return null;
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const sd = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / (w.length - 1));
    return sd > 0 ? (mean / sd) * Math.sqrt(periodsPerYear) : null;
  });
}

/** the date `bars` business days after `iso` (weekends skipped), as an ISO date */
export function addBusinessDays(iso, bars) {
  const d = new Date(iso.length <= 10 ? iso + "T00:00:00Z" : iso);
  let left = bars;
  while (left > 0) {
    d.setUTCDate(d.getUTCDate() + 1);
    const day = d.getUTCDay();
    if (day !== 0 && day !== 6) left -= 1;
  }
  return d.toISOString().slice(0, 10);
}

/** the fan's points in prices: the last close at as_of, then each horizon's expected price
 *  and 80/95 % bounds (the service gives the bounds as log returns over the horizon) */
export function fanPoints(forecast) {
  const start = forecast.as_of.slice(0, 10);
  const c = forecast.last_close;
  const rows = [{ date: start, mean: c, lo80: c, hi80: c, lo95: c, hi95: c }];
  for (const f of [...forecast.forecasts].sort((a, b) => a.horizon - b.horizon)) {
    rows.push({ date: addBusinessDays(start, f.horizon), mean: f.expected_price,
      lo80: c * Math.exp(f.lower_80), hi80: c * Math.exp(f.upper_80),
      lo95: c * Math.exp(f.lower_95), hi95: c * Math.exp(f.upper_95) });
  }
  return rows;
}

/** pay-off at expiry of option legs {kind, strike, qty, premium} (per unit of underlying) */
export function payoff(legs, spots) {
  return spots.map((s) => legs.reduce((total, leg) => {
    const intrinsic = leg.kind === "call" ? Math.max(s - leg.strike, 0) : Math.max(leg.strike - s, 0);
    return total + leg.qty * (intrinsic - (leg.premium || 0));
  }, 0));
}

/** n evenly spaced values from lo to hi inclusive */
export function linspace(lo, hi, n) {
  return Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

/** seconds since epoch (uPlot's time axis) for an ISO date */
export function epoch(iso) {
  return Date.parse(iso.length <= 10 ? iso + "T00:00:00Z" : iso) / 1000;
}
