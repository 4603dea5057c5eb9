// The request the form describes, and the ways to hand it on (curl, JSON). No DOM here.

/** The environment variable "copy as curl" reads the key from: the key itself is never copied. */
export const KEY_VARIABLE = "STEMFORGE_API_KEY";

/** A fresh id that is a valid blob path segment ([A-Za-z0-9][A-Za-z0-9._-]{0,127}). */
export function randomId(prefix = "pg") {
  const bytes = new Uint8Array(6);
  globalThis.crypto.getRandomValues(bytes);
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A random seed in the contract's range (0 .. 2^32-1). */
export function randomSeed() {
  const word = new Uint32Array(1);
  globalThis.crypto.getRandomValues(word);
  return word[0];
}

/** "C G  Am7, F | G/B" -> ["C", "G", "Am7", "F", "G/B"]. */
export function parseChords(text) {
  return (text || "").split(/[\s,|]+/).filter(Boolean);
}

function number(text) {
  const value = typeof text === "string" ? text.trim() : text;
  return value === "" || value === null || value === undefined ? undefined : Number(value);
}

function text(value) {
  const trimmed = (value || "").trim();
  return trimmed === "" ? undefined : trimmed;
}

/**
 * The POST /generate body for the form's values (strings as typed; `target_stems` a list;
 * `engines` a map stem -> engine name or "default"). Empty fields are left out, so the service
 * applies its defaults; "default" engines are left out, and so is `engines` when all are.
 */
export function buildRequest(values) {
  const stems = [...(values.target_stems || [])];
  const parameters = {};
  const put = (name, value) => { if (value !== undefined) parameters[name] = value; };
  put("target_bpm", number(values.target_bpm));
  put("duration_seconds", number(values.duration_seconds));
  put("style", text(values.style));
  const chords = parseChords(values.chord_progression);
  put("chord_progression", chords.length ? chords : undefined);
  put("prompt", text(values.prompt));
  put("temperature", number(values.temperature));
  put("random_seed", number(values.random_seed));
  const engines = {};
  for (const stem of stems) {
    const engine = (values.engines || {})[stem];
    if (engine && engine !== "default") engines[stem] = engine;
  }
  if (Object.keys(engines).length) parameters.engines = engines;
  return {
    generation_request_id: (values.generation_request_id || "").trim(),
    audio_file_id: (values.audio_file_id || "").trim(),
    target_stems: stems,
    parameters,
  };
}

/** A POSIX shell word for `value` (single quotes; a quote inside becomes '\''). */
export function shellQuote(value) {
  return `'${String(value).replace(/'/g, "'\\''")}'`;
}

/** The request as JSON, indented. */
export function toJson(body) {
  return JSON.stringify(body, null, 2);
}

/**
 * A curl command that sends `body` to `url`. With `withKey`, the key is read from
 * $STEMFORGE_API_KEY when the command runs (a copied command never carries the key itself).
 */
export function toCurl(url, body, { withKey = false } = {}) {
  const lines = [`curl -X POST ${shellQuote(url)}`, `-H 'Content-Type: application/json'`];
  if (withKey) lines.push(`-H "X-API-Key: $${KEY_VARIABLE}"`);
  lines.push(`-d ${shellQuote(toJson(body))}`);
  return lines.join(" \\\n  ");
}
