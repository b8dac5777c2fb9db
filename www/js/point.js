// The point and what follows it: moving the point redraws the plane and decodes its digit;
// sampling draws z = mu + sigma * eps around it, on the plane and as a strip of digits.
import { $, state, fmt } from "./state.js";
import { setStatus, showError } from "./status.js";
import { drawPlane } from "./plane.js";
import { paintDigit, requestDecode } from "./digit.js";

const SAMPLES = 16;

/** Moves the point to `z`; `fromEncoder` keeps the encoder's sigma (set just before), and
 * `inputTime` is the timestamp of the input event that asked for it, for the latency record. */
export function moveTo(z, { fromEncoder = false, inputTime } = {}) {
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
  const mu = Float32Array.from(state.z.concat(Array(Math.max(0, d - state.z.length)).fill(0)).slice(0, d));
  const logvar = Float32Array.from(sigma.map((s) => 2 * Math.log(Math.max(s, 1e-6))));
  try {
    const { z, pixels } = await e.sampleAndDecode(mu, logvar, SAMPLES, state.seed);
    state.samples = [];
    const strip = $("samples");
    strip.innerHTML = "";
    for (let i = 0; i < SAMPLES; i++) {
      state.samples.push([z[i * d], z[i * d + 1] ?? 0]);
      const c = document.createElement("canvas");
      c.title = `z = ${fmt([z[i * d], z[i * d + 1] ?? 0])}`;
      paintDigit(c, pixels, i * state.side * state.side);
      strip.appendChild(c);
    }
    drawPlane();
    setStatus(); // the GPU may have failed while sampling
  } catch (err) {
    showError(`Sampling failed: ${err.message ?? err}`);
  }
}
