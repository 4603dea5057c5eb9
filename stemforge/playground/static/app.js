// The playground page: the form, the job's progress, and the result's players and downloads.
// Every element is built with DOM calls (never innerHTML), so nothing the service returns runs.

import { apiKey, apiUrl, callApi, fetchBytes } from "./api.js";
import { Mixer } from "./mixer.js";
import { buildRequest, randomId, randomSeed, toCurl, toJson } from "./request.js";
import { drawWaveform } from "./waveform.js";
import { zipStore } from "./zip.js";

const POLL_SECONDS = 0.4;
const SLOW_POLL_SECONDS = 1.5; // after the first half minute
const $ = (id) => document.getElementById(id);

/** An element: h("button", {type: "button", onclick}, "Play"). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

function clock(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${(seconds - minutes * 60).toFixed(1).padStart(4, "0")}`;
}

function bytesLabel(count) {
  return count >= 1e6 ? `${(count / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(count / 1e3))} kB`;
}

// What the page knows; exposed as window.playground for tests and the curious.
const state = {
  config: null,
  engines: [], // engine names deployed, from /health
  job: null, // {id, request, status, stagesSeen}
  result: null, // {status, files: [{name, bytes, type}], urls: []}
  mixer: null,
};
window.playground = state;

// ---------- the form ----------

function formValues() {
  const stems = [];
  const engines = {};
  for (const row of $("stem-choices").children) {
    const stem = row.dataset.stem;
    if (row.querySelector("input").checked) stems.push(stem);
    engines[stem] = row.querySelector("select").value;
  }
  const value = (id) => $(id).value;
  return {
    generation_request_id: value("generation_request_id"),
    audio_file_id: value("audio_file_id"),
    target_stems: stems,
    target_bpm: value("target_bpm"),
    duration_seconds: value("duration_seconds"),
    style: value("style"),
    chord_progression: value("chord_progression"),
    prompt: value("prompt"),
    temperature: value("temperature"),
    random_seed: value("random_seed"),
    engines,
  };
}

/** The request, or null (and the browser points at the bad field) when the form is not valid. */
function currentRequest() {
  const stems = $("stem-choices").querySelectorAll("input:checked");
  const first = $("stem-choices").querySelector("input");
  if (first) first.setCustomValidity(stems.length ? "" : "Choose at least one stem.");
  if (!$("request-form").reportValidity()) return null;
  return buildRequest(formValues());
}

function fillForm(request) {
  const p = request.parameters || {};
  $("generation_request_id").value = request.generation_request_id || randomId();
  $("audio_file_id").value = request.audio_file_id || "playground";
  for (const row of $("stem-choices").children) {
    const stem = row.dataset.stem;
    row.querySelector("input").checked = (request.target_stems || []).includes(stem);
    const select = row.querySelector("select");
    const engine = (p.engines || {})[stem];
    select.value = engine && [...select.options].some((o) => o.value === engine) ? engine : "default";
    syncStemRow(row);
  }
  const set = (id, v) => { $(id).value = v === undefined || v === null ? "" : String(v); };
  set("target_bpm", p.target_bpm);
  set("duration_seconds", p.duration_seconds);
  set("style", p.style);
  set("chord_progression", (p.chord_progression || []).join(" "));
  set("prompt", p.prompt);
  set("temperature", p.temperature);
  set("random_seed", p.random_seed);
}

function syncStemRow(row) {
  const checked = row.querySelector("input").checked;
  row.querySelector("select").disabled = !checked;
  row.classList.toggle("chosen", checked);
}

function engineOptions(select) {
  const chosen = select.value || "default";
  select.replaceChildren(h("option", { value: "default" }, "default"),
    ...state.engines.map((name) => h("option", { value: name }, name)));
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "default";
}

function buildForm(config) {
  const defaults = new Set(["drums", "bass", "guitar"]);
  $("stem-choices").replaceChildren(...config.stems.map((stem) => {
    const checkbox = h("input", { type: "checkbox", id: `stem-${stem}`, checked: defaults.has(stem) });
    const select = h("select", { id: `engine-${stem}`, "aria-label": `engine for ${stem}` });
    const row = h("li", { dataset: { stem } },
      h("label", { class: "check", for: `stem-${stem}` }, checkbox, ` ${stem}`), select);
    checkbox.addEventListener("change", () => { checkbox.setCustomValidity(""); syncStemRow(row); });
    engineOptions(select);
    syncStemRow(row);
    return row;
  }));
  $("styles").replaceChildren(...config.styles.map((style) => h("option", { value: style })));
  const range = (id, { min, max }, step) => {
    $(id).min = String(min);
    $(id).max = String(max);
    if (step) $(id).step = step;
  };
  range("target_bpm", config.bpm);
  range("duration_seconds", config.duration_seconds);
  range("temperature", config.temperature);
  range("random_seed", config.random_seed, "1");
  $("generation_request_id").value = randomId();
}

// ---------- status lines ----------

function say(id, text, kind = "") {
  const element = $(id);
  element.textContent = text;
  element.dataset.kind = kind;
}

async function loadHealth() {
  try {
    const { ok, data } = await callApi("health");
    if (!ok) throw new Error(data.message || "no answer");
    state.engines = Object.keys(data.engines || {});
    const engines = Object.entries(data.engines || {})
      .map(([name, e]) => `${name} (${e.status}${e.device && e.device !== "none" ? `, ${e.device}` : ""})`)
      .join(", ");
    say("health", `Service ${data.status} · mode ${data.services?.mode ?? "?"} · engines: ${engines || "none"}`,
      data.status === "healthy" ? "ok" : "warn");
    for (const select of $("stem-choices").querySelectorAll("select")) engineOptions(select);
  } catch (error) {
    say("health", `The service did not answer /health: ${error.message}`, "error");
  }
}

// ---------- copying ----------

async function copy(text, what) {
  $("copy-output").value = text;
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      copied = true;
    }
  } catch { /* denied: fall back */ }
  if (!copied) {
    $("copy-details").open = true;
    $("copy-output").select();
    try { copied = document.execCommand("copy"); } catch { copied = false; }
  }
  say("form-status", copied ? `Copied ${what}.` : `Select the text below and copy ${what} yourself.`, "ok");
}

// ---------- submitting and polling ----------

function explain(status, data) {
  const message = data?.message || JSON.stringify(data);
  if (status === 401) return `${message} Enter the service's API key above.`;
  if (status === 409) return `${message} Press "New id" to send a different request.`;
  return `${status}: ${message}`;
}

async function submit(event) {
  event.preventDefault();
  const request = currentRequest();
  if (!request) return;
  $("generate").disabled = true;
  say("form-status", "Sending…");
  try {
    const { status, ok, data } = await callApi("generate", { method: "POST", body: request });
    if (!ok) {
      say("form-status", explain(status, data), "error");
      if (status === 401) $("api-key").focus();
      return;
    }
    say("form-status", `${status} ${data.message}`, "ok");
    startJob(request);
    // The next request gets its own id (the same id with another body would be a 409).
    $("generation_request_id").value = randomId();
  } catch (error) {
    say("form-status", `The request did not reach the service: ${error.message}`, "error");
  } finally {
    $("generate").disabled = false;
  }
}

function startJob(request) {
  const job = { id: request.generation_request_id, request, status: null, stagesSeen: [], started: Date.now() };
  state.job = job;
  resetResult();
  $("job").hidden = false;
  $("stem-progress").replaceChildren();
  $("job-progress").value = 0;
  say("job-status", `${job.id}: accepted`);
  poll(job);
}

async function poll(job) {
  while (state.job === job) {
    let answer;
    try {
      answer = await callApi(`generate/${encodeURIComponent(job.id)}`);
    } catch (error) {
      say("job-status", `${job.id}: cannot reach the service (${error.message}); retrying`, "warn");
    }
    if (state.job !== job) return;
    if (answer && !answer.ok) {
      say("job-status", `${job.id}: ${explain(answer.status, answer.data)}`, "error");
      return;
    }
    if (answer) {
      showProgress(job, answer.data);
      if (answer.data.status !== "processing") {
        await showResult(job, answer.data);
        return;
      }
    }
    const slow = Date.now() - job.started > 30_000;
    await new Promise((resolve) => setTimeout(resolve, (slow ? SLOW_POLL_SECONDS : POLL_SECONDS) * 1000));
  }
}

function showProgress(job, status) {
  job.status = status;
  if (job.stagesSeen.at(-1) !== status.stage) job.stagesSeen.push(status.stage);
  const progress = status.progress || {};
  const running = status.status === "processing";
  const eta = running && progress.eta_seconds > 0 ? ` · about ${Math.ceil(progress.eta_seconds)} s left` : "";
  const took = running ? "" : ` in ${describe(status.processing_time_seconds)} s`;
  const attempt = status.attempt > 1 ? ` (attempt ${status.attempt})` : "";
  say("job-status", `${job.id}: ${status.stage}${attempt}${eta}${took}`, status.status === "failed" ? "error" : "");
  $("job-progress").value = progress.fraction ?? (status.status === "completed" ? 1 : 0);
  const stems = progress.stems || Object.fromEntries((status.target_stems || []).map((s) => [s, {}]));
  const list = $("stem-progress");
  for (const [stem, info] of Object.entries(stems)) {
    let row = list.querySelector(`[data-stem="${CSS.escape(stem)}"]`);
    if (!row) {
      const id = `progress-${stem}`;
      row = h("li", { dataset: { stem } },
        h("label", { for: id }, stem), h("progress", { id, max: "1", value: "0" }), h("span", { class: "state" }));
      list.append(row);
    }
    row.querySelector("progress").value = info.fraction ?? 0;
    row.querySelector(".state").textContent = [info.engine, info.state].filter(Boolean).join(" · ");
  }
}

// ---------- the result ----------

function resetResult() {
  if (state.mixer) state.mixer.close();
  state.mixer = null;
  for (const url of state.result?.urls || []) URL.revokeObjectURL(url);
  state.result = null;
  $("result").hidden = true;
  $("tracks").replaceChildren();
  for (const id of ["play", "stop", "seek", "download-zip", "download-mix"]) $(id).disabled = true;
}

function objectUrl(bytes, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  state.result.urls.push(url);
  return url;
}

function downloadLink(label, bytes, type, filename) {
  return h("a", { class: "download", href: objectUrl(bytes, type), download: filename }, label);
}

function toggle(label, pressed, onpress) {
  const button = h("button", { type: "button", "aria-pressed": String(pressed), class: "toggle" }, label);
  button.addEventListener("click", () => {
    const next = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(next));
    onpress(next);
  });
  return button;
}

function trackRow(entry) {
  // entry: {name, kind, stem (the service's entry, if a stem), wav, midi}
  const canvasId = `wave-${entry.name}`;
  const canvas = h("canvas", { id: canvasId, class: "wave", role: "img", "aria-label": `waveform of ${entry.name}` });
  const volumeId = `volume-${entry.name}`;
  const info = entry.stem
    ? [entry.stem.engine, entry.stem.duration_seconds && `${entry.stem.duration_seconds} s`,
      `${entry.stem.sample_rate} Hz`, bytesLabel(entry.stem.file_size_bytes)].filter(Boolean).join(" · ")
    : "the service's mix";
  const links = [downloadLink(`${entry.name}.wav`, entry.wav, "audio/wav", `${entry.name}.wav`)];
  if (entry.midi) links.push(downloadLink(`${entry.name}.mid`, entry.midi, "audio/midi", `${entry.name}.mid`));
  const row = h("li", { class: `track ${entry.kind}`, dataset: { track: entry.name } },
    h("div", { class: "track-name" }, h("strong", {}, entry.name), h("span", { class: "hint" }, info)),
    h("div", { class: "wave-box" }, canvas),
    h("div", { class: "track-controls", role: "group", "aria-label": `${entry.name} controls` },
      toggle("Mute", entry.muted, (on) => state.mixer.setMuted(entry.track, on)),
      toggle("Solo", false, (on) => state.mixer.setSolo(entry.track, on)),
      h("label", { for: volumeId, class: "volume" }, "Volume",
        h("input", {
          id: volumeId, type: "range", min: "0", max: "1.5", step: "0.05", value: "1",
          oninput: (e) => state.mixer.setVolume(entry.track, Number(e.target.value)),
        }))),
    h("div", { class: "track-links" }, ...links),
    entry.stem ? figures(entry.stem) : null);
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    state.mixer.seek(((event.clientX - box.left) / box.width) * state.mixer.duration);
  });
  return row;
}

/** A stem entry's own warnings, when the service sends them there. */
function figures(stem) {
  if (!Array.isArray(stem.warnings) || !stem.warnings.length) return null;
  return h("ul", { class: "stem-warnings track-figures" }, ...stem.warnings.map((w) => h("li", {}, describe(w))));
}

const isMap = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

function describe(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(3)));
  if (Array.isArray(value)) return value.length ? value.map(describe).join(", ") : "—";
  if (isMap(value)) return Object.entries(value).map(([k, v]) => `${k} ${describe(v)}`).join(" · ");
  return String(value);
}

function pairs(object) {
  return Object.entries(object).flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, describe(value))]);
}

/**
 * The quality figures, where the service sends them: each stem's (`generated_stems[].quality`)
 * as a table, a figure per row and a stem per column; the request's (`quality`) as a list, a
 * nested group (the mix) under its own heading.
 */
function showQuality(quality, stems) {
  const body = $("quality-body");
  body.replaceChildren();
  const measured = stems.filter((s) => isMap(s.quality) && Object.keys(s.quality).length);
  if (measured.length) {
    const figureNames = [...new Set(measured.flatMap((s) => Object.keys(s.quality)))];
    body.append(h("div", { class: "table-scroll" }, h("table", { id: "stem-quality" },
      h("caption", {}, "Per stem"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "figure"),
        ...measured.map((s) => h("th", { scope: "col" }, s.stem_type)))),
      h("tbody", {}, ...figureNames.map((name) => h("tr", {}, h("th", { scope: "row" }, name),
        ...measured.map((s) => h("td", {}, describe(s.quality[name])))))))));
  }
  if (isMap(quality) && Object.keys(quality).length) {
    const entries = Object.entries(quality);
    const groups = entries.filter(([, v]) => isMap(v) && Object.values(v).some(isMap));
    const plain = entries.filter((entry) => !groups.includes(entry));
    const list = h("dl", { class: "figures", id: "request-quality" }, ...pairs(Object.fromEntries(plain)));
    body.append(h("h4", {}, "The request"), list);
    for (const [name, group] of groups) body.append(h("h4", {}, name), h("dl", { class: "figures" }, ...pairs(group)));
  }
  $("quality").hidden = !body.children.length;
}

function showWarnings(warnings) {
  const list = Array.isArray(warnings) ? warnings : warnings ? [warnings] : [];
  $("warnings-list").replaceChildren(...list.map((w) => h("li", {}, describe(w))));
  $("warnings").hidden = !list.length;
}

async function showResult(job, status) {
  $("raw-status").textContent = JSON.stringify(status, null, 2);
  $("applied").replaceChildren(...pairs(status.parameters || {}));
  state.result = { status, files: [], urls: [] };
  $("result").hidden = false;
  showQuality(status.quality, status.generated_stems || []);
  showWarnings(status.warnings);
  if (status.status !== "completed") {
    say("result-status", `Failed: ${status.error || "no reason given"}`, "error");
    return;
  }
  const stems = status.generated_stems || [];
  say("result-status", `Loading ${stems.length} stem${stems.length === 1 ? "" : "s"}…`);
  const sampleRate = stems[0]?.sample_rate || 44100;
  const context = new AudioContext({ sampleRate, latencyHint: "playback" });
  const mixer = new Mixer(context);
  state.mixer = mixer;
  try {
    const sources = stems.map((stem) => ({ name: stem.stem_type, kind: "stem", stem, url: stem.blob_url, midiUrl: stem.midi_url }));
    if (status.mix_url) sources.push({ name: "mix", kind: "mix", url: status.mix_url, muted: true });
    const entries = await Promise.all(sources.map(async (source) => {
      const [wav, midi] = await Promise.all([
        fetchBytes(source.url), source.midiUrl ? fetchBytes(source.midiUrl) : Promise.resolve(null)]);
      // decodeAudioData detaches what it is given: decode a copy, keep the bytes for downloads.
      const buffer = await context.decodeAudioData(wav.slice().buffer);
      return { ...source, wav, midi, buffer, muted: Boolean(source.muted) };
    }));
    if (state.result?.status !== status) return; // a newer job took over meanwhile
    const folder = status.generation_request_id;
    for (const entry of entries) {
      entry.track = mixer.addTrack({ name: entry.name, buffer: entry.buffer, muted: entry.muted, kind: entry.kind });
      state.result.files.push({ name: `${folder}/${entry.name}.wav`, data: entry.wav });
      if (entry.midi) state.result.files.push({ name: `${folder}/${entry.name}.mid`, data: entry.midi });
    }
    state.result.files.push({ name: `${folder}/request.json`, data: toJson(job.request) });
    state.result.files.push({ name: `${folder}/result.json`, data: JSON.stringify(status, null, 2) });
    $("tracks").replaceChildren(...entries.map(trackRow));
    for (const entry of entries) drawWaveform($(`wave-${entry.name}`), entry.buffer);
    $("seek").max = String(mixer.duration);
    for (const id of ["play", "stop", "seek", "download-zip", "download-mix"]) $(id).disabled = false;
    mixer.loop = $("loop").checked;
    mixer.onchange = showTransport;
    showTransport();
    const extra = status.mix_url ? " The service's mix is the last row (muted: unmute or solo it to hear it)." : "";
    say("result-status", `${entries.length} track${entries.length === 1 ? "" : "s"} ready, ${clock(mixer.duration)} long, in ${describe(status.processing_time_seconds)} s.${extra}`, "ok");
  } catch (error) {
    say("result-status", `Could not load the audio: ${error.message}`, "error");
  }
}

function showTransport() {
  const mixer = state.mixer;
  if (!mixer) return;
  const position = mixer.position();
  $("position").textContent = `${clock(position)} / ${clock(mixer.duration)}`;
  if (document.activeElement !== $("seek")) $("seek").value = String(position);
  $("play").textContent = mixer.playing ? "Pause" : "Play";
  $("play").setAttribute("aria-pressed", String(mixer.playing));
  $("tracks").style.setProperty("--position", String(mixer.duration ? position / mixer.duration : 0));
}

function animate() {
  if (state.mixer?.playing) showTransport();
  requestAnimationFrame(animate);
}

function save(bytes, type, filename) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---------- wiring ----------

function wire() {
  const key = $("api-key");
  key.value = apiKey.get();
  key.addEventListener("input", () => apiKey.set(key.value.trim()));
  $("forget-key").addEventListener("click", () => { key.value = ""; apiKey.set(""); key.focus(); });
  $("new-id").addEventListener("click", () => { $("generation_request_id").value = randomId(); });
  $("random-seed").addEventListener("click", () => { $("random_seed").value = String(randomSeed()); });
  $("request-form").addEventListener("submit", submit);
  $("copy-curl").addEventListener("click", () => {
    const request = currentRequest();
    if (request) copy(toCurl(apiUrl("generate"), request, { withKey: Boolean(apiKey.get()) }), "the curl command");
  });
  $("copy-json").addEventListener("click", () => {
    const request = currentRequest();
    if (request) copy(toJson(request), "the request as JSON");
  });
  $("play").addEventListener("click", () => (state.mixer.playing ? state.mixer.pause() : state.mixer.play()));
  $("stop").addEventListener("click", () => state.mixer.stop());
  $("loop").addEventListener("change", (e) => state.mixer?.setLoop(e.target.checked));
  $("seek").addEventListener("input", (e) => state.mixer.seek(Number(e.target.value)));
  $("download-zip").addEventListener("click", () => {
    const id = state.result.status.generation_request_id;
    save(zipStore(state.result.files), "application/zip", `${id}.zip`);
  });
  $("download-mix").addEventListener("click", async () => {
    const button = $("download-mix");
    button.disabled = true;
    try {
      const id = state.result.status.generation_request_id;
      save(await state.mixer.renderMix(), "audio/wav", `${id}-mix.wav`);
    } finally {
      button.disabled = false;
    }
  });
  $("reuse").addEventListener("click", () => {
    const { job, result } = state;
    if (!job) return;
    const applied = result?.status?.parameters || {};
    const parameters = { ...job.request.parameters };
    if (applied.random_seed !== undefined) parameters.random_seed = applied.random_seed; // the same take
    fillForm({ ...job.request, parameters, generation_request_id: randomId() });
    say("form-status", "The form holds the settings of this take, with its seed and a new id.", "ok");
    $("generation_request_id").focus();
  });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const track of state.mixer?.tracks || []) {
        const canvas = $(`wave-${track.name}`);
        if (canvas) drawWaveform(canvas, track.buffer);
      }
    }, 150);
  });
  requestAnimationFrame(animate);
}

async function main() {
  wire();
  try {
    const response = await fetch(new URL("config.json", import.meta.url), { cache: "no-store" });
    state.config = await response.json();
    buildForm(state.config);
  } catch (error) {
    say("form-status", `Could not load the form's choices: ${error.message}`, "error");
    return;
  }
  await loadHealth();
  document.body.dataset.ready = "true";
}

main();
