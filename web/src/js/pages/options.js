// Options: one option's price and Greeks (POST /v1/options/price) with its value across
// spots; the strategy builder (POST /v1/options/strategy, see strategy_builder.js); slots for
// the chain and smile that light up when this server has the analytics endpoints and say so
// when it does not.
import { api, problem } from "../api.js";
import { chart } from "../charts.js";
import { $, ready, section, status, table } from "../dom.js";
import { escapeHtml, num, price } from "../format.js";
import { linspace, payoff } from "../series.js";
import { mountBuilder } from "../strategy_builder.js";

const FIELDS = [["spot", "spot S", 100], ["strike", "strike K", 100], ["tau", "expiry (years)", 0.5], ["sigma", "volatility (per year)", 0.2], ["rate", "rate (per year)", 0.02], ["div", "dividend yield", 0]];
const SLOTS = [
  ["/v1/options/implied-vol", "Option chain with implied volatilities", { options: [{ price: 10.45, spot: 100, strike: 100, tau: 1, rate: 0.05, kind: "call" }] }],
  ["/v1/options/surface", "Fitted smile per expiry, with arbitrage flags", { quotes: [] }],
];

function form() {
  const inputs = FIELDS.map(([k, label, v]) => `<label for="f-${k}">${label}<input id="f-${k}" name="${k}" type="number" step="any" value="${v}" required></label>`).join("");
  return `<form class="inline" id="price-form">${inputs}
    <label for="f-kind">kind<select id="f-kind" name="kind"><option>call</option><option>put</option></select></label>
    <label for="f-style">style<select id="f-style" name="style"><option>european</option><option>american</option></select></label>
    <label for="f-method">method<select id="f-method" name="method"><option value="pinn">PINN</option><option value="closed">closed form / tree</option></select></label>
    <button type="submit">Price</button></form><div id="price-out"></div><div id="value-chart"></div>`;
}

function readForm() {
  const spec = {};
  for (const [k] of FIELDS) spec[k] = Number($(`#f-${k}`).value);
  spec.kind = $("#f-kind").value;
  spec.style = $("#f-style").value;
  return spec;
}

async function priceOne(event) {
  if (event) event.preventDefault();
  const spec = readForm();
  const method = $("#f-method").value;
  const r = await api("/v1/options/price", { method: "POST", body: { options: [spec], method, greeks: true } });
  const out = $("#price-out");
  if (!r.ok) {
    out.innerHTML = `<p class="error">${escapeHtml(problem(r, "Price"))}</p>`;
    return;
  }
  const g = r.data.results[0];
  out.innerHTML = table(["price", "delta (per 1 spot)", "gamma (per 1 spot\u00b2)", "vega (per 1.00 vol)", "theta (per year)", "rho (per 1.00 rate)"],
    [[price(g.price, 4), num(g.delta, 4), num(g.gamma, 5), num(g.vega, 4), num(g.theta, 4), num(g.rho, 4)]],
    { caption: `${spec.style} ${spec.kind}, ${r.data.method}; prices in the underlying's currency` });
  const spots = linspace(spec.spot * 0.6, spec.spot * 1.4, 41);
  const curve = await api("/v1/options/price/columns", { method: "POST", body: { columns: { ...spec, spot: spots }, method, greeks: false } });
  if (curve.ok) {
    const expiry = payoff([{ kind: spec.kind, strike: spec.strike, qty: 1, premium: 0 }], spots);
    chart($("#value-chart"), [spots, curve.data.columns.price, expiry],
      [{ label: "value today" }, { label: "pay-off at expiry", dash: [6, 4] }],
      { xLabel: "spot", yLabel: "option value", height: 240, title: "Value across spots (today and at expiry)" });
  }
}

function renderSlots(el, paths) {
  el.innerHTML = SLOTS.map(([path, title, example], i) => `<div class="slot" id="slot-${i}"><h3>${escapeHtml(title)}</h3>
    <p class="note">POST ${escapeHtml(path)}: <span data-availability>${path in paths ? '<span class="ok">available on this server</span>' : "not available on this server"}</span></p>
    <label for="slot-body-${i}">request (JSON)</label><textarea id="slot-body-${i}">${escapeHtml(JSON.stringify(example, null, 1))}</textarea>
    <button type="button" data-slot="${i}"${path in paths ? "" : " disabled"}>Send</button><div data-out></div></div>`).join("");
  el.querySelectorAll("button[data-slot]").forEach((b) => b.addEventListener("click", async () => {
    const i = Number(b.dataset.slot);
    const box = $(`#slot-${i}`);
    let body;
    try {
      body = JSON.parse($(`#slot-body-${i}`).value);
    } catch (err) {
      box.querySelector("[data-out]").innerHTML = `<p class="error">request: not JSON (${escapeHtml(err.message)})</p>`;
      return;
    }
    const r = await api(SLOTS[i][0], { method: "POST", body });
    box.querySelector("[data-out]").innerHTML = r.ok ? `<pre>${escapeHtml(JSON.stringify(r.data, null, 2))}</pre>`
      : r.status === 404 ? "<p>not available on this server</p>" : `<p class="error">${escapeHtml(problem(r, SLOTS[i][1]))}</p>`;
  }));
}

/** the service's own paths (from its OpenAPI document), to say what this server offers */
async function servicePaths() {
  const spec = await api("/openapi.json");
  return spec.ok ? spec.data.paths || {} : {};
}

export async function render(root) {
  root.innerHTML = section("Price one option", form())
    + section("Strategy builder: P&L, POP and expected P&L", '<div id="strategy-builder"></div>', "strategies")
    + section("Chain and smile", '<div id="slots"></div>');
  $("#price-form").addEventListener("submit", priceOne);
  const paths = servicePaths();
  await Promise.all([priceOne(), paths.then((p) => renderSlots($("#slots"), p)),
    mountBuilder($("#strategy-builder"), paths)]);
  status("Prices from the service's option networks (PINN) or closed form.");
  ready();
}
