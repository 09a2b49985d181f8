// Device web page: the charts, hand-written on canvas (no libraries). app.js calls them;
// each sets its canvas's data-points (the tests read it).
"use strict";

function percentile(values, q) {
  if (!values.length) return NaN;
  const v = [...values].sort((a, b) => a - b);
  const pos = (v.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

function setupCanvas(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px system-ui, sans-serif";
  return ctx;
}

function lineChart(canvas, series, yMin, yMax, format) {
  const ctx = setupCanvas(canvas);
  const W = canvas.width, H = canvas.height, L = 44, R = 8, T = 8, B = 20;
  const n = Math.max(2, ...series.map((s) => s.values.length));
  ctx.strokeStyle = "#e5e7eb"; ctx.fillStyle = "#6b7280";
  for (let i = 0; i <= 4; i++) {
    const y = T + (H - T - B) * i / 4;
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
    ctx.fillText(format(yMax - (yMax - yMin) * i / 4), 2, y + 4);
  }
  ctx.fillText("request →", W - R - 60, H - 5);
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.beginPath();
    s.values.forEach((v, i) => {
      const x = L + (W - L - R) * i / (n - 1);
      const y = T + (H - T - B) * (1 - (v - yMin) / (yMax - yMin || 1));
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke(); ctx.lineWidth = 1;
  }
  canvas.dataset.points = String(Math.max(0, ...series.map((s) => s.values.length)));
}

function barChart(canvas, groups) {
  // groups: [{label, p50, p95}] in ms
  const ctx = setupCanvas(canvas);
  const W = canvas.width, H = canvas.height, L = 44, R = 8, T = 16, B = 30;
  const max = Math.max(1e-3, ...groups.map((g) => g.p95)) * 1.1;
  ctx.strokeStyle = "#e5e7eb"; ctx.fillStyle = "#6b7280";
  for (let i = 0; i <= 4; i++) {
    const y = T + (H - T - B) * i / 4;
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
    ctx.fillText((max - max * i / 4).toFixed(max < 1 ? 3 : 1), 2, y + 4);
  }
  const slot = (W - L - R) / Math.max(1, groups.length);
  groups.forEach((g, i) => {
    const x = L + slot * i + slot * 0.15, w = slot * 0.33;
    const bar = (v, dx, color) => {
      const h = (H - T - B) * v / max;
      ctx.fillStyle = color; ctx.fillRect(x + dx, H - B - h, w, h);
    };
    bar(g.p50, 0, "#2563eb"); bar(g.p95, w, "#f59e0b");
    ctx.fillStyle = "#374151";
    ctx.fillText(g.label, L + slot * i + 2, H - B + 12);
  });
  ctx.fillStyle = "#2563eb"; ctx.fillRect(W - 110, 3, 8, 8);
  ctx.fillStyle = "#374151"; ctx.fillText("p50", W - 99, 11);
  ctx.fillStyle = "#f59e0b"; ctx.fillRect(W - 66, 3, 8, 8);
  ctx.fillStyle = "#374151"; ctx.fillText("p95", W - 55, 11);
  canvas.dataset.points = String(state.history.length);
}

// rate–accuracy: one point per β the stream has used, mean bits sent against the accuracy at
// that β, so moving β traces the trade-off (classification models)
function rateAccuracyPoints(history) {
  const groups = new Map();
  for (const r of history) {
    if (r.correct === null || r.beta === undefined) continue;
    const key = r.beta.toExponential(2);
    const g = groups.get(key) || { beta: r.beta, bits: 0, correct: 0, n: 0 };
    g.bits += r.bits; g.correct += r.correct ? 1 : 0; g.n += 1;
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => ({ beta: g.beta, bits: g.bits / g.n,
                                            accuracy: g.correct / g.n, n: g.n }))
    .sort((a, b) => a.bits - b.bits);
}
function rateChart(canvas, points) {
  const ctx = setupCanvas(canvas);
  const W = canvas.width, H = canvas.height, L = 44, R = 8, T = 8, B = 20;
  const maxBits = Math.max(1, ...points.map((p) => p.bits)) * 1.1;
  ctx.strokeStyle = "#e5e7eb"; ctx.fillStyle = "#6b7280";
  for (let i = 0; i <= 4; i++) {
    const y = T + (H - T - B) * i / 4;
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
    ctx.fillText(`${100 - 25 * i}%`, 2, y + 4);
  }
  ctx.fillText(`bits → (max ${maxBits.toFixed(0)})`, W - R - 100, H - 5);
  const xy = (p) => [L + (W - L - R) * p.bits / maxBits, T + (H - T - B) * (1 - p.accuracy)];
  ctx.strokeStyle = "#db2777"; ctx.lineWidth = 2; ctx.beginPath();
  points.forEach((p, i) => { const [x, y] = xy(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
  ctx.stroke(); ctx.lineWidth = 1;
  for (const p of points) {
    const [x, y] = xy(p);
    ctx.fillStyle = "#db2777"; ctx.beginPath(); ctx.arc(x, y, 3, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = "#374151";
    ctx.fillText(`β ${p.beta.toExponential(0)}`, Math.min(x + 4, W - 44), Math.max(y - 4, 10));
  }
  canvas.dataset.points = String(points.length);
}

// constellation of the last request: consecutive real symbols as the I and Q of one channel
// use, the transmitted points (hollow, blue) beside the received ones (filled, orange), and
// the noise measured from them beside the channel's σ²
function showConstellation(reply) {
  const c = reply.constellation;
  const canvas = $("chart-constellation");
  if (!c) return;
  const pairs = (values) => {
    const out = [];
    for (let i = 0; i + 1 < values.length; i += 2) out.push([values[i], values[i + 1]]);
    if (values.length % 2) out.push([values[values.length - 1], 0]);
    return out;
  };
  const sent = pairs(c.sent), received = pairs(c.received);
  const extent = Math.max(1.2, ...c.sent.map(Math.abs), ...c.received.map(Math.abs)) * 1.05;
  const ctx = setupCanvas(canvas);
  const W = canvas.width, H = canvas.height, M = 16;
  const px = (v) => M + (W - 2 * M) * (v + extent) / (2 * extent);
  const py = (v) => H - M - (H - 2 * M) * (v + extent) / (2 * extent);
  ctx.strokeStyle = "#e5e7eb";
  for (const v of [-1, 0, 1]) {
    ctx.beginPath(); ctx.moveTo(px(v), M); ctx.lineTo(px(v), H - M); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(M, py(v)); ctx.lineTo(W - M, py(v)); ctx.stroke();
  }
  ctx.fillStyle = "#6b7280";
  ctx.fillText("I", W - M + 4, py(0) + 4); ctx.fillText("Q", px(0) - 3, M - 4);
  ctx.fillText("1", px(1) + 2, py(0) + 12); ctx.fillText("−1", px(-1) + 2, py(0) + 12);
  ctx.fillStyle = "#f59e0b";
  for (const [i, q] of received) {
    ctx.beginPath(); ctx.arc(px(i), py(q), 2.5, 0, 2 * Math.PI); ctx.fill();
  }
  ctx.strokeStyle = "#2563eb"; ctx.lineWidth = 1.5;
  for (const [i, q] of sent) {
    ctx.beginPath(); ctx.arc(px(i), py(q), 3.5, 0, 2 * Math.PI); ctx.stroke();
  }
  ctx.lineWidth = 1;
  canvas.dataset.points = String(sent.length);
  canvas.dataset.received = String(received.length);
  let note = c.note || "";
  if (!note && c.received.length === c.sent.length && c.sent.length) {
    const mse = c.sent.reduce((a, v, i) => a + (c.received[i] - v) ** 2, 0) / c.sent.length;
    canvas.dataset.measuredNoiseVar = String(mse);
    note = `${sent.length} I/Q pairs (${c.power} power) · measured mean (y−x)² ` +
      `${mse.toExponential(2)} per real symbol`;
    if (reply.channel_noise_var !== null && reply.channel_noise_var !== undefined) {
      note += ` · channel σ² ${reply.channel_noise_var.toExponential(2)}`;
    }
  }
  $("constellation-note").textContent = note;
}
