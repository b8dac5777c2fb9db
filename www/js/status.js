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

/** Brings the status line, the CPU notice and the sampling heading up to date. */
export function setStatus() {
  const e = state.explorer;
  if (!e) return;
  const t = state.lastDecodeMs == null ? "" : ` · last decode ${state.lastDecodeMs.toFixed(1)} ms`;
  const where = state.digitOnGpu && e.drawsOnGpu() ? " · drawn on the GPU" : "";
  const n = e.recoveries?.() ?? 0;
  const lost = n ? ` · recovered from ${n} lost GPU device${n > 1 ? "s" : ""}` : "";
  const starting = state.gpuStarting ? " · starting WebGPU…" : "";
  $("status").textContent = `backend: ${e.backend()}${where}${starting}${t}${latencyEstimate()}${lost}`;
  const note = e.gpuNote();
  $("notice").hidden = !note;
  if (note) {
    $("notice-text").textContent = CPU_REASONS[note.cause] ?? CPU_REASONS["gpu-failed"];
    $("notice-detail").textContent = `${note.cause}: ${note.detail}`;
  }
  $("sampling-where").textContent = e.usesGpu() ? "GPU" : "CPU";
}
