// Copy the dashboard's own sources (src/) and the vendored npm files the service needs into
// the Python package's static folder. Source maps are dropped (and their comments, so no
// browser asks for them). Run by `make web` after `npm ci`; the output is committed, so an
// installed causalcast needs neither node nor npm.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "causalcast", "serving", "web", "static");
const VENDOR = {
  "uplot/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
  "uplot/dist/uPlot.min.css": "uPlot.min.css",
  "swagger-ui-dist/swagger-ui-bundle.js": "swagger-ui-bundle.js",
  "swagger-ui-dist/swagger-ui.css": "swagger-ui.css",
  "redoc/bundles/redoc.standalone.js": "redoc.standalone.js",
};

rmSync(out, { recursive: true, force: true });
cpSync(join(here, "src"), out, { recursive: true });
mkdirSync(join(out, "vendor"), { recursive: true });
for (const [from, to] of Object.entries(VENDOR)) {
  const text = readFileSync(join(here, "node_modules", from), "utf8").replace(/\n?\/[/*]# sourceMappingURL=\S+(\s*\*\/)?\s*$/, "\n");
  // ReDoc's sidebar badge loads its logo from cdn.redoc.ly: point it at a local copy.
  writeFileSync(join(out, "vendor", to), text.replaceAll("https://cdn.redoc.ly/redoc/logo-mini.svg", "/ui/static/favicon.svg"));
}
console.log(`dashboard assets -> ${out}`);
