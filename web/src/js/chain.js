// The Options page's chain and smile, pure logic (no DOM, unit-tested in web/test/): which
// quotes go to the analytics endpoints, what each quote's status is, the chain laid out by
// strike, and a smile's chart series. Every number comes from the service: implied vols from
// POST /v1/options/implied-vol, the fit and its report from POST /v1/options/surface, the
// flags from GET /v1/options/chains/{underlying}; this module only puts them side by side.

export const SMILE_POINTS = 81;

/** "2026-01-02T15:00:00+00:00" (or the report's "2026-01-02 15:00:00+00:00") ->
 *  "2026-01-02 15:00 UTC" */
export function utcText(iso) {
  return String(iso).replace("T", " ").replace(/:\d\d(\.\d+)?\+00:00$/, " UTC");
}

/** the quotes the analytics may use (the chain's rows whose flag is null) and their rows in
 *  the chain: the endpoints answer per posted quote, `index` maps an answer back to its row */
export function usableRows(chain) {
  const rows = [];
  const index = [];
  chain.chain.forEach((row, i) => {
    if (!chain.flags[i]) {
      rows.push(row);
      index.push(i);
    }
  });
  return { rows, index };
}

/** the bodies of POST /v1/options/implied-vol and /v1/options/surface for these quotes */
export function analyticsRequests(rows, style, rate) {
  return {
    iv: { chain: rows, style, rate },
    surface: { chain: rows, style, rate, smile_points: SMILE_POINTS },
  };
}

/**
 * Per row of the chain: {iv, state, reason}. state is "flagged" (refused by validation, the
 * flag is the reason), "no-iv" (the solver's reason), "not-fitted" (the surface's reason, e.g.
 * in the money, or its expiry skipped) or "fitted". `iv` is the implied-vol response
 * (per posted quote), `surface` the surface report (rows of its `excluded` count posted quotes).
 */
export function quoteStates(chain, index, iv, surface) {
  const out = chain.chain.map((row, i) => ({ iv: null, state: "flagged", reason: chain.flags[i] || "" }));
  index.forEach((row, j) => {
    const vol = iv ? iv.implied_volatility[j] : null;
    const why = iv ? iv.reason[j] : null;
    out[row] = Number.isFinite(vol) ? { iv: vol, state: "fitted", reason: "" } : { iv: null, state: "no-iv", reason: why || "no implied volatility" };
  });
  const skipped = new Map();
  for (const e of (surface && surface.excluded) || []) {
    if (Number.isInteger(e.row)) {
      const row = index[e.row];
      if (row !== undefined && out[row].state === "fitted") out[row] = { ...out[row], state: "not-fitted", reason: e.reason };
    } else if (e.expiry) skipped.set(e.expiry, e.reason);
  }
  chain.chain.forEach((row, i) => {
    const why = skipped.get(String(row.expiry).slice(0, 10));
    if (why && out[i].state === "fitted") out[i] = { ...out[i], state: "not-fitted", reason: why };
  });
  return out;
}

/** one expiry's quotes by strike, calls beside puts: [{strike, call: row index|null, put}] */
export function byStrike(chain, expiry) {
  const strikes = new Map();
  chain.chain.forEach((row, i) => {
    if (row.expiry !== expiry) return;
    const entry = strikes.get(row.strike) || { strike: row.strike, call: null, put: null };
    if (entry[row.type] === null) entry[row.type] = i;
    strikes.set(row.strike, entry);
  });
  return [...strikes.values()].sort((a, b) => a.strike - b.strike);
}

/** per expiry of the chain (in its order), the rows the fit did not use: {expiry: count} */
export function excludedPerExpiry(chain, states) {
  const counts = {};
  chain.chain.forEach((row, i) => {
    counts[row.expiry] = (counts[row.expiry] || 0) + (states[i].state === "fitted" ? 0 : 1);
  });
  return counts;
}

/** the surface report's slice for a chain expiry (the report names expiries in its own
 *  format; both are instants, compared as times) */
export function sliceFor(surface, expiry) {
  const t = Date.parse(expiry);
  return ((surface && surface.expiries) || []).find((e) => Date.parse(e.expiry.replace(" ", "T")) === t) || null;
}

/** uPlot data for a slice's smile, in vol points (% per year): x = every strike (quotes and
 *  curve), then the market's implied vols (at the fitted quotes) and the fitted SVI curve */
export function smileSeries(smile) {
  const points = new Map();
  const put = (k, col, v) => {
    const row = points.get(k) || [null, null];
    row[col] = 100 * v;
    points.set(k, row);
  };
  smile.strike.forEach((k, i) => put(k, 0, smile.implied_volatility[i]));
  smile.fit_strike.forEach((k, i) => put(k, 1, smile.fit_implied_volatility[i]));
  const xs = [...points.keys()].sort((a, b) => a - b);
  return [xs, xs.map((k) => points.get(k)[0]), xs.map((k) => points.get(k)[1])];
}
