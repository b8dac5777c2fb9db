// The point and what follows it: moving the point redraws the plane and decodes its digit;
// sampling draws z = mu + sigma * eps around it, on the plane and as a strip of digits.
import { $, state } from "./state.js";
import { t, point, errorText } from "./i18n.js";
import { setStatus, showError } from "./status.js";
import { drawPlane } from "./plane.js";
import { paintDigit, requestDecode } from "./digit.js";
import { fromPlane, setRest } from "./latent.js";

const SAMPLES = 16;

/** Moves the point to plane coordinates `xy` (a latent of more than two dimensions takes the
 * other axes' coordinates from their sliders), or to the full latent point `z` when given (the
 * sliders follow it); `fromEncoder` keeps the encoder's sigma (set just before), and `inputTime`
 * is the timestamp of the input event that asked for it, for the latency record. */
export function moveTo(xy, { z, fromEncoder = false, inputTime } = {}) {
  if (z) setRest(z);
  z = z ? Array.from(z) : fromPlane(xy);
  state.z = z;
  if (!fromEncoder) state.sigma = null;
  // Each write only when it changes something: while dragging, nothing here does.
  const useSigma = $("use-encoder-sigma");
  if (useSigma.disabled !== !state.sigma) useSigma.disabled = !state.sigma;
  if (!state.sigma && useSigma.checked) useSigma.checked = false;
  state.samples = [];
  if ($("samples").firstChild) $("samples").replaceChildren();
  drawPlane();
  requestDecode(z, inputTime);
  // Not awaited above: the second model (compare mode) decodes the same z meanwhile.
  for (const follow of state.onMove) follow(z, fromEncoder, inputTime);
}

/** Draws SAMPLES latent points around the point, with the slider's sigma or the encoder's. */
export async function sample() {
  const e = state.explorer;
  const d = state.latent;
  const useEnc = $("use-encoder-sigma").checked && state.sigma;
  const sigma = useEnc ? state.sigma : Array(d).fill(Number($("sigma").value));
  const mu = Float32Array.from(state.z);
  const logvar = Float32Array.from(sigma.map((s) => 2 * Math.log(Math.max(s, 1e-6))));
  try {
    const { z, pixels } = await e.sampleAndDecode(mu, logvar, SAMPLES, state.seed);
    state.samples = [];
    const strip = $("samples");
    strip.innerHTML = "";
    for (let i = 0; i < SAMPLES; i++) {
      const zi = Array.from(z.slice(i * d, (i + 1) * d));
      state.samples.push(zi);
      const c = document.createElement("canvas");
      c.title = t("digit.z", { z: point(zi) });
      paintDigit(c, pixels, i * state.side * state.side);
      strip.appendChild(c);
    }
    drawPlane();
    setStatus(); // the GPU may have failed while sampling
  } catch (err) {
    showError(() => t("digit.samplingFailed", { reason: errorText(err) }));
  }
}
