// Small DOM helpers shared by the pages.
import { escapeHtml } from "./format.js";

export const $ = (sel, root = document) => root.querySelector(sel);

export function status(text, kind = "note") {
  const el = $("#status");
  el.className = kind;
  el.textContent = text || "";
}

/** a table from headers and rows of already-escaped HTML cells, in a scrolling wrapper */
export function table(headers, rows, { caption, rowAttrs, left = [0] } = {}) {
  const cls = (j) => (left.includes(j) ? ' class="l"' : "");
  const head = headers.map((h, j) => `<th scope="col"${cls(j)}>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((r, i) => `<tr${rowAttrs ? " " + rowAttrs(i) : ""}>${r.map((c, j) => `<td${cls(j)}>${c}</td>`).join("")}</tr>`).join("");
  const cap = caption ? `<caption class="note">${escapeHtml(caption)}</caption>` : "";
  // focusable, so a table wider than the screen can be scrolled with the keyboard
  const name = escapeHtml(caption || `table of ${headers.slice(0, 3).join(", ")}`);
  return `<div class="scroll" tabindex="0" role="region" aria-label="${name}"><table>${cap}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

export function section(title, inner = "", id = "") {
  return `<section${id ? ` id="${id}"` : ""}><h2>${escapeHtml(title)}</h2>${inner}</section>`;
}

/** mark the page as rendered (tests and the load-time check read this) */
export function ready() {
  window.__readyAt = performance.now();
  document.body.dataset.ready = "1";
}
