// The Options page's "Chain and smile": pick a chain stored in the service's market data
// store (GET /v1/options/chains), then, on the user's request, its quotes with implied vols
// (POST /v1/options/implied-vol), the fitted smile per expiry with its fit report and
// arbitrage flags (POST /v1/options/surface), each quote marked with why it is or is not in
// the fit. Nothing is computed here (chain.js only lines the answers up); the loaded chain is
// handed to the strategy builder, which sends it to POST /v1/options/strategy. Elements the
// browser test reads carry data-testid attributes.
import { api, problem } from "./api.js";
import { analyticsRequests, byStrike, excludedPerExpiry, quoteStates, sliceFor, smileSeries, usableRows, utcText } from "./chain.js";
import { chart } from "./charts.js";
import { $, table } from "./dom.js";
import { DASH, escapeHtml, num, pct, price } from "./format.js";

const STATE_WORDS = { fitted: "fitted", "not-fitted": "not in the fit", "no-iv": "no implied vol", flagged: "excluded" };
let shown = null; // {chain, states, surface}

function html() {
  return `<p class="note">Chains stored in this service's market data store (import one with <code>causalcast options chain import FILE --underlying X</code>). Implied vols come from POST /v1/options/implied-vol and the smile fit from POST /v1/options/surface, on the chain's usable quotes.</p>
  <form class="inline" id="chain-form">
    <label for="c-underlying">stored chain<select id="c-underlying" class="fit"></select></label>
    <label for="c-style">exercise style<select id="c-style"><option value="european">european</option><option value="american">american (listed US equity options)</option></select></label>
    <label for="c-rate">rate for the fit (per year, 0.04 = 4 %)<input id="c-rate" type="number" step="any" value="0.04" required></label>
    <button type="submit" id="c-show" disabled>Show chain and smile</button>
  </form>
  <div id="chain-out" aria-live="polite" data-state="empty"></div>`;
}

async function listChains() {
  const out = $("#chain-out");
  const r = await api("/v1/options/chains");
  if (!r.ok) {
    out.innerHTML = `<p class="error">${escapeHtml(problem(r, "Stored chains"))}</p>`;
    return;
  }
  const chains = r.data.chains || [];
  $("#c-underlying").innerHTML = chains.map((c) => `<option value="${escapeHtml(c.underlying)}">${escapeHtml(`${c.underlying}: ${c.quotes} quotes as of ${utcText(c.latest_as_of)}`)}</option>`).join("");
  $("#c-show").disabled = !chains.length;
  out.innerHTML = chains.length ? '<p class="note">Choose a chain, then Show.</p>'
    : `<p class="note" data-testid="no-chains">No option chains in this service's store (${escapeHtml(r.data.store || "")}).</p>`;
}

function status(states, i) {
  const s = states[i];
  const words = STATE_WORDS[s.state];
  const cls = s.state === "fitted" ? "ok" : s.state === "not-fitted" ? "" : "bad";
  return `<span data-testid="status-${i}" data-state="${s.state}"><span class="${cls}">${words}</span>${s.reason ? `: <span class="note">${escapeHtml(s.reason)}</span>` : ""}</span>`;
}

function chainTable(chain, states, expiry) {
  const side = (i) => (i === null ? [DASH, DASH, DASH, DASH] : [price(chain.chain[i].bid), price(chain.chain[i].ask),
    `<span data-testid="iv-${i}">${states[i].iv === null ? DASH : pct(states[i].iv, 2)}</span>`, status(states, i)]);
  const rows = byStrike(chain, expiry).map((s) => [price(s.strike), ...side(s.call), ...side(s.put)]);
  return table(["strike (price)", "call bid", "call ask", "call implied vol (per year)", "call status", "put bid", "put ask", "put implied vol (per year)", "put status"], rows,
    { caption: "bid and ask in the underlying's currency; implied vol of the mid; status: fitted, or why the quote is not in the smile fit", left: [4, 8] });
}

function fitReport(chain, states, surface) {
  const excluded = excludedPerExpiry(chain, states);
  const rows = chain.expiries.map((e, j) => {
    const s = sliceFor(surface, e.expiry);
    const cell = (name, text) => `<span data-testid="${name}-${j}">${escapeHtml(text)}</span>`;
    if (!s) return [escapeHtml(utcText(e.expiry)), num(e.days, 1), DASH, DASH, cell("used", "0"), cell("excluded", String(excluded[e.expiry])), cell("rmse", "not fitted"), DASH, DASH];
    return [escapeHtml(utcText(e.expiry)), num(e.days, 1), price(s.forward, 4), pct(s.div_yield, 3), cell("used", String(s.quotes_used)),
      cell("excluded", String(excluded[e.expiry])), cell("rmse", num(s.rmse_vol_points, 3)),
      cell("butterfly-quotes", s.butterfly_arbitrage_in_quotes ? "yes: the quotes imply a negative density" : "no"),
      cell("butterfly-fit", s.butterfly_free ? `yes (min g = ${num(s.min_g, 4)})` : `no (min g = ${num(s.min_g, 4)} at k = ${num(s.min_g_at_k, 3)})`)];
  });
  const calendar = (surface.calendar_arbitrage || []).map((c) => `<li>${escapeHtml(`${c.expiries.map(utc).join(" to ")}: total variance falls by up to ${num(c.max_total_variance_deficit, 6)} for log-moneyness ${num(c.k_range[0], 3)} to ${num(c.k_range[1], 3)}; ${c.detail}`)}</li>`);
  return table(["expiry", "days", "forward (price)", "dividend yield (per year)", "quotes used", "quotes excluded", "RMSE (vol points)", "butterfly arbitrage in the quotes", "fitted smile butterfly-free"], rows,
    { caption: `SVI fit per expiry (${surface.style}, rate ${surface.rate}); RMSE in implied-vol points (1 point = 0.01 of \u03c3); excluded: flagged, in the money, or without an implied vol` })
    + `<p data-testid="calendar">Calendar arbitrage (total variance decreasing with maturity): ${calendar.length ? `<span class="bad">detected</span></p><ul>${calendar.join("")}</ul>` : '<span class="ok">none detected</span></p>'}`;
}

function showExpiry(expiry) {
  const { chain, states, surface } = shown;
  $("#chain-table").innerHTML = chainTable(chain, states, expiry);
  const slice = surface ? sliceFor(surface, expiry) : null;
  const el = $("#smile-chart");
  if (slice && slice.smile) {
    chart(el, smileSeries(slice.smile), [{ label: "market implied vol (fitted quotes)", points: "only" }, { label: "fitted SVI smile" }],
      { xLabel: "strike (price)", yLabel: "implied vol (% per year)", height: 260, title: `Smile at ${utcText(slice.expiry)}: RMSE ${num(slice.rmse_vol_points, 3)} vol points, ${slice.quotes_used} quotes` });
  } else {
    el.classList.remove("chart");
    el.innerHTML = `<p class="note">No fitted smile for this expiry${surface ? " (too few usable quotes; see the fit report)" : ""}.</p>`;
  }
}

async function show(event, onChain) {
  event.preventDefault();
  const out = $("#chain-out");
  out.dataset.state = "pending";
  const fail = (text) => {
    out.innerHTML = `<p class="error" data-testid="chain-error">${escapeHtml(text)}</p>`;
    out.dataset.state = "error";
  };
  const underlying = $("#c-underlying").value;
  const got = await api(`/v1/options/chains/${encodeURIComponent(underlying)}`);
  if (!got.ok) return fail(problem(got, `Chain ${underlying}`));
  const chain = got.data;
  const { rows, index } = usableRows(chain);
  if (!rows.length) return fail(`Chain ${underlying}: every quote is flagged; nothing to fit`);
  const body = analyticsRequests(rows, $("#c-style").value, Number($("#c-rate").value));
  const [iv, surface] = await Promise.all([api("/v1/options/implied-vol", { method: "POST", body: body.iv }),
    api("/v1/options/surface", { method: "POST", body: body.surface })]);
  if (!iv.ok) return fail(problem(iv, "Implied vols"));
  if (iv.data.implied_volatility.length !== rows.length) return fail(`Implied vols: ${iv.data.implied_volatility.length} answers for ${rows.length} quotes`);
  const states = quoteStates(chain, index, iv.data, surface.ok ? surface.data : null);
  shown = { chain, states, surface: surface.ok ? surface.data : null };
  const options = chain.expiries.map((e) => `<option value="${escapeHtml(e.expiry)}">${escapeHtml(`${utcText(e.expiry)} (${num(e.days, 1)} days, ${e.quotes} quotes)`)}</option>`).join("");
  out.innerHTML = `<p data-testid="chain-summary">${escapeHtml(`${chain.underlying} as of ${utcText(chain.as_of)}, spot ${price(chain.spot)}: ${chain.quotes} quotes in ${chain.expiries.length} expiries; ${chain.flagged} flagged by validation (excluded from every fit); ${iv.data.style} implied vols (${[...new Set(iv.data.method.filter(Boolean))].join(", ")}).`)}</p>
    <div class="inline"><label for="c-expiry">expiry<select id="c-expiry" class="fit">${options}</select></label></div>
    <div id="chain-table"></div><div id="smile-chart"></div>
    <h3>Smile fit report</h3>
    <div id="fit-report">${surface.ok ? fitReport(chain, states, surface.data) : `<p class="error" data-testid="surface-error">${escapeHtml(problem(surface, "Smile fit"))}</p>`}</div>`;
  $("#c-expiry").addEventListener("change", () => showExpiry($("#c-expiry").value));
  showExpiry(chain.expiries[0].expiry);
  out.dataset.state = "fresh";
  onChain({ underlying: chain.underlying, as_of: chain.as_of, spot: chain.spot, rows });
}

/** the chain chooser in `root`; `onChain` receives the shown chain's usable quotes (for the
 *  strategy builder). Only the list of stored chains is read on load: the analytics run when
 *  the user asks (a surface fit takes a few hundred milliseconds). */
export async function mountChain(root, onChain) {
  root.innerHTML = html();
  $("#chain-form").addEventListener("submit", (event) => show(event, onChain));
  await listChains();
}
