// The latent space as the plane shows it. A 2-D latent is the plane itself. A larger one is seen
// along its embedding's principal axes (crate/projection.rs, through wasm): the plane shows the
// first two, the point sets those two coordinates, and a slider per remaining axis sets the
// coordinate along it; the digit decodes the full z these coordinates make.
import { t, num, localize } from "./i18n.js";
import { $, state } from "./state.js";

/** The plane coordinates of a full latent point `z`. */
export function toPlane(z) {
  if (!state.projection) return [z[0], z[1] ?? 0];
  const c = state.projection.coords(Float32Array.from(z));
  return [c[0], c[1]];
}

/** The coordinates along the axes past the plane's two, as the sliders set them. */
export function restCoords() {
  return [...$("axes").querySelectorAll("input")].map((el) => Number(el.value));
}

/** The full latent point at plane coordinates `xy`, the other axes' coordinates from the sliders. */
export function fromPlane(xy) {
  if (!state.projection) return state.latent > 1 ? [xy[0], xy[1]] : [xy[0]];
  return Array.from(state.projection.point(Float32Array.from([xy[0], xy[1], ...restCoords()])));
}

/** Sets the sliders to the coordinates of `z` along the axes past the plane's two. */
export function setRest(z) {
  if (!state.projection) return;
  const c = state.projection.coords(Float32Array.from(z));
  $("axes").querySelectorAll("input").forEach((el, i) => {
    el.value = String(c[i + 2]);
    el.nextElementSibling.textContent = num(c[i + 2], "f2");
  });
}

/** Makes one slider per axis past the plane's two (none for a 2-D latent), over the prior's
 * [-4, 4] or the plane's range if wider; `onChange` runs when one moves, `onSettle` when it is
 * let go (the manifold backdrop, hundreds of decodes, is redrawn then, not on every step). */
export function makeAxisSliders(onChange, onSettle = () => {}) {
  const box = $("axes");
  box.replaceChildren();
  box.hidden = !state.projection;
  if (!state.projection) return;
  const head = document.createElement("p");
  const dims = state.latent;
  localize(head, () => t("plane.axesHead", { dims, count: dims - 2 }));
  box.appendChild(head);
  for (let i = 2; i < state.latent; i++) {
    const label = document.createElement("label");
    const name = document.createElement("span");
    localize(name, () => t("plane.axis", { n: i + 1 }));
    label.append(name, " ");
    const input = document.createElement("input");
    const r = Math.max(4, state.range);
    Object.assign(input, { type: "range", min: String(-r), max: String(r), step: "0.01", value: "0" });
    input.dataset.testid = `axis-${i + 1}`;
    const val = document.createElement("span");
    val.textContent = num(0, "f2");
    input.addEventListener("input", () => { val.textContent = num(Number(input.value), "f2"); onChange(); });
    input.addEventListener("change", onSettle);
    label.append(input, val);
    box.appendChild(label);
  }
}
