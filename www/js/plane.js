// The latent plane: the scatter of the test set's encodings as a backdrop (optionally over the
// decoded manifold), the point and the samples drawn on it, and the mapping between canvas
// and latent coordinates. A latent of more than two dimensions is seen along its principal
// axes (latent.js): the plane's coordinates are those along the first two.
import { $, state, fmt } from "./state.js";
import { showError } from "./status.js";
import { toPlane, fromPlane, restCoords } from "./latent.js";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const MANIFOLD_GRID = 24;  // decoded digits per side of the optional manifold backdrop

const plane = $("plane");
// Opaque (the backdrop is filled white): the compositor draws it without blending, and not what
// lies under it, on every frame the point moves over it.
const pctx = plane.getContext("2d", { alpha: false });
let planeBackdrop = null; // the scatter, drawn once per model
let planeBare = false;    // the canvas shows the backdrop alone (no ellipses, no samples)

function toCanvas([x, y]) {
  const s = plane.width / (2 * state.range);
  return [(x + state.range) * s, (state.range - y) * s];
}

/** The latent point under a pointer at (clientX, clientY), clamped to the plane. */
export function fromClient(clientX, clientY) {
  const r = plane.getBoundingClientRect();
  const fx = (clientX - r.left) / r.width, fy = (clientY - r.top) / r.height;
  const clamp = (v) => Math.max(-state.range, Math.min(state.range, v));
  return [clamp((fx * 2 - 1) * state.range), clamp((1 - fy * 2) * state.range)];
}

/** Draws the backdrop for the loaded model (axes, grid, scatter; the manifold if shown) and
 * sets the plane's range from its embedding. */
export function drawBackdrop() {
  const e = state.explorer;
  const { xy, labels } = state.embedding ?? { xy: [], labels: [] };
  // A symmetric range that holds 99.5% of the points, rounded up to a whole unit.
  const mags = [];
  for (let i = 0; i < labels.length; i++) mags.push(Math.max(Math.abs(xy[2 * i]), Math.abs(xy[2 * i + 1])));
  mags.sort((a, b) => a - b);
  // Along principal axes the spread can be far below a unit (a collapsed posterior): round up
  // to 1, 2 or 5 times a power of ten instead.
  const q = mags[Math.floor(mags.length * 0.995)] ?? 3;
  state.range = !mags.length ? 4 : state.projection ? niceCeil(q) : Math.max(2, Math.ceil(q));
  const step = state.range >= 2 ? 1 : state.range / 2; // grid spacing
  const W = plane.width;
  pctx.fillStyle = "#fff";
  pctx.fillRect(0, 0, W, W);
  if ($("manifold").checked && manifoldIsCurrent(e)) {
    pctx.drawImage(state.manifold.canvas, 0, 0, W, W);
  }
  // Axes and unit grid.
  pctx.strokeStyle = "#eee";
  pctx.fillStyle = "#888";
  pctx.font = "11px system-ui";
  for (let v = -state.range; v <= state.range + 1e-9; v += step) {
    const [cx] = toCanvas([v, 0]);
    const [, cy] = toCanvas([0, v]);
    pctx.beginPath(); pctx.moveTo(cx, 0); pctx.lineTo(cx, W); pctx.stroke();
    pctx.beginPath(); pctx.moveTo(0, cy); pctx.lineTo(W, cy); pctx.stroke();
    const label = String(Number(v.toPrecision(3)));
    if (Math.abs(v) > 1e-9) { pctx.fillText(label, cx + 2, W / 2 - 3); pctx.fillText(label, W / 2 + 3, cy - 2); }
  }
  pctx.strokeStyle = "#bbb";
  pctx.beginPath(); pctx.moveTo(W / 2, 0); pctx.lineTo(W / 2, W); pctx.moveTo(0, W / 2); pctx.lineTo(W, W / 2); pctx.stroke();
  const [h, v] = state.projection ? ["a₁", "a₂"] : ["z₁", "z₂"]; // principal axes, or z's own
  pctx.fillText(h, W - 16, W / 2 + 14);
  pctx.fillText(v, W / 2 + 6, 12);
  pctx.globalAlpha = 0.55;
  for (let i = 0; i < labels.length; i++) {
    const [cx, cy] = toCanvas([xy[2 * i], xy[2 * i + 1]]);
    pctx.fillStyle = COLORS[labels[i] % 10];
    pctx.fillRect(cx - 1.2, cy - 1.2, 2.4, 2.4);
  }
  pctx.globalAlpha = 1;
  planeBackdrop = pctx.getImageData(0, 0, W, W);
  planeBare = true;
  // The test subset's class names when the plane shows it (Fashion-MNIST's are words), else digits.
  const names = state.embedding?.classes ?? [];
  $("legend").innerHTML = COLORS.map((c, i) => `<span style="--c:${c}">${names[i] ?? i}</span>`).join("");
}

/** Redraws the plane over its backdrop: the encoder's sigma ellipses, the samples, the point.
 * While the point is dragged there are neither, and the canvas, left as it is, is not redrawn:
 * only the point (an element over it) moves. */
export function drawPlane() {
  if (!planeBackdrop) return;
  const bare = !state.sigma && !state.samples.length;
  if (!(bare && planeBare)) drawOverlays();
  planeBare = bare;
  // Moved by a transform, in units of the plane's size (cqw, cqh): no layout.
  const [px, py] = toCanvas(toPlane(state.z));
  const point = $("point");
  point.style.transform = `translate(${(100 * px) / plane.width}cqw, ${(100 * py) / plane.height}cqh)`;
  point.setAttribute("aria-valuetext", `z = ${fmt(state.z)}`);
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
  pctx.fillStyle = "#111";
  for (const z of state.samples) {
    const [cx, cy] = toCanvas(toPlane(z));
    pctx.beginPath(); pctx.arc(cx, cy, 3, 0, 2 * Math.PI); pctx.fill();
  }
}

// The decoded manifold: a grid of digits decoded at the centres of the plane's cells, drawn
// faintly (ink as grey on white) behind the points, so the plane reads as a map of what the
// decoder draws where.
export async function showManifold() {
  const e = state.explorer;
  if (!$("manifold").checked || manifoldIsCurrent(e)) {
    drawBackdrop();
    drawPlane();
    return;
  }
  const G = MANIFOLD_GRID, n = state.side, range = state.range, d = state.latent;
  const z = new Float32Array(G * G * d), rest = restCoords().join();
  for (let i = 0; i < G; i++) {
    for (let j = 0; j < G; j++) {
      // Column: the first plane axis left to right; row: the second, top to bottom.
      z.set(fromPlane([-range + ((j + 0.5) * 2 * range) / G, range - ((i + 0.5) * 2 * range) / G]), (i * G + j) * d);
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
    state.manifold = { explorer: e, range, rest, canvas, z, pixels };
    drawBackdrop();
    drawPlane();
  } catch (err) {
    showError(`Decoding the manifold failed: ${err.message ?? err}`);
  }
}

// Whether the manifold drawn last belongs to this model, range and other axes' coordinates.
function manifoldIsCurrent(e) {
  const m = state.manifold;
  return m?.explorer === e && m.range === state.range && m.rest === restCoords().join();
}

// The smallest of 1, 2, 5 times a power of ten that is at least `q` (and at least 0.01).
function niceCeil(q) {
  const p = 10 ** Math.floor(Math.log10(Math.max(q, 0.01)));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= q - 1e-12) ?? 10 * p;
}
