// Talking to the service: the API key (this tab's session storage, sent as a header, never in a
// URL) and the routes, relative to where the page is served (Serve may mount the app under a prefix).

const KEY_STORAGE = "stemforge.playground.apiKey";

/** The service's root: the page's modules live at {root}playground/. */
export const API_ROOT = new URL("../", import.meta.url);

export const apiKey = {
  get() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
  },
  set(value) {
    try {
      if (value) sessionStorage.setItem(KEY_STORAGE, value);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch { /* storage refused (private mode): the key lives only in the field */ }
  },
};

export function apiUrl(path) {
  return new URL(path, API_ROOT).href;
}

function sameOrigin(url) {
  return new URL(url, API_ROOT).origin === API_ROOT.origin;
}

function headersFor(url, extra = {}) {
  const headers = { ...extra };
  const key = apiKey.get();
  // Only to this service: a blob store elsewhere (Azure, a SAS URL) must never see the key.
  if (key && sameOrigin(url)) headers["X-API-Key"] = key;
  return headers;
}

/** A JSON call to the service: {status, ok, data} (data: the parsed body, or {message}). */
export async function callApi(path, { method = "GET", body } = {}) {
  const url = apiUrl(path);
  const init = { method, headers: headersFor(url, body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  init.cache = "no-store";
  const response = await fetch(url, init);
  let data;
  try { data = await response.json(); } catch { data = { message: `${response.status} ${response.statusText}` }; }
  return { status: response.status, ok: response.ok, data };
}

/** The bytes at a blob URL (the key goes along only to this service's own /blobs). */
export async function fetchBytes(url) {
  const response = await fetch(url, { headers: headersFor(url), cache: "no-store", credentials: "omit" });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText} for ${new URL(url).pathname}`);
  return new Uint8Array(await response.arrayBuffer());
}
