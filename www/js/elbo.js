// The ELBO of the user's drawing, live: while they draw (at most every THROTTLE_MS) and on every
// encode or upload, the reconstruction term and the KL term in nats and their sum (-ELBO),
// averaged over K draws of q(z|x) with a fixed seed (crate/elbo.rs on the CPU reference; K and
// the seed come with the result), and a heat map of each pixel's reconstruction error. A model with a
// deterministic encoder (kind ae or pca: no logvar) has no KL term, and the panel says so.
import { $, state } from "./state.js";

const THROTTLE_MS = 100;
let timer = null, lastRun = -Infinity, pendingInput = null;

/** Whether the loaded model's encoder is deterministic (no q(z|x) to sample, no KL term). */
export function isDeterministic() {
  return state.kind === "ae" || state.kind === "pca" || !state.hasLogvar;
}

/** Updates the panel soon with what `makeInput()` returns then (a function, so the drawing is
 * read once per update, not once per stroke). */
export function elboSoon(makeInput) {
  pendingInput = makeInput;
  if (timer != null) return;
  timer = setTimeout(() => {
    timer = null;
    lastRun = performance.now();
    const input = pendingInput?.();
    pendingInput = null;
    if (input) show(input);
  }, Math.max(0, lastRun + THROTTLE_MS - performance.now()));
}

/** Updates the panel now for `input` (an encode or upload). */
export function elboNow(input) {
  pendingInput = null;
  show(input);
}

/** Empties the panel (another model was loaded: the figures were the previous one's). */
export function clearElbo() {
  const el = $("elbo");
  el.dataset.reconstruction = el.dataset.kl = "";
  el.textContent = "Draw a digit: its reconstruction and KL terms show here.";
  const c = $("elbo-map");
  c.getContext("2d").clearRect(0, 0, c.width, c.height);
}

function show(input) {
  const e = state.explorer, el = $("elbo");
  if (!e) return;
  let r;
  try {
    r = e.elbo(Float32Array.from(input));
  } catch (err) {
    el.textContent = `The ELBO could not be computed: ${err.message ?? err}`;
    return;
  }
  const nats = (v) => `${v.toFixed(2)} nats`;
  // PCA (and an autoencoder trained on it) scores squared error, not a log-likelihood.
  const error = (v) => (r.loss === "mse" ? `${v.toFixed(2)} (squared error summed over the pixels)` : `${nats(v)} (binary cross-entropy of the decoded code)`);
  el.dataset.reconstruction = String(r.reconstruction);
  if (r.kl == null || isDeterministic()) {
    el.dataset.kl = "";
    el.textContent = `reconstruction error ${error(r.reconstruction)}. No KL term: this model's encoder is deterministic (${state.kind}), it gives one code per picture and no q(z|x) to compare with the prior, so there is no ELBO.`;
  } else {
    el.dataset.kl = String(r.kl);
    el.textContent = `reconstruction ${nats(r.reconstruction)} + KL ${nats(r.kl)} = −ELBO ${nats(r.reconstruction + r.kl)} (averaged over ${r.samples} draws z ~ q(z|x), seed ${r.seed})`;
  }
  paintErrorMap(r.map);
}

// Each pixel's reconstruction error (nats) as a heat map: white for none, dark red for the image's worst.
function paintErrorMap(map) {
  const c = $("elbo-map"), n = state.side;
  if (c.width !== n) c.width = n;
  if (c.height !== n) c.height = n;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(n, n);
  const max = Math.max(1e-6, ...map);
  for (let i = 0; i < n * n; i++) {
    const t = Math.max(0, map[i]) / max;
    img.data[4 * i] = Math.round(255 - 75 * t);
    img.data[4 * i + 1] = img.data[4 * i + 2] = Math.round(255 * (1 - t));
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  c.title = `reconstruction error per pixel, white 0 to dark red ${max.toFixed(2)} nats`;
}
