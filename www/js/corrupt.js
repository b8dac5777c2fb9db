// Denoising and completion: the last drawing or upload (the clean input) corrupted by Gaussian
// noise of a chosen strength or by an erased rectangle (crate/corrupt.rs, through wasm; the noise
// has the fixed seed noiseSeed(), so the same strength always gives the same corruption), then
// encoded and decoded from the encoder's mean by the current model: corrupted input, its
// reconstruction and the clean input side by side. The rectangle is dragged on the clean input,
// or typed into the four fields.
import { addNoise, eraseRect, noiseSeed } from "../pkg/latent_explorer.js";
import { $, state } from "./state.js";
import { showError } from "./status.js";
import { paintDigit } from "./digit.js";
import { t, num, localize, unlocalize, errorText } from "./i18n.js";

/** The clean input changed (a new drawing or upload encoded), or is gone (`null`: another model). */
export function setClean(input) {
  state.corruption = null;
  unlocalize($("corrupt-note"));
  $("corrupt-note").textContent = "";
  if (input) paintDigit($("clean"), input);
  for (const id of input ? ["corrupted", "corrupted-reconstruction"] : ["corrupted", "corrupted-reconstruction", "clean"]) {
    const c = $(id);
    c.getContext("2d").clearRect(0, 0, c.width, c.height);
  }
}

/** Wires the noise and erase buttons and the rectangle drag on the clean input. */
export function setupCorrupt() {
  const strength = () => localize($("noise-strength-val"), () => num(Number($("noise-strength").value), "f2"));
  strength();
  $("noise-strength").addEventListener("input", strength);
  $("noise").addEventListener("click", () => corrupt("noise"));
  $("erase").addEventListener("click", () => corrupt("erase"));
  const clean = $("clean");
  let start = null;
  // The model pixel (column, row) under a pointer event on the clean input.
  const cell = (ev) => {
    const r = clean.getBoundingClientRect();
    return [Math.floor(((ev.clientX - r.left) / r.width) * state.side), Math.floor(((ev.clientY - r.top) / r.height) * state.side)];
  };
  clean.addEventListener("pointerdown", (ev) => {
    try { clean.setPointerCapture(ev.pointerId); } catch { /* synthetic events have no capture */ }
    start = cell(ev);
    ev.preventDefault();
  });
  clean.addEventListener("pointerup", (ev) => {
    if (!start) return;
    const end = cell(ev);
    const [x0, x1] = [Math.min(start[0], end[0]), Math.max(start[0], end[0]) + 1];
    const [y0, y1] = [Math.min(start[1], end[1]), Math.max(start[1], end[1]) + 1];
    start = null;
    Object.entries({ x0, y0, x1, y1 }).forEach(([k, v]) => { $(`erase-${k}`).value = String(v); });
    corrupt("erase");
  });
}

/** The erase rectangle from its four fields: columns x0..x1, rows y0..y1, half-open. */
function rect() {
  const [x0, y0, x1, y1] = ["x0", "y0", "x1", "y1"].map((k) => Math.trunc(Number($(`erase-${k}`).value)) || 0);
  return { x0, y0, x1, y1 };
}

async function corrupt(how) {
  const clean = state.input, e = state.explorer;
  if (!clean) {
    showError(() => t("corrupt.needInput"));
    return;
  }
  try {
    const strength = Number($("noise-strength").value);
    const r = rect();
    const corrupted = how === "noise" ? addNoise(clean, strength) : eraseRect(clean, state.side, r.x0, r.y0, r.x1, r.y1);
    paintDigit($("corrupted"), corrupted);
    // The reconstruction decodes the encoder's mean: what the model makes of the damaged input.
    const { mu } = await e.encode(corrupted);
    const reconstruction = await e.decode(mu);
    if (state.explorer !== e || state.input !== clean) return;
    paintDigit($("corrupted-reconstruction"), reconstruction);
    state.corruption = how === "noise" ? { how, strength, seed: noiseSeed(), corrupted, reconstruction } : { how, rect: r, corrupted, reconstruction };
    const seed = String(noiseSeed());
    localize($("corrupt-note"), () => (how === "noise"
      ? t("corrupt.noiseNote", { strength, seed })
      : t("corrupt.eraseNote", { x0: r.x0, x1: r.x1 - 1, y0: r.y0, y1: r.y1 - 1 })));
    showError("");
  } catch (err) {
    showError(() => t("corrupt.failed", { reason: errorText(err) }));
  }
}
