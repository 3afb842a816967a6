// uPlot wrappers: distinct colour-blind-safe colours, legends below the plot (never over the
// data), log axes where growth is compared, widths that follow the container.
/* global uPlot */

export const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B", "#7F7F7F"];

const charts = new Set();

function width(el) {
  return Math.max(280, Math.min(el.clientWidth || 800, 1200));
}

/**
 * A chart in `el`: data = [x, ...ys]; series = [{label, colour?, dash?, fill?, points?}];
 * opts = {title, time (x in epoch seconds), logY, yLabel, xLabel, height, bands, yRange, xRange}
 */
export function chart(el, data, series, opts = {}) {
  el.classList.add("chart");
  el.innerHTML = "";
  if (opts.title) {
    const t = document.createElement("div");
    t.className = "title";
    t.textContent = opts.title;
    el.appendChild(t);
  }
  const holder = document.createElement("div");
  el.appendChild(holder);
  const config = {
    width: width(el),
    height: opts.height || 280,
    scales: {
      x: { time: !!opts.time, ...(opts.xRange ? { range: opts.xRange } : {}) },
      // a log axis spans the data (not whole decades), so growth fills the plot
      y: { distr: opts.logY ? 3 : 1, ...(opts.yRange ? { range: opts.yRange } : opts.logY ? { range: (u, lo, hi) => [lo / 1.05, hi * 1.05] } : {}) },
    },
    axes: [
      { label: opts.xLabel, stroke: "#333", ...(opts.xSplits ? { splits: () => opts.xSplits } : {}) },
      { label: opts.yLabel, stroke: "#333", size: 60 },
    ],
    legend: { show: true, live: true },
    cursor: { drag: { x: true, y: false } },
    series: [
      { label: opts.xLabel || (opts.time ? "date" : "x"), value: opts.time ? (u, v) => (v == null ? "--" : new Date(v * 1000).toISOString().slice(0, 10)) : undefined },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.colour || COLOURS[i % COLOURS.length],
        width: s.width || 1.5,
        dash: s.dash,
        fill: s.fill,
        points: s.points ? { show: true, size: 6 } : { show: false },
        paths: s.points === "only" ? () => null : undefined,
        spanGaps: true,
        value: s.value,
      })),
    ],
    bands: opts.bands,
  };
  const plot = new uPlot(config, data, holder);
  plot._el = el;
  charts.add(plot);
  (window.__charts = window.__charts || []).push(plot); // read by the browser tests
  return plot;
}

let pending = null;
window.addEventListener("resize", () => {
  clearTimeout(pending);
  pending = setTimeout(() => {
    for (const plot of charts) {
      if (!document.body.contains(plot.root)) charts.delete(plot);
      else plot.setSize({ width: width(plot._el), height: plot.height });
    }
  }, 150);
});
