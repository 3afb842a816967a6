// Options: one option's price and Greeks (POST /v1/options/price) with its value across
// spots; a stored chain with implied vols and its fitted smile per expiry (chain_view.js);
// the strategy builder (POST /v1/options/strategy, see strategy_builder.js), which uses the
// shown chain for the market's distribution.
import { api, problem } from "../api.js";
import { chart } from "../charts.js";
import { mountChain } from "../chain_view.js";
import { $, ready, section, status, table } from "../dom.js";
import { escapeHtml, num, price } from "../format.js";
import { linspace, payoff } from "../series.js";
import { mountBuilder, useChain } from "../strategy_builder.js";

const FIELDS = [["spot", "spot S", 100], ["strike", "strike K", 100], ["tau", "expiry (years)", 0.5], ["sigma", "volatility (per year)", 0.2], ["rate", "rate (per year)", 0.02], ["div", "dividend yield", 0]];

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

/** the service's own paths (from its OpenAPI document), to say what this server offers */
async function servicePaths() {
  const spec = await api("/openapi.json");
  return spec.ok ? spec.data.paths || {} : {};
}

export async function render(root) {
  root.innerHTML = section("Price one option", form())
    + section("Chain and smile", '<div id="chain"></div>', "chain-smile")
    + section("Strategy builder: P&L, POP and expected P&L", '<div id="strategy-builder"></div>', "strategies");
  $("#price-form").addEventListener("submit", priceOne);
  const paths = servicePaths();
  await Promise.all([priceOne(), mountChain($("#chain"), useChain), mountBuilder($("#strategy-builder"), paths)]);
  status("Prices from the service's option networks (PINN) or closed form.");
  ready();
}
