// Compare mode: a second model beside the page's, with its own plane (scatter, optional
// manifold, figures) and digit. The point is one z for both: dragging on either plane moves it
// (point.js's moveTo), and the second model decodes each z as the first does, neither waiting for
// the other. The second model's digit is decoded on the CPU reference (a few milliseconds a point)
// and painted like the first model's CPU path; its batches (prior samples, interpolation, the
// manifold) go to WebGPU as the first model's do, when the page's backend choice allows.
import { Explorer, digitMark } from "../pkg/latent_explorer.js";
import { $, state, record } from "./state.js";
import { showError } from "./status.js";
import { paintBackdrop, showLegend, drawDots, placePoint, fromClientOf, rangeOf, manifoldOf, viewOf } from "./plane.js";
import { paintDigit } from "./digit.js";
import { moveTo } from "./point.js";
import { showFigures } from "./meta.js";
import { fillMenu, wireMenu, fetchModel, titleOf } from "./models.js";
import { t, errorText, onLanguage } from "./i18n.js";

// Dropped each time the second digit is on its canvas, like digitMark() for the first: the
// benchmark's compare run finds in Chrome's trace the frame that shows it (DIGIT_2_MARK in
// tests/browser/trace.mjs). Made once the wasm module has started.
let digit2Mark = null;

const plane = $("plane-2");
const ctx = plane.getContext("2d", { alpha: false });

/** The second model and its plane: also the tests' view (window.explorer.state.second). */
const second = {
  explorer: null, view: null, range: 4,
  name: () => "", get title() { return this.name(); }, // its name, in the language shown
  backdrop: null, manifold: null, dots: [],
  decoding: false, pendingZ: null, pendingInput: 0, latencies: [],
  ticket: 0, // counts loads begun: a load that a later one overtook is dropped
};
state.second = second;

/** Whether compare mode is on with a second model loaded. */
export const comparing = () => $("compare").checked && second.explorer != null;

/** The second model's explorer when comparing, else null. */
export const secondExplorer = () => (comparing() ? second.explorer : null);

function drawSecondPlane() {
  const e = second.explorer;
  if (!e) return;
  const m = $("manifold-2").checked && second.manifold?.explorer === e ? second.manifold.canvas : null;
  second.backdrop = paintBackdrop(ctx, second.view, second.range, m);
  drawDots(ctx, second.range, second.dots);
  placePoint($("point-2"), plane, second.range, state.z);
}

/** Dots for latent points `zs` on the second plane (prior samples); cleared by the next move. */
export function showSecondDots(zs) {
  second.dots = zs;
  if (!second.backdrop) return;
  ctx.putImageData(second.backdrop, 0, 0);
  drawDots(ctx, second.range, zs);
}

async function showSecondManifold() {
  const e = second.explorer;
  if (e && $("manifold-2").checked && second.manifold?.explorer !== e) {
    try {
      const m = await manifoldOf(e, second.range);
      if (second.explorer !== e) return;
      second.manifold = { explorer: e, ...m };
    } catch (err) {
      showError(() => t("plane.manifold2Failed", { reason: errorText(err) }));
    }
  }
  drawSecondPlane();
}

/** Loads a model file's bytes as the second model (`what()` names it, `title()` without quotes);
 * resolves to whether it took. */
async function loadSecond(bytes, what, title = what) {
  const ticket = ++second.ticket;
  let e;
  try {
    e = await Explorer.load(bytes, new URLSearchParams(location.search).get("backend") ?? "");
  } catch (err) {
    showError(() => t(err?.code ? "models.unusable" : "models.failed", { what: what(), reason: errorText(err) }));
    return false;
  }
  if (ticket !== second.ticket) {
    e.free?.();
    return false;
  }
  if (e.latent() !== 2 || e.side() !== state.side) {
    const side = state.side;
    showError(() => t("models.compareShape", { what: what(), side }));
    e.free?.();
    return false;
  }
  second.explorer?.free?.();
  // Its scatter, read out of the model once: every redraw of the plane paints it.
  const view = viewOf(e);
  Object.assign(second, { explorer: e, name: title, view, range: rangeOf(view), manifold: null, dots: [] });
  showError("");
  // Not awaited: the CPU serves until the GPU is ready, if it ever is.
  e.startGpu().catch(() => {});
  showLegend($("legend-2"), view.classes, view.dataset);
  showFigures($("figures-2"), e.metadata());
  await showSecondManifold();
  if (comparing()) decodeSecond(state.z);
  return true;
}

// Decodes the latest requested z with the second model and paints it; requests that arrive
// meanwhile collapse into one, as for the first digit (digit.js).
async function decodeSecond(z, inputTime) {
  second.pendingZ = z.slice();
  second.pendingInput = inputTime ?? performance.now();
  if (second.decoding) return;
  second.decoding = true;
  try {
    while (second.pendingZ) {
      const zz = second.pendingZ, input = second.pendingInput, e = second.explorer;
      second.pendingZ = null;
      // No canvas attached: show() decodes on the CPU reference and resolves to the pixels.
      const pixels = await e.show(Float32Array.from(zz));
      if (e !== second.explorer) continue;
      const canvas = $("digit-2");
      paintDigit(canvas, pixels, 0, { alpha: false });
      canvas.dataset.z = zz.map((v) => String(v)).join(",");
      digit2Mark ??= `${digitMark()}-2`;
      performance.mark(digit2Mark);
      performance.clearMarks(digit2Mark);
      requestAnimationFrame(() => record(second.latencies, performance.now() - input));
    }
  } catch (err) {
    showError(() => t("compare.decodeFailed", { reason: errorText(err) }));
  } finally {
    second.decoding = false;
  }
}

// Follows the point: moves the second plane's point and decodes the same z.
function follow(z, _fromEncoder, inputTime) {
  if (!comparing()) return;
  if (second.dots.length && !state.samples.length) {
    second.dots = [];
    ctx.putImageData(second.backdrop, 0, 0);
  }
  placePoint($("point-2"), plane, second.range, z);
  decodeSecond(z, inputTime);
}

/** Dragging on the second plane moves the one point (its z read in this plane's range). */
function setupDrag() {
  const wrap = plane.parentElement;
  let dragging = false;
  const at = (ev) => fromClientOf(plane, second.range, ev.clientX, ev.clientY);
  wrap.addEventListener("pointerdown", (ev) => {
    if (!second.explorer) return;
    dragging = true;
    try { wrap.setPointerCapture(ev.pointerId); } catch { /* synthetic events have no capture */ }
    moveTo(at(ev), { inputTime: ev.timeStamp });
    ev.preventDefault();
  });
  wrap.addEventListener("onpointerrawupdate" in window ? "pointerrawupdate" : "pointermove", (ev) => {
    if (dragging) moveTo(at(ev), { inputTime: ev.timeStamp });
  });
  const stop = () => { dragging = false; };
  wrap.addEventListener("pointerup", stop);
  wrap.addEventListener("pointercancel", stop);
}

async function setCompare(on) {
  $("compare-col").hidden = !on;
  $("digit-2").hidden = !on;
  $("model-select-2").disabled = !on;
  document.body.classList.toggle("comparing", on);
  if (on && !second.explorer) {
    const select = $("model-select-2");
    const m = state.models.find((x) => x.file === select.value) ?? { file: select.value };
    const ticket = second.ticket;
    try {
      const bytes = await fetchModel(m);
      // Unless another model was chosen meanwhile.
      if (ticket === second.ticket) await loadSecond(bytes, () => t("models.quoted", { name: titleOf(m) }), () => titleOf(m));
    } catch (err) {
      showError(() => errorText(err));
    }
  }
  if (comparing()) {
    drawSecondPlane();
    decodeSecond(state.z);
  }
}

/** Wires compare mode: the checkbox, the second menu (by default the second model the manifest
 * lists), the second plane's drag and manifold. `models` is the manifest's list. */
export function setupCompare(models) {
  const select = $("model-select-2");
  fillMenu(select, models, models[1]?.file ?? models[0]?.file);
  const menu = wireMenu(select, models, $("model-file-2"), (bytes, what) => {
    const m = models.find((x) => x.file === select.value) ?? { file: select.value };
    return loadSecond(bytes, what, () => titleOf(m));
  });
  $("model-file-2").addEventListener("change", async (ev) => {
    const f = ev.target.files[0];
    if (f && (await loadSecond(new Uint8Array(await f.arrayBuffer()), () => t("models.quoted", { name: f.name }), () => f.name))) menu.markOwn(f.name);
  });
  $("compare").addEventListener("change", () => setCompare($("compare").checked));
  $("manifold-2").addEventListener("change", showSecondManifold);
  state.onMove.push(follow);
  // A switch of language: the grid's numbers are redrawn in its number format.
  onLanguage(() => { if (second.explorer) drawSecondPlane(); });
  setupDrag();
}
