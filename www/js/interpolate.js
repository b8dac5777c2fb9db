// Interpolation: two latent points (two clicks on a plane, or the last two encoded drawings or
// uploads), the straight line between them in z cut into INTERPOLATION_STEPS points, both ends
// included, decoded as a strip per model shown, and the point travelling along it (a step every
// STEP_MS; with prefers-reduced-motion it goes straight to the far end).
import { $, state } from "./state.js";
import { t, point, localize, errorText } from "./i18n.js";
import { showError } from "./status.js";
import { fromClientOf } from "./plane.js";
import { paintDigit } from "./digit.js";
import { moveTo } from "./point.js";
import { secondExplorer } from "./compare.js";

export const INTERPOLATION_STEPS = 12;
const STEP_MS = 150;

let picking = null;   // the ends clicked so far while picking, else null
let encoded = [];     // the last two encoded points
let travel = null;    // the animation's timer

/** INTERPOLATION_STEPS points from `a` to `b`, linear in z, both ends included. */
export function linePoints(a, b) {
  const n = INTERPOLATION_STEPS;
  return Array.from({ length: n }, (_, i) => a.map((v, k) => v + ((b[k] - v) * i) / (n - 1)));
}

// Says message `key` with `params` under the buttons (in the language shown); no key: nothing.
function say(key, params) {
  localize($("interpolation-text"), () => (key ? t(key, params) : ""));
  $("interpolation-text").hidden = !key;
}

function stopTravel() {
  clearInterval(travel);
  travel = null;
}

function paintStrip(strip, pixels, zs) {
  strip.replaceChildren(...zs.map((z, i) => {
    const c = document.createElement("canvas");
    c.title = t("digit.z", { z: point(z) });
    c.dataset.z = z.join(",");
    paintDigit(c, pixels, i * state.side * state.side);
    return c;
  }));
}

/** Decodes the line from `a` to `b` with the model(s) shown, shows the strips and sends the
 * point along it. */
export async function interpolate(a, b) {
  stopTravel();
  const zs = linePoints(a, b);
  const flat = Float32Array.from(zs.flat());
  const e2 = secondExplorer();
  try {
    // Both models at once: neither waits for the other.
    const [p1, p2] = await Promise.all([state.explorer.decode(flat), e2?.decode(flat)]);
    paintStrip($("interpolation"), p1, zs);
    if (p2) paintStrip($("interpolation-2"), p2, zs);
    else $("interpolation-2").replaceChildren();
    state.interpolation = { a, b, z: zs };
    say("interp.line", { a: point(a), b: point(b), count: zs.length });
  } catch (err) {
    showError(() => t("interp.failed", { reason: errorText(err) }));
    return;
  }
  const frames = () => [$("interpolation"), $("interpolation-2")].map((s) => s.children);
  const show = (i) => {
    for (const f of frames()) for (let k = 0; k < f.length; k++) f[k].classList.toggle("current", k === i);
    moveTo(zs[i]);
  };
  if (matchMedia("(prefers-reduced-motion: reduce)").matches) {
    show(zs.length - 1);
    return;
  }
  let i = 0;
  show(0);
  travel = setInterval(() => {
    i += 1;
    if (i >= zs.length) { stopTravel(); return; }
    show(i);
  }, STEP_MS);
}

/** Catches clicks on either plane while picking the ends (before the drag sees them); any other
 * press on a plane stops the point's travel. */
function onPick(ev) {
  if (!picking) { stopTravel(); return; }
  const canvas = ev.target.closest(".plane-wrap")?.querySelector("canvas");
  if (!canvas) return;
  ev.stopPropagation();
  ev.preventDefault();
  const range = canvas.id === "plane-2" ? state.second.range : state.range;
  picking.push(fromClientOf(canvas, range, ev.clientX, ev.clientY));
  if (picking.length === 1) {
    say("interp.first", { a: point(picking[0]) });
    return;
  }
  const [a, b] = picking;
  picking = null;
  document.body.classList.remove("picking");
  interpolate(a, b);
}

export function setupInterpolation() {
  $("interpolate").addEventListener("click", () => {
    stopTravel();
    picking = [];
    document.body.classList.add("picking");
    say("interp.pick");
  });
  $("interpolate-encoded").addEventListener("click", () => {
    if (encoded.length === 2) interpolate(...encoded);
  });
  // Capturing, on the planes' parent: a click that picks an end does not start a drag.
  document.querySelector(".planes").addEventListener("pointerdown", onPick, { capture: true });
  state.onMove.push((z, fromEncoder) => {
    if (!fromEncoder) return;
    encoded = [...encoded, z.slice()].slice(-2);
    $("interpolate-encoded").disabled = encoded.length < 2;
  });
  state.onModel.push(() => {
    stopTravel();
    encoded = [];
    $("interpolate-encoded").disabled = true;
    $("interpolation").replaceChildren();
    $("interpolation-2").replaceChildren();
    say(null);
  });
}
