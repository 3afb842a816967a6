// The one way pages talk to the service: same origin, the API key from this tab's
// sessionStorage in X-API-Key, JSON in and out.

const KEY = "causalcast-api-key";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

/** fetch JSON; resolves to {ok, status, data} and never throws for HTTP errors */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { accept: "application/json" };
  if (apiKey()) headers["x-api-key"] = apiKey();
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    return { ok: false, status: 0, data: { detail: `network error: ${err}` } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { ok: response.ok, status: response.status, data };
}

/** a readable one-line message for a failed call */
export function problem(result, what) {
  if (result.status === 401) return `${what}: the server needs an API key - enter it above.`;
  if (result.status === 404) return `${what}: not available on this server (${detail(result)}).`;
  return `${what}: HTTP ${result.status} ${detail(result)}`;
}

function detail(result) {
  const d = result.data && result.data.detail;
  if (typeof d === "string") return d;
  if (d && typeof d.error === "string") return d.error;
  // FastAPI's 422: [{loc: ["body", "legs", 0, "strike"], msg}] -> "legs.0.strike: msg"
  if (Array.isArray(d) && d.every((e) => e && typeof e.msg === "string")) {
    return d.map((e) => `${(e.loc || []).filter((x) => x !== "body").join(".")}: ${e.msg}`).join("; ");
  }
  return d ? JSON.stringify(d) : "";
}
