// The decoder's digit: painting decoded pixels onto a canvas (the digit and the samples), the
// digit canvas the GPU may draw on itself, and the decode loop that keeps the digit in step
// with the point, recording for each digit shown the page's own estimate of its drag latency.
import { $, state, record } from "./state.js";
import { t, point, errorText, onLanguage } from "./i18n.js";
import { setStatus, setTextSoon, showError } from "./status.js";
import { digitMark } from "../pkg/latent_explorer.js";

// digitMark(): the user-timing mark dropped each time a new digit is on the canvas (by the GPU
// path in Rust, by this module on the CPU path); the benchmark finds in Chrome's trace the frame
// that first carries it (DIGIT_MARK in tests/browser/trace.mjs).

/** Paints `side * side` intensities of `pixels` from `offset` on `canvas`, grey on black;
 * `contextOptions` are the 2D context's, used if this makes it. */
export function paintDigit(canvas, pixels, offset = 0, contextOptions = {}) {
  const n = state.side;
  // Setting a canvas's size, even to the one it has, clears it and replaces its buffer.
  if (canvas.width !== n) canvas.width = n;
  if (canvas.height !== n) canvas.height = n;
  const ctx = canvas.getContext("2d", contextOptions);
  const img = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const v = Math.round(Math.max(0, Math.min(1, pixels[offset + i])) * 255);
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// A fresh digit canvas: one the GPU drew on has a WebGPU context and cannot be painted by 2D.
export function freshDigitCanvas() {
  const old = $("digit");
  const c = old.cloneNode(false);
  c.width = c.height = state.side;
  old.replaceWith(c);
  state.digitOnGpu = false;
  return c;
}

// Decodes the latest requested z and shows it; requests that arrive meanwhile collapse into one.
// On the GPU the decoder's output is drawn straight onto the canvas; on the CPU it is painted.
export async function requestDecode(z, inputTime) {
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
        // Opaque: the compositor draws it without blending, and not what lies under it.
        paintDigit(canvas, pixels, 0, { alpha: false });
      }
      $("digit").dataset.z = zz.map((v) => String(v)).join(",");
      // The GPU path drops the mark itself, in the task that submits the draw; a mark here, after
      // the GPU has finished, would fall in a later frame that shows nothing new.
      if (pixels) {
        // Cleared at once: the trace keeps it, the page need not.
        const mark = digitMark();
        performance.mark(mark);
        performance.clearMarks(mark);
      }
      shownZ = zz;
      setTextSoon("zline", t("digit.z", { z: point(zz) }));
      setStatus();
      record(state.work, performance.now() - input);
      requestAnimationFrame(() => record(state.latencies, performance.now() - input));
    }
  } catch (e) {
    showError(() => t("digit.decodeFailed", { reason: errorText(e) }));
  } finally {
    state.decoding = false;
  }
}

// The digit's z, as last written under it: worded again after a switch of language.
let shownZ = null;
onLanguage(() => { $("zline").textContent = t("digit.z", { z: shownZ ? point(shownZ) : "–" }); });
