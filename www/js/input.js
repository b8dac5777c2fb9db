// The user's input: dragging the point (mouse, touch) and moving it with the arrow keys; the
// drawing pad; and uploaded pictures. Drawings and uploads are preprocessed and encoded in Rust,
// and the point moves to where the encoder puts them.
import { preprocessRgba, maxUploadPixels } from "../pkg/latent_explorer.js";
import { $, state } from "./state.js";
import { t, point, localize, errorText } from "./i18n.js";
import { showError } from "./status.js";
import { fromClient } from "./plane.js";
import { moveTo, sample } from "./point.js";
import { toPlane } from "./latent.js";
import { elboNow, elboSoon } from "./elbo.js";
import { setClean } from "./corrupt.js";

/** Dragging the point across the plane, and the arrow keys on the focused point. */
export function setupPoint() {
  const wrap = $("plane").parentElement;
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
    const r = state.range, [x, y] = toPlane(state.z);
    moveTo([Math.max(-r, Math.min(r, x + d[0])), Math.max(-r, Math.min(r, y + d[1]))], { inputTime: ev.timeStamp });
  });
}

// Encodes a picture (RGBA bytes of any size), moves the point to its mean and samples around
// it with the encoder's sigma. `what()` names the picture in error messages.
async function encodeRgba(rgba, width, height, what) {
  let input;
  try {
    input = preprocessRgba(rgba, width, height);
  } catch (e) {
    showError(() => t("models.failed", { what: what(), reason: errorText(e) }));
    return;
  }
  state.input = input;
  setClean(input);
  elboNow(input);
  try {
    const { mu, logvar } = await state.explorer.encode(input);
    const z = Array.from(mu);
    // A deterministic encoder (ae, pca) gives no logvar: there is no sigma to sample with.
    state.sigma = logvar?.length ? Array.from(logvar, (lv) => Math.exp(0.5 * lv)) : null;
    showError("");
    const sigma = state.sigma;
    localize($("qzx"), () => (sigma ? t("input.qzx", { mu: point(z), sigma: point(sigma) }) : t("input.deterministic", { z: point(z) })));
    moveTo(null, { z, fromEncoder: true });
    $("use-encoder-sigma").checked = !!state.sigma;
    await sample();
  } catch (e) {
    showError(() => t("input.encodingFailed", { what: what(), reason: errorText(e) }));
  }
}

/** The drawing pad: draw with a pointer, clear, encode. */
export function setupPad() {
  const pad = $("pad");
  const ctx = pad.getContext("2d", { willReadFrequently: true });
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
    elboSoon(padInput);
  });
  const up = () => { last = null; };
  pad.addEventListener("pointerup", up);
  pad.addEventListener("pointercancel", up);
  $("clear").addEventListener("click", clear);
  // The drawing as the model's input, for the live ELBO; null (nothing to show) if it cannot be.
  const padInput = () => {
    const img = ctx.getImageData(0, 0, pad.width, pad.height);
    try { return preprocessRgba(new Uint8Array(img.data.buffer), pad.width, pad.height); } catch { return null; }
  };
  $("encode").addEventListener("click", () => {
    const img = ctx.getImageData(0, 0, pad.width, pad.height);
    encodeRgba(new Uint8Array(img.data.buffer), pad.width, pad.height, () => t("input.drawing"));
  });
}

/** Encodes an uploaded picture; pictures the browser cannot read, or larger than the Rust
 * preprocessing accepts, get a message instead. */
export async function onUpload(file) {
  if (!file) return;
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    try {
      await img.decode();
    } catch {
      showError(() => t("input.notImage", { name: file.name }));
      return;
    }
    const { naturalWidth: w, naturalHeight: h } = img;
    const max = maxUploadPixels(), side = Math.sqrt(max);
    if (w * h > max) {
      showError(() => t("input.tooLarge", { name: file.name, width: w, height: h, max, square: Number.isInteger(side) ? t("input.square", { side }) : "" }));
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
    await encodeRgba(new Uint8Array(data.data.buffer), c.width, c.height, () => t("models.quoted", { name: file.name }));
  } finally {
    URL.revokeObjectURL(url);
  }
}
