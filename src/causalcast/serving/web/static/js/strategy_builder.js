// The Options page's strategy builder: market inputs, presets and editable legs; every number
// it shows comes from POST /v1/options/strategy (one source of numbers with the CLI and the
// API), with the units the service states beside them. With a chain shown under "Chain and
// smile" (useChain) it sends that chain's usable quotes too, so the service adds the market's
// distribution. Elements the browser test reads carry data-testid attributes.
import { api, problem } from "./api.js";
import { utcText } from "./chain.js";
import { chart } from "./charts.js";
import { $, table } from "./dom.js";
import { DASH, escapeHtml, isNum, num, pct, price } from "./format.js";
import { DAY, PRESETS, orReason, parseStrikes, premiumWords, presetLegs, strategyRequest } from "./strategy.js";

const PATH = "/v1/options/strategy";
const money = (x) => price(x, 4);
const LAWS = { lognormal: "flat \u03c3 (lognormal, risk-neutral)", market: "market (fitted surface's density)", model: "model (Student-t forecast)" };
const MARKET = [["spot", "spot S (price)", 100], ["rate", "rate (per year, 0.04 = 4 %)", 0.04], ["div", "dividend yield (per year)", 0], ["sigma", "flat \u03c3 (per year, 0.2 = 20 %)", 0.2]];
const MODEL = [["mu", "mean log return \u03bc", 0.005], ["msigma", "log-return \u03c3", 0.06], ["nu", "degrees of freedom \u03bd (> 1)", 5], ["mdays", "forecast horizon (calendar days)", 30]];

function field([key, label, value], disabled = false) {
  return `<label for="s-${key}">${label}<input id="s-${key}" type="number" step="any" value="${value}" required${disabled ? " disabled" : ""}></label>`;
}

function html() {
  const options = Object.entries(PRESETS).map(([name, [label]]) => `<option value="${name}">${escapeHtml(label)}</option>`).join("");
  return `<p class="note">POST ${PATH}: <span data-testid="strategy-availability">checking\u2026</span>. Every number below is the service's answer for these legs.</p>
  <form id="strategy-form" novalidate>
    <fieldset><legend>Market</legend><div class="inline">${MARKET.map((f) => field(f)).join("")}</div>
      <label class="check"><input id="s-chain" type="checkbox" disabled> <span id="s-chain-label">use a stored chain for the market's distribution (show one under "Chain and smile" first)</span></label></fieldset>
    <fieldset><legend>Model's distribution</legend>
      <label class="check"><input id="s-model" type="checkbox"> add a forecast model's Student-t log return (\u03bc and \u03c3 of the log return over the forecast horizon)</label>
      <div class="inline">${MODEL.map((f) => field(f, true)).join("")}</div></fieldset>
    <fieldset><legend>Preset</legend><div class="inline">
      <label for="s-preset">strategy<select id="s-preset">${options}</select></label>
      <label for="s-strikes"><span>strikes, ascending (<span id="s-needs">2</span> needed)</span><input id="s-strikes" type="text" inputmode="decimal" value="95, 105"></label>
      <label for="s-days">expiry (calendar days)<input id="s-days" type="number" step="any" value="30"></label>
      <label for="s-far">far expiry, calendar only (days)<input id="s-far" type="number" step="any" value="60"></label>
      <label for="s-qty">quantity (units of the underlying)<input id="s-qty" type="number" step="any" value="1"></label>
      <button type="button" id="s-use-preset" class="secondary">Use preset</button></div>
      <p id="s-preset-error" class="error" role="alert" hidden></p></fieldset>
    <fieldset><legend>Legs</legend>
      <div class="scroll"><table><caption class="note">quantity in units of the underlying (+ bought, \u2212 sold); price empty = priced by the service from <span id="s-price-source">the flat \u03c3</span></caption>
      <thead><tr><th scope="col" class="l">leg</th><th scope="col">quantity</th><th scope="col">kind</th><th scope="col">strike (price)</th><th scope="col">expiry (calendar days)</th><th scope="col">price paid (per unit, optional)</th><th scope="col"><span class="sr">remove</span></th></tr></thead>
      <tbody id="s-legs"></tbody></table></div>
      <button type="button" id="s-add-leg" class="secondary">Add leg</button>
      <button type="submit" id="s-evaluate">Evaluate</button></fieldset>
  </form>
  <div id="strategy-out" aria-live="polite" data-state="empty"><p class="note">Choose a preset or edit the legs, then Evaluate.</p></div>`;
}

function legRow(leg) {
  const tr = document.createElement("tr");
  const kinds = ["call", "put", "stock"].map((k) => `<option${k === leg.kind ? " selected" : ""}>${k}</option>`).join("");
  const value = (x) => (isNum(x) ? String(x) : "");
  tr.innerHTML = `<td class="l" data-role="name"></td>
    <td><input data-f="quantity" type="number" step="any" value="${value(leg.quantity)}"></td>
    <td><select data-f="kind">${kinds}</select></td>
    <td><input data-f="strike" type="number" step="any" value="${value(leg.strike)}"></td>
    <td><input data-f="days" type="number" step="any" value="${value(leg.days)}"></td>
    <td><input data-f="price" type="number" step="any" min="0" value="${value(leg.price)}"></td>
    <td><button type="button" class="secondary" data-f="remove">Remove</button></td>`;
  tr.querySelector("[data-f=kind]").addEventListener("change", () => stockFields(tr));
  tr.querySelector("[data-f=remove]").addEventListener("click", () => {
    const body = tr.parentElement;
    tr.remove();
    name(body);
    stale();
  });
  stockFields(tr);
  return tr;
}

function stockFields(tr) {
  const stock = tr.querySelector("[data-f=kind]").value === "stock";
  for (const f of ["strike", "days"]) {
    const input = tr.querySelector(`[data-f=${f}]`);
    input.disabled = stock;
    if (stock) input.value = "";
  }
}

/** number the rows and give every control an accessible name with its leg number */
function name(body) {
  [...body.rows].forEach((tr, i) => {
    tr.querySelector("[data-role=name]").textContent = `leg ${i + 1}`;
    tr.dataset.testid = `leg-${i + 1}`;
    for (const el of tr.querySelectorAll("[data-f]")) el.setAttribute("aria-label", `leg ${i + 1} ${el.dataset.f}`);
  });
}

function setLegs(legs) {
  const body = $("#s-legs");
  body.replaceChildren(...legs.map(legRow));
  name(body);
  stale();
}

function readLegs() {
  const read = (tr, f) => {
    const v = tr.querySelector(`[data-f=${f}]`).value.trim();
    return v === "" ? null : Number(v);
  };
  return [...$("#s-legs").rows].map((tr) => ({ quantity: read(tr, "quantity"), kind: tr.querySelector("[data-f=kind]").value,
    strike: read(tr, "strike"), days: read(tr, "days"), price: read(tr, "price") }));
}

const value = (id) => Number($(`#s-${id}`).value);
let chain = null; // the chain shown under "Chain and smile": {underlying, as_of, spot, rows}
const usingChain = () => chain !== null && $("#s-chain").checked;

function request() {
  const market = { spot: value("spot"), rate: value("rate"), div: value("div"), sigma: value("sigma") };
  const forecast = $("#s-model").checked ? { mu: value("mu"), sigma: value("msigma"), nu: value("nu"), days: value("mdays") } : null;
  return strategyRequest(market, readLegs(), forecast, usingChain() ? chain.rows : null);
}

/** with the chain in use the service takes spot and dividend yield from it: show its spot,
 *  and say where unpriced legs get their volatility */
function chainFields() {
  const on = usingChain();
  $("#s-spot").disabled = on;
  $("#s-div").disabled = on;
  if (on) $("#s-spot").value = String(chain.spot);
  $("#s-price-source").textContent = on ? "the chain's fitted surface" : "the flat \u03c3";
}

/** offer `shown` (the chain the page shows: its usable quotes) to the builder, in use at once */
export function useChain(shown) {
  chain = shown;
  const box = $("#s-chain");
  box.disabled = false;
  box.checked = true;
  $("#s-chain-label").textContent = `use the chain of ${shown.underlying} as of ${utcText(shown.as_of)} (${shown.rows.length} usable quotes) for the market's distribution; the service then takes spot and dividend from the chain and prices unpriced legs from its fitted surface`;
  chainFields();
  stale();
}

function usePreset() {
  const error = $("#s-preset-error");
  try {
    setLegs(presetLegs($("#s-preset").value, parseStrikes($("#s-strikes").value), value("days"), value("far"), value("qty")));
    error.hidden = true;
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
}

function presetChanged() {
  const [, , , n] = PRESETS[$("#s-preset").value];
  const s = value("spot");
  const around = { 1: [1], 2: [0.95, 1.05], 3: [0.95, 1, 1.05], 4: [0.9, 0.95, 1.05, 1.1] }[n];
  $("#s-needs").textContent = String(n);
  $("#s-strikes").value = isNum(s) && s > 0 ? around.map((f) => Number((f * s).toPrecision(4))).join(", ") : "";
}

function stale() {
  const out = $("#strategy-out");
  if (out.dataset.state === "fresh") {
    out.dataset.state = "stale";
    out.classList.add("stale");
  }
}

async function evaluate(event) {
  if (event) event.preventDefault();
  const out = $("#strategy-out");
  out.dataset.state = "pending";
  const r = await api(PATH, { method: "POST", body: request() });
  out.classList.remove("stale");
  if (!r.ok) {
    out.innerHTML = `<p class="error" data-testid="strategy-error">${escapeHtml(problem(r, "Strategy"))}</p>`;
    out.dataset.state = "error";
    return;
  }
  show(out, r.data);
  out.dataset.state = "fresh";
}

function show(out, d) {
  const units = d.units || {};
  const wrap = (testid, text) => `<dd class="wrap" data-testid="${testid}">${escapeHtml(text)}</dd>`;
  const breakevens = Array.isArray(d.breakevens) && d.breakevens.length ? d.breakevens.map(money).join(", ") : "none (the P&L never crosses zero)";
  const days = isNum(d.horizon_years) ? ` (${num(d.horizon_years / DAY, 1)} calendar days)` : "";
  const summary = `<div class="card"><h3>At the horizon</h3><dl>
    <dt>net premium</dt>${wrap("net-premium", premiumWords(d.net_premium, money))}
    <dt>horizon</dt>${wrap("horizon", `${orReason(d.horizon_years, null, (x) => num(x, 4))} years${days}`)}
    <dt>breakevens (price)</dt>${wrap("breakevens", breakevens)}
    <dt>max profit</dt>${wrap("max-profit", orReason(d.max_profit, d.max_profit_reason, money))}
    <dt>max loss</dt>${wrap("max-loss", orReason(d.max_loss, d.max_loss_reason, money))}
  </dl></div>`;
  const laws = Object.entries(d.distributions || {});
  const lawRows = laws.map(([law, v]) => [escapeHtml(LAWS[law] || law),
    `<span data-testid="pop-${escapeHtml(law)}">${escapeHtml(orReason(v.pop, null, (x) => pct(x, 2)))}</span>`,
    `<span data-testid="expected-pnl-${escapeHtml(law)}">${escapeHtml(orReason(v.expected_pnl, null, money))}</span>`,
    `<span class="note">${escapeHtml(v.note || "")}</span>`]);
  const legRows = (d.legs || []).map((leg, i) => [`leg ${i + 1}`, num(leg.quantity, 4), escapeHtml(leg.kind),
    leg.kind === "stock" ? DASH : money(leg.strike), leg.kind === "stock" ? DASH : num(leg.tau / DAY, 2),
    `<span data-testid="leg-price-${i + 1}">${escapeHtml(orReason(leg.price, null, money))}</span>`]);
  const gu = d.greeks_units || {};
  const greeks = Object.entries(d.greeks || {});
  out.innerHTML = `<p class="note" data-testid="strategy-units">Money: ${escapeHtml(units.money || "the underlying's currency")}. Quantities: ${escapeHtml(units.quantity || "units of the underlying")}.</p>
    <div class="cards">${summary}</div>
    ${table(["distribution", "POP: P(P&L > 0)", "expected P&L (money)", "what it is"], lawRows, { caption: `P&L convention: ${d.pnl_convention || ""}`, left: [0, 3] })}
    ${table(["leg", "quantity", "kind", "strike (price)", "expiry (calendar days)", "price (per unit, money)"], legRows, { caption: `prices given, or the service's closed form at ${"market" in (d.distributions || {}) ? "the chain's fitted surface" : "the flat \u03c3"}` })}
    ${table(greeks.map(([k]) => `${k} (${gu[k] || "?"})`), [greeks.map(([k, v]) => `<span data-testid="greek-${escapeHtml(k)}">${escapeHtml(orReason(v, null, (x) => num(x, 4)))}</span>`)], { caption: `Greeks of the whole position now (${gu.convention || ""} units)`, left: [] })}
    <div id="strategy-chart"></div>
    <p class="note">${escapeHtml(d.net_premium_note || "")}${(d.notes || []).map((n) => `; ${escapeHtml(n)}`).join("")}</p>`;
  const curves = d.pnl_curves || {};
  const names = Object.keys(curves).filter((k) => k !== "spot");
  if (Array.isArray(curves.spot) && names.length) {
    chart($("#strategy-chart"), [curves.spot, ...names.map((k) => curves[k])],
      names.map((k, i) => ({ label: k === "expiry" ? "P&L at the horizon" : `P&L at ${k}`, dash: i ? [6, 4] : undefined })),
      { xLabel: "spot (price)", yLabel: "P&L (money)", height: 260, title: "P&L across spots" });
  }
}

/** the builder in `root`, holding a vertical spread's legs; `paths` (a promise of the
 *  service's OpenAPI paths) says whether this server has the endpoint. Nothing is evaluated
 *  until the user asks: the page's load is the pricer's, and no number appears unasked. */
export async function mountBuilder(root, paths) {
  root.innerHTML = html();
  $("#s-preset").addEventListener("change", presetChanged);
  $("#s-use-preset").addEventListener("click", usePreset);
  $("#s-add-leg").addEventListener("click", () => {
    const body = $("#s-legs");
    body.appendChild(legRow({ quantity: 1, kind: "call", strike: value("spot"), days: value("days") }));
    name(body);
    stale();
    body.rows[body.rows.length - 1].querySelector("[data-f=quantity]").focus();
  });
  $("#s-chain").addEventListener("change", () => {
    chainFields();
    stale();
  });
  $("#s-model").addEventListener("change", () => {
    for (const [k] of MODEL) $(`#s-${k}`).disabled = !$("#s-model").checked;
    stale();
  });
  $("#strategy-form").addEventListener("input", stale);
  $("#strategy-form").addEventListener("submit", evaluate);
  usePreset();
  const availability = paths.then((p) => {
    const available = PATH in p;
    $("[data-testid=strategy-availability]").innerHTML = available ? '<span class="ok">available on this server</span>' : "not available on this server";
    $("#s-evaluate").disabled = !available;
  });
  await availability;
}
