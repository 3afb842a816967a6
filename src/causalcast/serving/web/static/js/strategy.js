// The strategy builder's pure logic (no DOM, unit-tested in web/test/): the presets' legs and
// the request for POST /v1/options/strategy. The page computes no strategy number itself:
// premiums, breakevens, extremes, POP and expected P&L all come from that endpoint, so the
// dashboard, the CLI and the API give one answer. The presets mirror
// `causalcast.options.analytics.legs.PRESETS` (the browser test checks they build the same legs).
import { DASH, isNum } from "./format.js";

export const DAY = 1 / 365; // an expiry of n calendar days is n/365 years (options.inputs.DAY)

// name -> [label, kinds ("call"/"put" for every leg, else one letter per leg), signs, strikes]
export const PRESETS = {
  "bull-call": ["bull call spread (vertical)", "call", [+1, -1], 2],
  "bear-call": ["bear call spread (vertical)", "call", [-1, +1], 2],
  "bull-put": ["bull put spread (vertical)", "put", [+1, -1], 2],
  "bear-put": ["bear put spread (vertical)", "put", [-1, +1], 2],
  straddle: ["straddle", "cp", [+1, +1], 1],
  strangle: ["strangle", "pc", [+1, +1], 2],
  butterfly: ["butterfly (calls)", "call", [+1, -2, +1], 3],
  "iron-condor": ["iron condor", "ppcc", [+1, -1, -1, +1], 4],
  "covered-call": ["covered call", "sc", [+1, -1], 1],
  "protective-put": ["protective put", "sp", [+1, +1], 1],
  collar: ["collar", "spc", [+1, +1, -1], 2],
  calendar: ["calendar (calls)", "call", [-1, +1], 1],
};

/** the legs {quantity, kind, strike, days} of a preset; throws an Error naming the problem */
export function presetLegs(name, strikes, days, farDays = null, quantity = 1) {
  const preset = PRESETS[name];
  if (!preset) throw new Error(`preset: expected one of ${Object.keys(PRESETS).join(", ")}, got ${name}`);
  const [label, kinds, signs, nStrikes] = preset;
  if (strikes.length !== nStrikes) throw new Error(`${label}: needs ${nStrikes} strike(s), got ${strikes.length}`);
  if (strikes.some((k) => !(isNum(k) && k > 0))) throw new Error(`${label}: strikes must be numbers > 0`);
  if (strikes.some((k, i) => i > 0 && k <= strikes[i - 1])) throw new Error(`${label}: strikes must be strictly ascending`);
  if (!(isNum(days) && days > 0)) throw new Error(`${label}: expiry must be a number of days > 0`);
  if (name === "calendar") {
    if (!(isNum(farDays) && farDays > days)) throw new Error(`${label}: needs a far expiry after the near one`);
    return [{ quantity: -quantity, kind: "call", strike: strikes[0], days },
      { quantity, kind: "call", strike: strikes[0], days: farDays }];
  }
  const letters = { c: "call", p: "put", s: "stock" };
  const optionStrikes = name === "straddle" ? [strikes[0], strikes[0]] : [...strikes];
  return signs.map((sign, i) => {
    const kind = kinds === "call" || kinds === "put" ? kinds : letters[kinds[i]];
    if (kind === "stock") return { quantity: sign * quantity, kind, strike: null, days: null };
    return { quantity: sign * quantity, kind, strike: optionStrikes.shift(), days };
  });
}

/** "95, 105" -> [95, 105]; anything that is not a number stays NaN (and presetLegs refuses it) */
export function parseStrikes(text) {
  return String(text).split(/[\s,;]+/).filter(Boolean).map(Number);
}

/** one leg of the request: days become years, a stock leg has no strike or expiry, an empty
 *  price is left out (the service prices the leg from the flat sigma or the surface) */
export function legSpec(leg) {
  const spec = { quantity: leg.quantity, kind: leg.kind };
  if (leg.kind !== "stock") {
    spec.strike = leg.strike;
    spec.tau = leg.days * DAY;
  }
  if (isNum(leg.price)) spec.price = leg.price;
  return spec;
}

/** the request body: market {spot, rate, div, sigma}, legs, an optional model forecast
 *  {mu, sigma, nu, days} (Student-t log return over `days`), an optional chain (rows in the
 *  chain schema): the service then fits its surface for the market's distribution and takes
 *  spot and dividend yield from the chain, so neither is sent */
export function strategyRequest(market, legs, forecast = null, chain = null) {
  const body = { legs: legs.map(legSpec), rate: market.rate, sigma: market.sigma };
  if (chain) body.chain = chain;
  else Object.assign(body, { spot: market.spot, div: market.div });
  if (forecast) body.forecast = { mu: forecast.mu, sigma: forecast.sigma, nu: forecast.nu, horizon: forecast.days * DAY };
  return body;
}

/** a value the service may return as null with a reason beside it: the formatted number, else
 *  the reason in words (never "NaN", never a bare dash when a reason exists) */
export function orReason(value, reason, format) {
  if (isNum(value)) return format(value);
  if (typeof reason === "string" && reason) return reason;
  return `${DASH} (not computed by the service)`;
}

/** the signed net premium as the service gives it, with its sign in words:
 *  "1.2345 (paid: debit)", "-0.9876 (received: credit)" */
export function premiumWords(premium, format) {
  if (!isNum(premium)) return orReason(premium, null, format);
  if (premium > 0) return `${format(premium)} (paid: debit)`;
  if (premium < 0) return `${format(premium)} (received: credit)`;
  return `${format(0)} (zero cost)`;
}
