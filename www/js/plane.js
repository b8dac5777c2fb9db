// The latent plane: the scatter of the test set's encodings as a backdrop (optionally over the
// decoded manifold), the point and the samples drawn on it, and the mapping between canvas
// and latent coordinates. The backdrop and the manifold are made by functions of any model and
// canvas, so the second plane of compare mode (compare.js) draws its own with them. A latent of
// more than two dimensions is seen along its principal axes (latent.js): the plane's coordinates
// are those along the first two.
import { $, state } from "./state.js";
import { showError } from "./status.js";
import { classNames, datasetName, wordClass } from "./meta.js";
import { t, num, point as pointText, localize, onLanguage, errorText } from "./i18n.js";
import { toPlane, fromPlane, restCoords } from "./latent.js";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const MANIFOLD_GRID = 24;  // decoded digits per side of the optional manifold backdrop

const plane = $("plane");
// Opaque (the backdrop is filled white): the compositor draws it without blending, and not what
// lies under it, on every frame the point moves over it.
const pctx = plane.getContext("2d", { alpha: false });
let planeBackdrop = null; // the scatter, drawn once per model
let planeBare = false;    // the canvas shows the backdrop alone (no ellipses, no samples)

/** Canvas coordinates of latent point `z` on a canvas `width` wide showing [-range, range]². */
export function toCanvasOf(width, range, [x, y]) {
  const s = width / (2 * range);
  return [(x + range) * s, (range - y) * s];
}
const toCanvas = (z) => toCanvasOf(plane.width, state.range, z);

/** The latent point under a pointer at (clientX, clientY) on `canvas` showing [-range, range]²,
 * clamped to it. */
export function fromClientOf(canvas, range, clientX, clientY) {
  const r = canvas.getBoundingClientRect();
  const fx = (clientX - r.left) / r.width, fy = (clientY - r.top) / r.height;
  const clamp = (v) => Math.max(-range, Math.min(range, v));
  return [clamp((fx * 2 - 1) * range), clamp((1 - fy * 2) * range)];
}

/** The latent point under a pointer at (clientX, clientY), clamped to the plane. */
export const fromClient = (clientX, clientY) => fromClientOf(plane, state.range, clientX, clientY);

/** What a plane shows of `explorer`'s own 2-D embedding: { xy, labels, classes }. */
export function viewOf(explorer) {
  const mu = explorer.embeddingMu(), d = explorer.latent();
  const labels = explorer.embeddingLabels();
  const xy = new Float32Array(labels.length * 2);
  for (let i = 0; i < labels.length; i++) { xy[2 * i] = mu[i * d]; xy[2 * i + 1] = mu[i * d + 1] ?? 0; }
  return { xy, labels, classes: classNames(explorer.metadata()), dataset: datasetName(explorer.metadata()) };
}

/** A symmetric range that holds 99.5% of a view's points, rounded up to a whole unit; along
 * principal axes (`projected`), where the spread can be far below a unit (a collapsed
 * posterior), to 1, 2 or 5 times a power of ten instead. */
export function rangeOf({ xy, labels }, projected = false) {
  const mags = [];
  for (let i = 0; i < labels.length; i++) mags.push(Math.max(Math.abs(xy[2 * i]), Math.abs(xy[2 * i + 1])));
  mags.sort((a, b) => a - b);
  const q = mags[Math.floor(mags.length * 0.995)] ?? 3;
  return !mags.length ? 4 : projected ? niceCeil(q) : Math.max(2, Math.ceil(q));
}

// The smallest of 1, 2, 5 times a power of ten that is at least `q` (and at least 0.01).
function niceCeil(q) {
  const p = 10 ** Math.floor(Math.log10(Math.max(q, 0.01)));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= q - 1e-12) ?? 10 * p;
}

/** Paints the backdrop of a plane on `ctx` (a square canvas): white, the manifold canvas if
 * given, the grid and axes (named `axes`), the `view`'s scatter. Returns it as ImageData. */
export function paintBackdrop(ctx, { xy, labels }, range, manifoldCanvas, axes = ["z₁", "z₂"]) {
  const W = ctx.canvas.width;
  const at = (z) => toCanvasOf(W, range, z);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, W);
  if (manifoldCanvas) ctx.drawImage(manifoldCanvas, 0, 0, W, W);
  // Axes and grid: at most five lines a side (an autoencoder's plane can be 25 units wide), unit
  // spacing at least, or half the range for a small one.
  const step = range >= 2 ? Math.max(1, niceCeil(range / 5)) : range / 2;
  ctx.strokeStyle = "#eee";
  ctx.fillStyle = "#888";
  ctx.font = "11px system-ui";
  for (let v = -range; v <= range + 1e-9; v += step) {
    const [cx] = at([v, 0]);
    const [, cy] = at([0, v]);
    ctx.beginPath(); ctx.moveTo(cx, 0); ctx.lineTo(cx, W); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(0, cy); ctx.lineTo(W, cy); ctx.stroke();
    const label = num(Number(v.toPrecision(3)));
    if (Math.abs(v) > 1e-9) { ctx.fillText(label, cx + 2, W / 2 - 3); ctx.fillText(label, W / 2 + 3, cy - 2); }
  }
  ctx.strokeStyle = "#bbb";
  ctx.beginPath(); ctx.moveTo(W / 2, 0); ctx.lineTo(W / 2, W); ctx.moveTo(0, W / 2); ctx.lineTo(W, W / 2); ctx.stroke();
  ctx.fillText(axes[0], W - 16, W / 2 + 14);
  ctx.fillText(axes[1], W / 2 + 6, 12);
  ctx.globalAlpha = 0.55;
  for (let i = 0; i < labels.length; i++) {
    const [cx, cy] = at([xy[2 * i], xy[2 * i + 1]]);
    ctx.fillStyle = COLORS[labels[i] % 10];
    ctx.fillRect(cx - 1.2, cy - 1.2, 2.4, 2.4);
  }
  ctx.globalAlpha = 1;
  return ctx.getImageData(0, 0, W, W);
}

/** Fills the legend element `el` with class `names` of data set `dataset` in the scatter's
 * colours, in the language shown (meta.js's wordClass). */
export function showLegend(el, names, dataset) {
  el.replaceChildren(...names.slice(0, COLORS.length).map((name, i) => {
    const s = document.createElement("span");
    s.style.setProperty("--c", COLORS[i]);
    localize(s, () => wordClass(dataset, i, name));
    return s;
  }));
}

/** Dots for latent points `zs` on `ctx` showing [-range, range]², placed by `toXY` (the main
 * plane's projection). */
export function drawDots(ctx, range, zs, toXY = (z) => z) {
  ctx.fillStyle = "#111";
  for (const z of zs) {
    const [cx, cy] = toCanvasOf(ctx.canvas.width, range, toXY(z));
    ctx.beginPath(); ctx.arc(cx, cy, 3, 0, 2 * Math.PI); ctx.fill();
  }
}

/** Draws the backdrop for the loaded model (axes, grid, scatter; the manifold if shown) and
 * sets the plane's range from its embedding. */
export function drawBackdrop() {
  const e = state.explorer;
  const view = state.embedding ?? { xy: [], labels: [] };
  state.range = rangeOf(view, !!state.projection);
  const m = $("manifold").checked && manifoldIsCurrent(e) ? state.manifold.canvas : null;
  // Principal axes, or z's own.
  planeBackdrop = paintBackdrop(pctx, view, state.range, m, state.projection ? ["a₁", "a₂"] : ["z₁", "z₂"]);
  planeBare = true;
  // The test subset's class names when the plane shows it, else the model's.
  showLegend($("legend"), view.classes ?? classNames(e.metadata()), view.dataset ?? datasetName(e.metadata()));
}
/** Redraws the plane over its backdrop: the encoder's sigma ellipses, the samples, the point.
 * While the point is dragged there are neither, and the canvas, left as it is, is not redrawn:
 * only the point (an element over it) moves. */
export function drawPlane() {
  if (!planeBackdrop) return;
  const bare = !state.sigma && !state.samples.length;
  if (!(bare && planeBare)) drawOverlays();
  planeBare = bare;
  placePoint($("point"), plane, state.range, toPlane(state.z), state.z);
}

/** Moves the point element `point` over `canvas` (showing [-range, range]²) to plane
 * coordinates `xy`, clamped to the plane: by a transform, in units of the plane's size (cqw,
 * cqh), so with no layout. Given the full latent point `z`, a point that is a slider (the first;
 * the second is hidden from assistive technology) also gets it as text. */
export function placePoint(pointEl, canvas, range, xy, z = null) {
  const clamped = xy.map((v) => Math.max(-range, Math.min(range, v)));
  const [px, py] = toCanvasOf(canvas.width, range, clamped);
  pointEl.style.transform = `translate(${(100 * px) / canvas.width}cqw, ${(100 * py) / canvas.height}cqh)`;
  if (z) pointEl.setAttribute("aria-valuetext", t("digit.z", { z: pointText(z) }));
}

function drawOverlays() {
  pctx.putImageData(planeBackdrop, 0, 0);
  // q(z|x) as a 1- and 2-sigma ellipse, when the point came from an encoding (2-D latents: a
  // larger one's sigma lies along z's axes, not the plane's).
  if (state.sigma && !state.projection) {
    const s = plane.width / (2 * state.range);
    const [cx, cy] = toCanvas(state.z);
    pctx.strokeStyle = "#d1495b";
    for (const k of [1, 2]) {
      pctx.beginPath();
      pctx.ellipse(cx, cy, k * state.sigma[0] * s, k * state.sigma[1] * s, 0, 0, 2 * Math.PI);
      pctx.stroke();
    }
  }
  drawDots(pctx, state.range, state.samples, toPlane);
}

/** The decoded manifold of `explorer` over [-range, range]²: a grid of digits decoded at the
 * centres of its cells, as ink in grey on white; `toZ` makes a cell centre's full latent point
 * (the main plane's projection). Resolves to { canvas, z, pixels }. */
export async function manifoldOf(explorer, range, toZ = (xy) => xy) {
  const G = MANIFOLD_GRID, n = explorer.side(), d = explorer.latent();
  const z = new Float32Array(G * G * d);
  for (let i = 0; i < G; i++) {
    for (let j = 0; j < G; j++) {
      // Column: the first plane axis left to right; row: the second, top to bottom.
      z.set(toZ([-range + ((j + 0.5) * 2 * range) / G, range - ((i + 0.5) * 2 * range) / G]), (i * G + j) * d);
    }
  }
  const pixels = await explorer.decode(z);
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
  return { canvas, z, pixels };
}

// The decoded manifold behind the points, so the plane reads as a map of what the decoder draws
// where.
export async function showManifold() {
  const e = state.explorer;
  if (!$("manifold").checked || manifoldIsCurrent(e)) {
    drawBackdrop();
    drawPlane();
    return;
  }
  const range = state.range, rest = restCoords().join();
  try {
    const m = await manifoldOf(e, range, fromPlane);
    if (state.explorer !== e) return;
    state.manifold = { explorer: e, range, rest, ...m };
    drawBackdrop();
    drawPlane();
  } catch (err) {
    showError(() => t("plane.manifoldFailed", { reason: errorText(err) }));
  }
}

// Whether the manifold drawn last belongs to this model, range and other axes' coordinates.
function manifoldIsCurrent(e) {
  const m = state.manifold;
  return m?.explorer === e && m.range === state.range && m.rest === restCoords().join();
}

// A switch of language: the grid's numbers are redrawn in its number format.
onLanguage(() => { if (state.explorer && planeBackdrop) { drawBackdrop(); planeBare = false; drawPlane(); } });
