// Device web page: plain JS, no libraries. Talks to the device's own HTTP API.
"use strict";

const $ = (id) => document.getElementById(id);
const STAGES = [
  ["preprocess", "preprocess"], ["encode", "encode"], ["device_to_channel", "dev→chan"],
  ["channel", "channel"], ["airtime", "air-time (model)"], ["channel_to_edge", "chan→edge"],
  ["edge_queue", "edge queue"], ["decode", "decode"], ["total", "device total"],
  ["http", "browser round trip"],
];
const CHART_STAGES = ["encode", "channel", "edge_queue", "decode", "total", "http"];
const state = {
  model: null, knobs: null, streaming: false,
  history: [],  // {correct, psnr, symbols, latency:{stage: s}}
  count: 0,  // stream requests
  replies: 0,  // replies shown
  last: null,  // the last image sent {blob, label}: sent again when the channel PSNR moves
  gains: [],  // block fading: channel gain |h| of each reply, dB (20·log10 |h|)
};
const isReconstruction = () => state.model?.task === "reconstruction";

// Admin token: when the device has one, knob changes answer 401. The page then asks for
// the token once, keeps it in sessionStorage (this tab only) and sends it as a bearer token.
const TOKEN_KEY = "coinference-admin-token";

async function api(method, path, body) {
  const send = () => {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token && method !== "GET") init.headers["Authorization"] = `Bearer ${token}`;
    return fetch(path, init);
  };
  let response = await send();
  if (response.status === 401 && method !== "GET") {
    const had = sessionStorage.getItem(TOKEN_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
    const token = window.prompt(
      had ? "The admin token was refused. Admin token:" : "This change needs the admin token:");
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token.trim());
      response = await send();
      if (response.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${data.detail}`);
  return data;
}

function showError(message) { $("error").textContent = message || ""; }

// ---- knobs -------------------------------------------------------------------------------
function betaFromSlider(v) {
  const [lo, hi] = state.knobs.beta_range;
  return Math.exp(Math.log(lo) + (Math.log(hi) - Math.log(lo)) * v / 1000);
}
function sliderFromBeta(beta) {
  const [lo, hi] = state.knobs.beta_range;
  return Math.round(1000 * (Math.log(beta) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)));
}
function showKnobs(k) {
  state.knobs = k;
  // a model trained at one β (an image model, or a fixed-β model) has no β to choose
  const fixedBeta = k.beta_range[0] === k.beta_range[1];
  $("beta-knob").hidden = fixedBeta;
  $("beta-fixed").hidden = !fixedBeta;
  $("beta-fixed").textContent = fixedBeta ? `β fixed at ${k.beta_range[0]} by this model` : "";
  // one β (or an image model): no rate–accuracy trade-off to trace
  $("rate-figure").hidden = fixedBeta || isReconstruction();
  if (fixedBeta) $("beta-out").textContent = String(k.beta);
  else $("beta").value = sliderFromBeta(k.beta);
  if (!fixedBeta) $("beta-out").textContent = k.beta.toExponential(2);
  // the variable-length switch only for a model that supports it (VL-VFE)
  $("vl-knob").hidden = !k.variable_length_supported;
  $("variable-length").checked = Boolean(k.variable_length);
  const manual = k.snr_mode === "manual";
  $("snr-mode").checked = manual;
  $("snr-mode-label").textContent = manual
    ? "manual: the slider below"
    : "from channel feedback (CSI)";
  $("snr-db").min = k.snr_db_range[0];
  $("snr-db").max = k.snr_db_range[1];
  // no manual SNR set yet (feedback mode): the slider offers the middle of the trained range
  $("snr-db").value = k.snr_db ?? (k.snr_db_range[0] + k.snr_db_range[1]) / 2;
  $("snr-db").disabled = !manual;
  $("snr-db-knob").classList.toggle("disabled", !manual);
  $("snr-db-out").textContent = Number($("snr-db").value).toFixed(1);
}
function showChannel(c) {
  $("link-mode").value = c.link_mode || "analog";
  $("link-mode").dataset.applied = c.link_mode || "analog";
  $("psnr").value = c.psnr_db;
  $("psnr-out").textContent = Number(c.psnr_db).toFixed(1);
  $("psnr").dataset.applied = String(c.psnr_db);
  const fading = c.fading && !c.fading.startsWith("none") ? `, fading ${c.fading}` : "";
  $("channel-state").textContent =
    `channel: ${c.profile || ""}, σ²=${Number(c.noise_var).toExponential(2)}, ${c.baud} Bd` +
    fading;
}
async function putKnobs(changes) {
  try { showKnobs(await api("PUT", "/v1/knobs", changes)); showError(""); }
  catch (e) {
    showError(e.message);
    try { showKnobs(await api("GET", "/v1/knobs")); } catch (_) { /* keep the error shown */ }
  }
}

// ---- one inference -------------------------------------------------------------------------
async function infer(blob, trueLabel) {
  const form = new FormData();
  form.append("file", blob, "image.png");
  const t0 = performance.now();
  // constellation=true: the reply carries the sent and received symbols (the I/Q plot)
  const response = await fetch("/v1/infer?constellation=true", { method: "POST", body: form });
  const http = (performance.now() - t0) / 1000;
  const reply = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(`infer: ${response.status} ${reply.detail}`);
  reply.latency_s.http = http;
  return reply;
}

// Multi-device model: which link this device is, and which links the edge's group decision had
function linksText(group) {
  if (!group) return "";
  const links = Array.from({ length: group.n_links }, (_, k) =>
    `link ${k}${k === group.link_index ? " (this device)" : ""}: ` +
    (group.missing_links.includes(k) ? "missing" : "arrived"));
  return `group of ${group.n_links} links · ${links.join(" · ")}` +
    (group.partial ? " · PARTIAL decision" : "") +
    ` · waited ${(group.group_wait_s * 1e3).toFixed(1)} ms for the group`;
}

// digital link: coded bits on the air, air-time, MCS and block losses
function linkText(reply) {
  const air = ` · air-time ${(1e3 * reply.airtime_s).toFixed(2)} ms`;
  if (!reply.link_mode || reply.link_mode === "analog") return ` · analog link${air}`;
  let text = ` · ${reply.link_mode} link: ${reply.bits_sent} coded bits ` +
    `(${reply.predicted_bits.toFixed(1)} predicted)${air}`;
  if (reply.mcs) text += ` · ${reply.mcs}`;
  if (reply.link_mode === "ldpc-qam") {
    text += ` · block error rate ${(100 * (reply.block_error_rate ?? 0)).toFixed(1)}%`;
  }
  if (reply.link_lost) text += " · BLOCK LOST: decoded from zeros";
  return text;
}

function showReconstruction(rec) {
  const box = $("reconstruction");
  box.hidden = !rec;
  if (!rec) return;
  $("rec-sent").src = `data:image/png;base64,${rec.sent_png_base64}`;
  $("rec-received").src = `data:image/png;base64,${rec.received_png_base64}`;
  box.dataset.psnr = String(rec.psnr_db);
}

function showReply(reply, trueLabel) {
  const p = $("prediction");
  const rec = reply.reconstruction;
  showReconstruction(rec);
  p.classList.toggle("metrics", Boolean(rec));
  p.textContent = rec
    ? `PSNR ${rec.psnr_db.toFixed(2)} dB · SSIM ${rec.ssim.toFixed(3)} ` +
      `(${rec.shape[1]}×${rec.shape[2]} as the model sees it)`
    : reply.class_name ?? Number(reply.regression_value).toFixed(3);
  p.dataset.label = reply.label ?? "";
  p.classList.remove("correct", "wrong");
  if (trueLabel !== null && trueLabel !== undefined && reply.label !== undefined) {
    p.classList.add(reply.label === trueLabel ? "correct" : "wrong");
  }
  $("transmission").textContent =
    `${reply.symbols_sent} of ${reply.d} symbols, ${reply.bits_sent} bits · β=` +
    `${reply.beta.toExponential(2)} · encoder SNR ${reply.snr_db.toFixed(1)} dB (` +
    `${reply.snr_mode}) · channel PSNR ${reply.channel_psnr_db?.toFixed(1)} dB`;
  $("transmission").dataset.channelPsnr = reply.channel_psnr_db;
  state.replies += 1;  // replies shown so far (tests wait on it)
  $("transmission").dataset.count = String(state.replies);
  // the channel's PSNR outside the SNR range the encoder was trained for: say so
  $("snr-warning").hidden = !reply.snr_out_of_range;
  $("snr-warning").textContent = reply.snr_out_of_range
    ? `outside the model's range: ${reply.snr_note || "the encoder uses the nearest trained SNR"}`
    : "";
  $("links").textContent = linksText(reply.group);
  $("transmission").textContent += linkText(reply) + fadingText(reply);
  showGain(reply);
  showConstellation(reply);
  const probs = $("probs");
  probs.innerHTML = "";
  const names = state.model?.class_names || [];
  (reply.probabilities || []).forEach((prob, i) => {
    const row = document.createElement("div");
    row.className = "bar" + (i === reply.label ? " top" : "");
    row.innerHTML = `<span></span><div class="track"><div class="fill"></div></div>` +
      `<span class="p">${(100 * prob).toFixed(1)}%</span>`;
    row.firstChild.textContent = names[i] || String(i);
    row.querySelector(".fill").style.width = `${(100 * prob).toFixed(2)}%`;
    probs.appendChild(row);
  });
  const body = $("latency-table").querySelector("tbody");
  body.innerHTML = "";
  const total = reply.latency_s.http || reply.latency_s.total || 1;
  for (const [key, title] of STAGES) {
    const s = reply.latency_s[key];
    if (s === undefined) continue;
    const tr = document.createElement("tr");
    tr.dataset.stage = key;
    if (key === "total") tr.className = "total";
    const width = Math.min(100, 100 * s / total);
    tr.innerHTML = `<td></td><td class="ms">${(s * 1e3).toFixed(3)}</td>` +
      `<td class="lbar"><div style="width:${width.toFixed(1)}%"></div></td>`;
    tr.firstChild.textContent = title;
    body.appendChild(tr);
  }
}

// block fading: this request's channel gain and the receiver's instantaneous SNR
function fadingText(reply) {
  if (reply.channel_gain === null || reply.channel_gain === undefined) return "";
  return ` · fading |h| ${reply.channel_gain.toFixed(2)}, instantaneous SNR ` +
    `${reply.instantaneous_snr_db.toFixed(1)} dB`;
}
function showGain(reply) {
  const figure = $("gain-figure");
  if (reply.channel_gain === null || reply.channel_gain === undefined) return;
  figure.hidden = false;
  state.gains.push(Math.max(-30, 20 * Math.log10(Math.max(reply.channel_gain, 1e-6))));
  if (state.gains.length > 200) state.gains.shift();
  lineChart($("chart-gain"), [{ values: state.gains, color: "#9333ea" }], -30, 10,
    (v) => `${v.toFixed(0)} dB`);
}

async function runImage(blob, trueLabel) {
  state.last = { blob, label: trueLabel };
  const reply = await infer(blob, trueLabel);
  showReply(reply, trueLabel);
  if (reply.channel_psnr_db !== null && reply.channel_psnr_db !== undefined
      && !$("psnr").matches(":active")) {
    $("psnr-out").textContent = reply.channel_psnr_db.toFixed(1);
  }
  return reply;
}

function showPreview(blob) {
  const img = $("preview");
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
  $("drop-hint").hidden = true;
}

async function randomSample() {
  const s = await api("GET", "/v1/samples/random");
  const bytes = Uint8Array.from(atob(s.png_base64), (c) => c.charCodeAt(0));
  return { blob: new Blob([bytes], { type: "image/png" }), label: s.label, s };
}

async function onFile(file) {
  if (!file) return;
  showError("");
  showPreview(file);
  $("truth").textContent = `file: ${file.name}`;
  try { await runImage(file, null); } catch (e) { showError(e.message); }
}

async function onRandom() {
  showError("");
  try {
    const { blob, label, s } = await randomSample();
    showPreview(blob);
    $("truth").textContent = `test image #${s.index}, true class: ${s.class_name}`;
    await runImage(blob, label);
  } catch (e) { showError(e.message); }
}

function drawCharts() {
  const h = state.history;
  const acc = [], syms = [];
  h.forEach((r, i) => {
    const window = h.slice(Math.max(0, i - 49), i + 1).filter((x) => x.correct !== null);
    acc.push(window.length ? window.filter((x) => x.correct).length / window.length : 0);
    syms.push(r.symbols);
  });
  if (isReconstruction()) {  // PSNR of each received image, dB
    const psnrs = h.map((r) => r.psnr).slice(-200);
    const top = Math.max(30, ...psnrs.map((v) => Math.ceil(v / 5) * 5));
    lineChart($("chart-accuracy"), [{ values: psnrs, color: "#16a34a" }], 0, top,
      (v) => `${v.toFixed(0)} dB`);
  } else {
    lineChart($("chart-accuracy"), [{ values: acc.slice(-200), color: "#16a34a" }], 0, 1,
      (v) => `${Math.round(v * 100)}%`);
  }
  if (!isReconstruction()) rateChart($("chart-rate"), rateAccuracyPoints(h));
  const maxSym = Math.max(1, state.model?.d || 1, ...syms);
  lineChart($("chart-symbols"), [{ values: syms.slice(-200), color: "#2563eb" }], 0, maxSym,
    (v) => v.toFixed(0));
  const recent = h.slice(-100);
  barChart($("chart-latency"), CHART_STAGES.map((key) => {
    const values = recent.map((r) => r.latency[key]).filter((v) => v !== undefined);
    const short = { http: "browser", edge_queue: "queue" };
    return { label: short[key] || key,
             p50: 1e3 * percentile(values, 0.5) || 0, p95: 1e3 * percentile(values, 0.95) || 0 };
  }));
}

// ---- stream mode ------------------------------------------------------------------------------
async function streamLoop() {
  while (state.streaming) {
    try {
      const { blob, label, s } = await randomSample();
      const reply = await runImage(blob, label);
      showPreview(blob);
      $("truth").textContent = `test image #${s.index}, true class: ${s.class_name}`;
      const rec = reply.reconstruction;
      state.history.push({
        correct: rec || reply.label === undefined ? null : reply.label === label,
        psnr: rec ? rec.psnr_db : null, symbols: reply.symbols_sent, latency: reply.latency_s,
        beta: reply.beta, bits: reply.bits_sent,
      });
      if (state.history.length > 1000) state.history.shift();
      state.count += 1;
      const stats = $("stream-stats");
      stats.dataset.count = String(state.count);
      const judged = state.history.filter((x) => x.correct !== null);
      const acc = judged.length ? judged.filter((x) => x.correct).length / judged.length : 0;
      if (rec) {
        const recent = state.history.slice(-50).map((x) => x.psnr);
        const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
        stats.textContent = `${state.count} requests · mean PSNR ${mean.toFixed(2)} dB ` +
          `over the last ${recent.length}`;
      } else {
        stats.textContent = `${state.count} requests · accuracy ${(100 * acc).toFixed(1)}% ` +
          `over the last ${judged.length}`;
      }
      drawCharts();
    } catch (e) {
      showError(e.message);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function toggleStream() {
  state.streaming = !state.streaming;
  const btn = $("stream-btn");
  btn.textContent = state.streaming ? "Stop stream" : "Start stream";
  btn.classList.toggle("running", state.streaming);
  if (state.streaming) streamLoop();
}

// ---- wiring -----------------------------------------------------------------------------------
async function init() {
  const drop = $("drop"), file = $("file");
  drop.addEventListener("click", () => file.click());
  $("choose-btn").addEventListener("click", () => file.click());
  file.addEventListener("change", () => onFile(file.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    onFile(e.dataTransfer.files[0]);
  });
  $("random-btn").addEventListener("click", onRandom);
  $("stream-btn").addEventListener("click", toggleStream);
  $("beta").addEventListener("input", () => {
    $("beta-out").textContent = betaFromSlider(Number($("beta").value)).toExponential(2);
  });
  $("beta").addEventListener("change", () =>
    putKnobs({ beta: betaFromSlider(Number($("beta").value)) }));
  $("psnr").addEventListener("input", () => {
    $("psnr-out").textContent = Number($("psnr").value).toFixed(1);
  });
  $("psnr").addEventListener("change", async () => {
    try {
      showChannel(await api("PUT", "/v1/channel/psnr", { psnr_db: Number($("psnr").value) }));
      showError("");
      // the same image again at the new PSNR (not while streaming: the stream sends anyway)
      if (state.last && !state.streaming) await runImage(state.last.blob, state.last.label);
    } catch (e) { showError(e.message); }
  });
  $("link-mode").addEventListener("change", async () => {
    try {
      showChannel(await api("PUT", "/v1/channel/link-mode", { mode: $("link-mode").value }));
      showError("");
    } catch (e) {
      showError(e.message);
      try { showChannel(await api("GET", "/v1/channel")); } catch (_) { /* keep the error */ }
    }
  });
  $("variable-length").addEventListener("change", () =>
    putKnobs({ variable_length: $("variable-length").checked }));
  // checked = "manual SNR": the encoder uses the slider's SNR (sent along, since the knobs
  // may hold none in feedback mode); unchecked = the channel's CSI feedback
  $("snr-mode").addEventListener("change", () =>
    putKnobs($("snr-mode").checked
      ? { snr_mode: "manual", snr_db: Number($("snr-db").value) }
      : { snr_mode: "feedback" }));
  $("snr-db").addEventListener("input", () => {
    $("snr-db-out").textContent = Number($("snr-db").value).toFixed(1);
  });
  $("snr-db").addEventListener("change", () => putKnobs({ snr_db: Number($("snr-db").value) }));

  try {
    state.model = await api("GET", "/v1/model");
    const m = state.model;
    $("model-info").textContent = `${m.model_id} · ${m.task} · ${m.dataset} · d=${m.d} · ` +
      `${m.bits ? m.bits + "-bit" : "float"} symbols · variable length ${m.variable_length}`;
    $("link-mode-knob").hidden = !m.entropy_coded;  // only an entropy-coded model goes digital
    if (isReconstruction()) {
      $("result-title").textContent = "Received image";
      $("chart-quality-caption").textContent = "PSNR of each received image (dB)";
    }
    const k = await api("GET", "/v1/knobs");
    $("psnr").min = Math.floor(k.snr_db_range[0] - 5);
    $("psnr").max = Math.ceil(k.snr_db_range[1] + 5);
    showKnobs(k);
    showChannel(await api("GET", "/v1/channel"));
  } catch (e) { showError(e.message); }
  drawCharts();
  document.body.dataset.ready = "1";
}

init();
