// What the page tells the user about itself: the error line, and the status line with the
// backend in use and, when it runs on the CPU, a plain sentence saying why (its code comes from
// the Rust side, FallbackCause::code; the technical detail goes under "details").
import { $, state } from "./state.js";
import { t, has, localize, unlocalize, onLanguage } from "./i18n.js";

/** Shows an error in the error line: `render` makes its text in the language shown (and again
 * after a switch of language); an empty string hides the line. */
export function showError(render) {
  const el = $("error");
  if (!render) {
    unlocalize(el);
    el.textContent = "";
    el.hidden = true;
    return;
  }
  localize(el, typeof render === "function" ? render : () => render);
  el.hidden = false;
}

// The page's own, cheap estimate of drag latency: the median over the last digits shown of the
// time from the input event to the start of the next animation frame. It leaves out the commit,
// compositing and presentation; `npm run bench:browser` measures to the frame on screen.
function latencyEstimate() {
  const xs = state.latencies.slice(-60).sort((a, b) => a - b);
  if (!xs.length) return "";
  return t("status.latency", { ms: xs[xs.length >> 1] });
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
  const t0 = state.lastDecodeMs == null ? "" : t("status.lastDecode", { ms: state.lastDecodeMs });
  const where = state.digitOnGpu && e.drawsOnGpu() ? t("status.drawnOnGpu") : "";
  const n = e.recoveries?.() ?? 0;
  const lost = n ? t("status.recovered", { count: n }) : "";
  const starting = state.gpuStarting ? t("status.starting") : "";
  // A model file without an embedding: say where the plane's points come from.
  const emb = state.embedding;
  const plane = emb?.inPage ? t(emb.onGpu ? "status.inPageGpu" : "status.inPage", { count: emb.count }) : "";
  const backend = backendText(e.backendInfo());
  const text = `${backend}${where}${starting}${t0}${latencyEstimate()}${lost}${plane}`;
  const parts = `${backend}${where}${starting}${lost}${plane}`;
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
    const key = `cpuReason.${note.cause}`;
    setText("notice-text", t(has(key) ? key : "cpuReason.gpu-failed"));
    setText("notice-detail", `${note.cause}: ${note.detail}`);
  }
  const on = e.usesGpu() ? "GPU" : "CPU";
  $("sampling-sub").dataset.where = on;
  setText("sampling-sub", t("digit.samplingSub", { where: t(on === "GPU" ? "digit.gpu" : "digit.cpu") }));
}

// Where the work runs, in words: the GPU's adapter or the CPU, with the timings of the race that
// chose it.
function backendText({ gpu, gpuMs, cpuMs }) {
  const raced = gpuMs != null && cpuMs != null;
  if (gpu) return t(raced ? "status.backendGpuRaced" : "status.backendGpu", { adapter: gpu, gpuMs, cpuMs });
  return t(raced ? "status.backendCpuFaster" : "status.backendCpu", { gpuMs, cpuMs });
}

// A switch of language: the status line is written anew at once.
onLanguage(() => { statusShown = null; setStatus(); });

// Sets an element's text when it differs: setting the same text anew still means a layout.
function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}
