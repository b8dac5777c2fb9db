// The latent plane: the scatter of the test set's encodings as a backdrop (optionally over the
// decoded manifold), the point and the samples drawn on it, and the mapping between canvas
// and latent coordinates. The backdrop and the manifold are made by functions of any model and
// canvas, so the second plane of compare mode (compare.js) draws its own with them.
import { $, state, fmt } from "./state.js";
import { showError } from "./status.js";
import { classNames } from "./meta.js";

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

/** A symmetric range that holds 99.5% of `explorer`'s embedding, rounded up to a whole unit. */
export function rangeOf(explorer) {
  const mu = explorer.embeddingMu(), labels = explorer.embeddingLabels(), d = explorer.latent();
  const mags = [];
  for (let i = 0; i < labels.length; i++) mags.push(Math.max(Math.abs(mu[i * d]), Math.abs(mu[i * d + 1] ?? 0)));
  mags.sort((a, b) => a - b);
  return mags.length ? Math.max(2, Math.ceil(mags[Math.floor(mags.length * 0.995)] ?? 3)) : 4;
}

/** Paints the backdrop of `explorer`'s plane on `ctx` (a square canvas): white, the manifold
 * canvas if given, the unit grid and axes, the embedding's scatter. Returns it as ImageData. */
export function paintBackdrop(ctx, explorer, range, manifoldCanvas) {
  const W = ctx.canvas.width;
  const at = (z) => toCanvasOf(W, range, z);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, W);
  if (manifoldCanvas) ctx.drawImage(manifoldCanvas, 0, 0, W, W);
  // Axes and unit grid.
  ctx.strokeStyle = "#eee";
  ctx.fillStyle = "#888";
  ctx.font = "11px system-ui";
  for (let v = -range; v <= range; v++) {
    const [cx] = at([v, 0]);
    const [, cy] = at([0, v]);
    ctx.beginPath(); ctx.moveTo(cx, 0); ctx.lineTo(cx, W); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(0, cy); ctx.lineTo(W, cy); ctx.stroke();
    if (v !== 0) { ctx.fillText(String(v), cx + 2, W / 2 - 3); ctx.fillText(String(v), W / 2 + 3, cy - 2); }
  }
  ctx.strokeStyle = "#bbb";
  ctx.beginPath(); ctx.moveTo(W / 2, 0); ctx.lineTo(W / 2, W); ctx.moveTo(0, W / 2); ctx.lineTo(W, W / 2); ctx.stroke();
  ctx.fillText("z₁", W - 16, W / 2 + 14);
  ctx.fillText("z₂", W / 2 + 6, 12);
  const mu = explorer.embeddingMu(), labels = explorer.embeddingLabels(), d = explorer.latent();
  ctx.globalAlpha = 0.55;
  for (let i = 0; i < labels.length; i++) {
    const [cx, cy] = at([mu[i * d], mu[i * d + 1] ?? 0]);
    ctx.fillStyle = COLORS[labels[i] % 10];
    ctx.fillRect(cx - 1.2, cy - 1.2, 2.4, 2.4);
  }
  ctx.globalAlpha = 1;
  return ctx.getImageData(0, 0, W, W);
}

/** Fills the legend element `el` with `explorer`'s class names in the scatter's colours. */
export function showLegend(el, explorer) {
  el.replaceChildren(...classNames(explorer.metadata()).slice(0, COLORS.length).map((name, i) => {
    const s = document.createElement("span");
    s.style.setProperty("--c", COLORS[i]);
    s.textContent = name;
    return s;
  }));
}

/** Dots for latent points `zs` on `ctx` showing [-range, range]². */
export function drawDots(ctx, range, zs) {
  ctx.fillStyle = "#111";
  for (const z of zs) {
    const [cx, cy] = toCanvasOf(ctx.canvas.width, range, z);
    ctx.beginPath(); ctx.arc(cx, cy, 3, 0, 2 * Math.PI); ctx.fill();
  }
}

/** Draws the backdrop for the loaded model (axes, grid, scatter; the manifold if shown) and
 * sets the plane's range from its embedding. */
export function drawBackdrop() {
  const e = state.explorer;
  state.range = rangeOf(e);
  const m = $("manifold").checked && state.manifold?.explorer === e && state.manifold.range === state.range ? state.manifold.canvas : null;
  planeBackdrop = paintBackdrop(pctx, e, state.range, m);
  planeBare = true;
  showLegend($("legend"), e);
}
/** Redraws the plane over its backdrop: the encoder's sigma ellipses, the samples, the point.
 * While the point is dragged there are neither, and the canvas, left as it is, is not redrawn:
 * only the point (an element over it) moves. */
export function drawPlane() {
  if (!planeBackdrop) return;
  const bare = !state.sigma && !state.samples.length;
  if (!(bare && planeBare)) drawOverlays();
  planeBare = bare;
  placePoint($("point"), plane, state.range, state.z);
}

/** Moves the point element `point` over `canvas` (showing [-range, range]²) to `z`, clamped to
 * the plane: by a transform, in units of the plane's size (cqw, cqh), so with no layout. A point
 * that is a `slider` (the first; the second is hidden from assistive technology) also gets its
 * value as text. */
export function placePoint(point, canvas, range, z, slider = true) {
  const clamped = z.map((v) => Math.max(-range, Math.min(range, v)));
  const [px, py] = toCanvasOf(canvas.width, range, clamped);
  point.style.transform = `translate(${(100 * px) / canvas.width}cqw, ${(100 * py) / canvas.height}cqh)`;
  if (slider) point.setAttribute("aria-valuetext", `z = ${fmt(z)}`);
}

function drawOverlays() {
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
  drawDots(pctx, state.range, state.samples);
}

/** The decoded manifold of `explorer` over [-range, range]²: a grid of digits decoded at the
 * centres of its cells, as ink in grey on white. Resolves to { canvas, z, pixels }. */
export async function manifoldOf(explorer, range) {
  const G = MANIFOLD_GRID, n = explorer.side(), d = explorer.latent();
  const z = new Float32Array(G * G * d);
  for (let i = 0; i < G; i++) {
    for (let j = 0; j < G; j++) {
      const k = (i * G + j) * d;
      z[k] = -range + ((j + 0.5) * 2 * range) / G;      // column: z1 left to right
      if (d > 1) z[k + 1] = range - ((i + 0.5) * 2 * range) / G; // row: z2 top to bottom
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
  if (!$("manifold").checked || (state.manifold?.explorer === e && state.manifold.range === state.range)) {
    drawBackdrop();
    drawPlane();
    return;
  }
  const range = state.range;
  try {
    const m = await manifoldOf(e, range);
    if (state.explorer !== e) return;
    state.manifold = { explorer: e, range, ...m };
    drawBackdrop();
    drawPlane();
  } catch (err) {
    showError(`Decoding the manifold failed: ${err.message ?? err}`);
  }
}
