// The explorer page: draws the latent plane, keeps the decoded digit in step with the point,
// samples around it, and encodes drawings and uploads. The model runs in Rust (wasm): on WebGPU
// when the browser has it and it is faster, else on the CPU reference. `?backend=webgpu|cpu`
// forces a backend.
import init, { Explorer, preprocessRgba } from "./pkg/latent_explorer.js";

const $ = (id) => document.getElementById(id);
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const MAX_UPLOAD_PIXELS = 4096 * 4096; // as crate/preprocess.rs
const SAMPLES = 16;
// Why the explorer runs on the CPU, one plain sentence per cause; the codes come from the Rust
// side (FallbackCause in crate/gpu.rs), the technical detail goes under "details".
const CPU_REASONS = {
  "no-webgpu": "This browser has no WebGPU, so the explorer runs on the CPU instead; everything still works.",
  "no-adapter": "This browser has WebGPU but offered no GPU to use, so the explorer runs on the CPU instead; everything still works.",
  "device-lost": "The GPU stopped responding (its device was lost), so the explorer now runs on the CPU; everything still works.",
  "requested-cpu": "You asked for the CPU with ?backend=cpu, so the explorer runs on the CPU; everything works just the same.",
  "gpu-failed": "The GPU ran into an error, so the explorer now runs on the CPU; everything still works.",
  "cpu-faster": "Here the CPU draws digits faster than this browser's GPU adapter, so the explorer uses the CPU; add ?backend=webgpu to the address to use the GPU anyway.",
};

const state = {
  explorer: null, side: 28, latent: 2, range: 4,
  z: [0, 0],            // the point
  sigma: null,          // encoder's sigma for the point, when it came from an encoding
  samples: [],          // sampled z's, drawn as dots
  seed: 1,
  lastDecodeMs: null,
  decoding: false, pendingZ: null,
  digitOnGpu: false,    // the GPU draws the digit canvas itself (no readback)
  gpuStarting: false,   // the page runs on the CPU while WebGPU starts
  // Drag-to-pixels latency: the input event that asked for the digit being decoded, and for
  // each digit shown, ms from that event to the animation frame that first shows it.
  pendingInput: 0, latencies: [], work: [],
};

const record = (list, ms) => { list.push(ms); if (list.length > 1000) list.shift(); };

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
}

function setStatus() {
  const e = state.explorer;
  if (!e) return;
  const t = state.lastDecodeMs == null ? "" : ` · last decode ${state.lastDecodeMs.toFixed(1)} ms`;
  const where = state.digitOnGpu && e.drawsOnGpu() ? " · drawn on the GPU" : "";
  const n = e.recoveries?.() ?? 0;
  const lost = n ? ` · recovered from ${n} lost GPU device${n > 1 ? "s" : ""}` : "";
  const starting = state.gpuStarting ? " · starting WebGPU…" : "";
  $("status").textContent = `backend: ${e.backend()}${where}${starting}${t}${lost}`;
  const note = e.gpuNote();
  $("notice").hidden = !note;
  if (note) {
    $("notice-text").textContent = CPU_REASONS[note.cause] ?? CPU_REASONS["gpu-failed"];
    $("notice-detail").textContent = `${note.cause}: ${note.detail}`;
  }
  $("sampling-where").textContent = e.usesGpu() ? "GPU" : "CPU";
}

// ---- the latent plane -------------------------------------------------------------------
const plane = $("plane");
const pctx = plane.getContext("2d");
let planeBackdrop = null; // the scatter, drawn once per model
const MANIFOLD_GRID = 24;  // decoded digits per side of the optional manifold backdrop

function toCanvas([x, y]) {
  const s = plane.width / (2 * state.range);
  return [(x + state.range) * s, (state.range - y) * s];
}

function fromClient(clientX, clientY) {
  const r = plane.getBoundingClientRect();
  const fx = (clientX - r.left) / r.width, fy = (clientY - r.top) / r.height;
  const clamp = (v) => Math.max(-state.range, Math.min(state.range, v));
  return [clamp((fx * 2 - 1) * state.range), clamp((1 - fy * 2) * state.range)];
}

function drawBackdrop() {
  const e = state.explorer;
  const mu = e.embeddingMu(), labels = e.embeddingLabels(), d = state.latent;
  // A symmetric range that holds 99.5% of the points, rounded up to a whole unit.
  const mags = [];
  for (let i = 0; i < labels.length; i++) mags.push(Math.max(Math.abs(mu[i * d]), Math.abs(mu[i * d + 1] ?? 0)));
  mags.sort((a, b) => a - b);
  state.range = mags.length ? Math.max(2, Math.ceil(mags[Math.floor(mags.length * 0.995)] ?? 3)) : 4;
  const W = plane.width;
  pctx.fillStyle = "#fff";
  pctx.fillRect(0, 0, W, W);
  if ($("manifold").checked && state.manifold?.explorer === e && state.manifold.range === state.range) {
    pctx.drawImage(state.manifold.canvas, 0, 0, W, W);
  }
  // Axes and unit grid.
  pctx.strokeStyle = "#eee";
  pctx.fillStyle = "#888";
  pctx.font = "11px system-ui";
  for (let v = -state.range; v <= state.range; v++) {
    const [cx] = toCanvas([v, 0]);
    const [, cy] = toCanvas([0, v]);
    pctx.beginPath(); pctx.moveTo(cx, 0); pctx.lineTo(cx, W); pctx.stroke();
    pctx.beginPath(); pctx.moveTo(0, cy); pctx.lineTo(W, cy); pctx.stroke();
    if (v !== 0) { pctx.fillText(String(v), cx + 2, W / 2 - 3); pctx.fillText(String(v), W / 2 + 3, cy - 2); }
  }
  pctx.strokeStyle = "#bbb";
  pctx.beginPath(); pctx.moveTo(W / 2, 0); pctx.lineTo(W / 2, W); pctx.moveTo(0, W / 2); pctx.lineTo(W, W / 2); pctx.stroke();
  pctx.fillText("z₁", W - 16, W / 2 + 14);
  pctx.fillText("z₂", W / 2 + 6, 12);
  pctx.globalAlpha = 0.55;
  for (let i = 0; i < labels.length; i++) {
    const [cx, cy] = toCanvas([mu[i * d], mu[i * d + 1] ?? 0]);
    pctx.fillStyle = COLORS[labels[i] % 10];
    pctx.fillRect(cx - 1.2, cy - 1.2, 2.4, 2.4);
  }
  pctx.globalAlpha = 1;
  planeBackdrop = pctx.getImageData(0, 0, W, W);
  $("legend").innerHTML = COLORS.map((c, i) => `<span style="--c:${c}">${i}</span>`).join("");
}

function drawPlane() {
  if (!planeBackdrop) return;
  pctx.putImageData(planeBackdrop, 0, 0);
  // q(z|x) as a 1- and 2-sigma ellipse, when the point came from an encoding.
  if (state.sigma) {
    const s = plane.width / (2 * state.range);
    const [cx, cy] = toCanvas(state.z);
    pctx.strokeStyle = "#d1495b";
    for (const k of [1, 2]) {
      pctx.beginPath();
      pctx.ellipse(cx, cy, k * state.sigma[0] * s, k * state.sigma[1] * s, 0, 0, 2 * Math.PI);
      pctx.stroke();
    }
  }
  pctx.fillStyle = "#111";
  for (const z of state.samples) {
    const [cx, cy] = toCanvas(z);
    pctx.beginPath(); pctx.arc(cx, cy, 3, 0, 2 * Math.PI); pctx.fill();
  }
  const [px, py] = toCanvas(state.z);
  const point = $("point");
  point.style.left = `${(100 * px) / plane.width}%`;
  point.style.top = `${(100 * py) / plane.height}%`;
  point.setAttribute("aria-valuetext", `z = ${fmt(state.z)}`);
}

const fmt = (z) => z.map((v) => v.toFixed(3)).join(", ");

// The decoded manifold: a grid of digits decoded at the centres of the plane's cells, drawn
// faintly (ink as grey on white) behind the points, so the plane reads as a map of what the
// decoder draws where.
async function showManifold() {
  const e = state.explorer;
  if (!$("manifold").checked || (state.manifold?.explorer === e && state.manifold.range === state.range)) {
    drawBackdrop();
    drawPlane();
    return;
  }
  const G = MANIFOLD_GRID, n = state.side, range = state.range, d = state.latent;
  const z = new Float32Array(G * G * d);
  for (let i = 0; i < G; i++) {
    for (let j = 0; j < G; j++) {
      const k = (i * G + j) * d;
      z[k] = -range + ((j + 0.5) * 2 * range) / G;      // column: z1 left to right
      if (d > 1) z[k + 1] = range - ((i + 0.5) * 2 * range) / G; // row: z2 top to bottom
    }
  }
  try {
    const pixels = await e.decode(z);
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = G * n;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(G * n, G * n);
    for (let c = 0; c < G * G; c++) {
      const ox = (c % G) * n, oy = Math.floor(c / G) * n;
      for (let p = 0; p < n * n; p++) {
        const v = Math.max(0, Math.min(1, pixels[c * n * n + p]));
        const q = 4 * ((oy + Math.floor(p / n)) * G * n + ox + (p % n));
        img.data[q] = img.data[q + 1] = img.data[q + 2] = Math.round(255 - 150 * v);
        img.data[q + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    if (state.explorer !== e) return;
    state.manifold = { explorer: e, range, canvas, z, pixels };
    drawBackdrop();
    drawPlane();
  } catch (err) {
    showError(`Decoding the manifold failed: ${err.message ?? err}`);
  }
}

// ---- digits -----------------------------------------------------------------------------
function paintDigit(canvas, pixels, offset = 0) {
  const n = state.side;
  canvas.width = n; canvas.height = n;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const v = Math.round(Math.max(0, Math.min(1, pixels[offset + i])) * 255);
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// A fresh digit canvas: one the GPU drew on has a WebGPU context and cannot be painted by 2D.
function freshDigitCanvas() {
  const old = $("digit");
  const c = old.cloneNode(false);
  c.width = c.height = state.side;
  old.replaceWith(c);
  state.digitOnGpu = false;
  return c;
}

// Decodes the latest requested z and shows it; requests that arrive meanwhile collapse into one.
// On the GPU the decoder's output is drawn straight onto the canvas; on the CPU it is painted.
async function requestDecode(z, inputTime) {
  state.pendingZ = z.slice();
  state.pendingInput = inputTime ?? performance.now();
  if (state.decoding) return;
  state.decoding = true;
  try {
    while (state.pendingZ) {
      const zz = state.pendingZ, input = state.pendingInput;
      state.pendingZ = null;
      const t0 = performance.now();
      const pixels = await state.explorer.show(Float32Array.from(zz));
      state.lastDecodeMs = performance.now() - t0;
      if (pixels && state.digitOnGpu && state.explorer.drawsOnGpu()) {
        // Decoded on the CPU just before the GPU took the canvas over: show it from the GPU.
        state.pendingZ ??= zz;
        continue;
      }
      if (pixels) {
        const canvas = state.digitOnGpu ? freshDigitCanvas() : $("digit");
        paintDigit(canvas, pixels);
      }
      $("digit").dataset.z = zz.map((v) => String(v)).join(",");
      $("zval").textContent = fmt(zz);
      setStatus();
      record(state.work, performance.now() - input);
      requestAnimationFrame(() => record(state.latencies, performance.now() - input));
    }
  } catch (e) {
    showError(`Decoding failed: ${e.message ?? e}`);
  } finally {
    state.decoding = false;
  }
}

function moveTo(z, { fromEncoder = false, inputTime } = {}) {
  state.z = z;
  if (!fromEncoder) state.sigma = null;
  $("use-encoder-sigma").disabled = !state.sigma;
  if (!state.sigma) $("use-encoder-sigma").checked = false;
  state.samples = [];
  $("samples").innerHTML = "";
  drawPlane();
  requestDecode(z, inputTime);
}

async function sample() {
  const e = state.explorer;
  const d = state.latent;
  const useEnc = $("use-encoder-sigma").checked && state.sigma;
  const sigma = useEnc ? state.sigma : Array(d).fill(Number($("sigma").value));
  const mu = Float32Array.from(state.z.concat(Array(Math.max(0, d - state.z.length)).fill(0)).slice(0, d));
  const logvar = Float32Array.from(sigma.map((s) => 2 * Math.log(Math.max(s, 1e-6))));
  try {
    const { z, pixels } = await e.sampleAndDecode(mu, logvar, SAMPLES, state.seed);
    state.samples = [];
    const strip = $("samples");
    strip.innerHTML = "";
    for (let i = 0; i < SAMPLES; i++) {
      state.samples.push([z[i * d], z[i * d + 1] ?? 0]);
      const c = document.createElement("canvas");
      c.title = `z = ${fmt([z[i * d], z[i * d + 1] ?? 0])}`;
      paintDigit(c, pixels, i * state.side * state.side);
      strip.appendChild(c);
    }
    drawPlane();
    setStatus(); // the GPU may have failed while sampling
  } catch (err) {
    showError(`Sampling failed: ${err.message ?? err}`);
  }
}

// ---- encoding drawings and uploads --------------------------------------------------------
async function encodeRgba(rgba, width, height, what) {
  let input;
  try {
    input = preprocessRgba(rgba, width, height);
  } catch (e) {
    showError(`${what}: ${e.message ?? e}`);
    return;
  }
  try {
    const { mu, logvar } = await state.explorer.encode(input);
    const d = state.latent;
    const z = [mu[0], d > 1 ? mu[1] : 0];
    state.sigma = [Math.exp(0.5 * logvar[0]), Math.exp(0.5 * (d > 1 ? logvar[1] : logvar[0]))];
    showError("");
    $("qzx").textContent = `q(z|x): μ = (${fmt(z)}), σ = (${fmt(state.sigma)})`;
    moveTo(z, { fromEncoder: true });
    $("use-encoder-sigma").checked = true;
    await sample();
  } catch (e) {
    showError(`${what}: encoding failed: ${e.message ?? e}`);
  }
}

function setupPad() {
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const clear = () => { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height); };
  clear();
  let last = null;
  const pos = (ev) => {
    const r = pad.getBoundingClientRect();
    return [((ev.clientX - r.left) * pad.width) / r.width, ((ev.clientY - r.top) * pad.height) / r.height];
  };
  pad.addEventListener("pointerdown", (ev) => {
    try { pad.setPointerCapture(ev.pointerId); } catch { /* synthetic events have no capture */ }
    last = pos(ev);
  });
  pad.addEventListener("pointermove", (ev) => {
    if (!last) return;
    const p = pos(ev);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
  });
  const up = () => { last = null; };
  pad.addEventListener("pointerup", up);
  pad.addEventListener("pointercancel", up);
  $("clear").addEventListener("click", clear);
  $("encode").addEventListener("click", () => {
    const img = ctx.getImageData(0, 0, pad.width, pad.height);
    encodeRgba(new Uint8Array(img.data.buffer), pad.width, pad.height, "The drawing");
  });
}

async function onUpload(file) {
  if (!file) return;
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    try {
      await img.decode();
    } catch {
      showError(`“${file.name}” is not an image this browser can read (PNG, JPEG, GIF, WebP, …).`);
      return;
    }
    const { naturalWidth: w, naturalHeight: h } = img;
    if (w * h > MAX_UPLOAD_PIXELS) {
      showError(`“${file.name}” is ${w} × ${h} pixels, too large: the limit is ${MAX_UPLOAD_PIXELS.toLocaleString("en")} pixels (4096 × 4096). Crop or shrink it.`);
      return;
    }
    // Shrink big pictures before handing them to the preprocessing: a digit needs few pixels.
    const scale = Math.min(1, 512 / Math.max(w, h));
    const c = document.createElement("canvas");
    c.width = Math.max(1, Math.round(w * scale));
    c.height = Math.max(1, Math.round(h * scale));
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0, c.width, c.height);
    const data = ctx.getImageData(0, 0, c.width, c.height);
    await encodeRgba(new Uint8Array(data.data.buffer), c.width, c.height, `“${file.name}”`);
  } finally {
    URL.revokeObjectURL(url);
  }
}

// ---- the point: mouse, touch, keys --------------------------------------------------------
function setupPoint() {
  const wrap = plane.parentElement;
  let dragging = false;
  wrap.addEventListener("pointerdown", (ev) => {
    dragging = true;
    try { wrap.setPointerCapture(ev.pointerId); } catch { /* synthetic events have no capture */ }
    moveTo(fromClient(ev.clientX, ev.clientY), { inputTime: ev.timeStamp });
    ev.preventDefault();
  });
  // Chromium delivers pointermove aligned to animation frames, up to a frame late;
  // pointerrawupdate (secure contexts) comes as soon as the pointer moves.
  const raw = "onpointerrawupdate" in window;
  wrap.addEventListener(raw ? "pointerrawupdate" : "pointermove", (ev) => {
    if (!dragging) return;
    moveTo(fromClient(ev.clientX, ev.clientY), { inputTime: ev.timeStamp });
  });
  const stop = () => { dragging = false; };
  wrap.addEventListener("pointerup", stop);
  wrap.addEventListener("pointercancel", stop);
  $("point").addEventListener("keydown", (ev) => {
    const step = ev.shiftKey ? 0.25 : 0.05;
    const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[ev.key];
    if (!d) return;
    ev.preventDefault();
    const r = state.range;
    moveTo([Math.max(-r, Math.min(r, state.z[0] + d[0])), Math.max(-r, Math.min(r, state.z[1] + d[1]))], { inputTime: ev.timeStamp });
  });
}

// ---- models -------------------------------------------------------------------------------
async function loadModel(bytes, what) {
  const params = new URLSearchParams(location.search);
  const backend = params.get("backend") ?? "";
  let explorer;
  try {
    explorer = await Explorer.load(bytes, backend);
  } catch (e) {
    showError(`${what}: ${e.message ?? e}`);
    return false;
  }
  if (explorer.latent() !== 2) {
    // The plane, the point and the samples are 2-D; a model of another latent size would be
    // shown wrongly, so it is refused until the page can show such models.
    showError(`${what}: this model has a ${explorer.latent()}-dimensional latent space; the explorer shows 2-D latent planes only (train one with --latent 2).`);
    explorer.free?.();
    return false;
  }
  if (explorer.side() * explorer.side() < 1) {
    showError(`${what}: this model's shape cannot be shown.`);
    return false;
  }
  state.explorer?.free?.();
  state.explorer = explorer;
  state.side = explorer.side();
  state.latent = explorer.latent();
  showError("");
  freshDigitCanvas();
  drawBackdrop();
  setStatus();
  moveTo([0, 0]);
  if ($("manifold").checked) showManifold();
  if (backend !== "cpu") startGpu(explorer);
  return true;
}

// The page works on the CPU from the first moment; WebGPU takes over once its device is open and
// its shaders compiled. The GPU then draws the digit itself: the canvas holds one model pixel
// per pixel and CSS scales it up crisply, like the CPU path.
async function startGpu(explorer) {
  state.gpuStarting = true;
  setStatus();
  const ok = await explorer.startGpu();
  if (state.explorer !== explorer) return; // another model was loaded meanwhile
  state.gpuStarting = false;
  if (ok) {
    state.digitOnGpu = explorer.attachDigit(freshDigitCanvas());
    requestDecode(state.z);
  }
  setStatus();
}

async function main() {
  // The model downloads while the wasm module compiles.
  const model = fetch("models/mnist-2d.safetensors").then(
    async (res) => {
      if (!res.ok) throw new Error(`Could not fetch the model (HTTP ${res.status}).`);
      return new Uint8Array(await res.arrayBuffer());
    },
    (e) => { throw new Error(`Could not fetch the model (${e.message ?? e}).`); },
  );
  model.catch(() => {}); // reported below, once the page can show it
  await init();
  setupPoint();
  setupPad();
  $("sigma").addEventListener("input", () => { $("sigmaval").textContent = Number($("sigma").value).toFixed(2); });
  $("resample").addEventListener("click", () => { state.seed++; sample(); });
  $("manifold").addEventListener("change", () => { if (state.explorer) showManifold(); });
  $("upload").addEventListener("change", (ev) => onUpload(ev.target.files[0]));
  $("model-file").addEventListener("change", async (ev) => {
    const f = ev.target.files[0];
    if (f) await loadModel(new Uint8Array(await f.arrayBuffer()), `“${f.name}”`);
  });
  let bytes;
  try {
    bytes = await model;
  } catch (e) {
    showError(e.message ?? String(e));
    return;
  }
  if (await loadModel(bytes, "The shipped model")) {
    // Ready once the first digit is on screen.
    while (state.decoding || !$("digit").dataset.z) await new Promise((r) => setTimeout(r, 10));
    document.body.dataset.ready = "true";
  }
  window.explorer = {
    state, moveTo,
    decodeCpu: (z) => state.explorer.decodeCpu(Float32Array.from(z)),
    // Tests: lose the GPU device as a driver reset would.
    loseGpu: (allowRecovery) => state.explorer.loseGpuForTesting(allowRecovery),
  };
}

main().catch((e) => showError(`The explorer could not start: ${e.message ?? e}`));
