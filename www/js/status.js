// What the page tells the user about itself: the error line, and the status line with the
// backend in use and, when it runs on the CPU, a plain sentence saying why.
import { $, state } from "./state.js";

// Why the explorer runs on the CPU, one plain sentence per cause; the codes come from the Rust
// side (FallbackCause::code), the technical detail goes under "details".
const CPU_REASONS = {
  "no-webgpu": "This browser has no WebGPU, so the explorer runs on the CPU instead; everything still works.",
  "no-adapter": "This browser has WebGPU but offered no GPU to use, so the explorer runs on the CPU instead; everything still works.",
  "device-lost": "The GPU stopped responding (its device was lost), so the explorer now runs on the CPU; everything still works.",
  "requested-cpu": "You asked for the CPU with ?backend=cpu, so the explorer runs on the CPU; everything works just the same.",
  "gpu-failed": "The GPU ran into an error, so the explorer now runs on the CPU; everything still works.",
  "cpu-faster": "Here the CPU draws digits faster than this browser's GPU adapter, so the explorer uses the CPU; add ?backend=webgpu to the address to use the GPU anyway.",
};

/** Shows `message` in the error line; an empty message hides it. */
export function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
}

// The page's own, cheap estimate of drag latency: the median over the last digits shown of the
// time from the input event to the start of the next animation frame. It leaves out the commit,
// compositing and presentation; `npm run bench:browser` measures to the frame on screen.
function latencyEstimate() {
  const xs = state.latencies.slice(-60).sort((a, b) => a - b);
  if (!xs.length) return "";
  return ` · input to next frame's start ${xs[xs.length >> 1].toFixed(1)} ms (page's own estimate; on screen later)`;
}

// Text that changes with every move (the timings, the point's coordinates) is written at most
// once every TEXT_EVERY_MS, in a task of its own: new text means a layout, and kept off the
// frames that carry the digits, it does not delay them.
const TEXT_EVERY_MS = 250;
const pendingText = new Map();
let textTimer = null, lastTextWrite = -Infinity;

/** Sets the text of element `id` soon (see TEXT_EVERY_MS); a later call replaces it. */
export function setTextSoon(id, text) {
  pendingText.set(id, text);
  if (textTimer != null) return;
  const wait = Math.max(0, lastTextWrite + TEXT_EVERY_MS - performance.now());
  textTimer = setTimeout(() => {
    textTimer = null;
    lastTextWrite = performance.now();
    for (const [el, t] of pendingText) setText(el, t);
    pendingText.clear();
  }, wait);
}

let statusShown = null; // the status line's parts other than the timings, as last written

/** Brings the status line, the CPU notice and the sampling heading up to date. A change of the
 * status line's timings alone is written soon (setTextSoon), any other change at once. */
export function setStatus() {
  const e = state.explorer;
  if (!e) return;
  const t = state.lastDecodeMs == null ? "" : ` · last decode ${state.lastDecodeMs.toFixed(1)} ms`;
  const where = state.digitOnGpu && e.drawsOnGpu() ? " · drawn on the GPU" : "";
  const n = e.recoveries?.() ?? 0;
  const lost = n ? ` · recovered from ${n} lost GPU device${n > 1 ? "s" : ""}` : "";
  const starting = state.gpuStarting ? " · starting WebGPU…" : "";
  // A model file without an embedding: say where the plane's points come from.
  const emb = state.embedding;
  const plane = emb?.inPage ? ` · the plane is the shipped ${emb.count.toLocaleString("en")}-image test subset, encoded in the page${emb.onGpu ? " on the GPU" : ""} (the model file has no embedding)` : "";
  const text = `backend: ${e.backend()}${where}${starting}${t}${latencyEstimate()}${lost}${plane}`;
  const parts = `${e.backend()}${where}${starting}${lost}${plane}`;
  if (parts === statusShown) {
    setTextSoon("status", text);
  } else {
    statusShown = parts;
    pendingText.delete("status");
    setText("status", text);
  }
  const note = e.gpuNote();
  if ($("notice").hidden !== !note) $("notice").hidden = !note;
  if (note) {
    setText("notice-text", CPU_REASONS[note.cause] ?? CPU_REASONS["gpu-failed"]);
    setText("notice-detail", `${note.cause}: ${note.detail}`);
  }
  setText("sampling-where", e.usesGpu() ? "GPU" : "CPU");
}

// Sets an element's text when it differs: setting the same text anew still means a layout.
function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}
