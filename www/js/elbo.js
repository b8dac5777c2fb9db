// The ELBO of the user's drawing, live: while they draw (at most every THROTTLE_MS) and on every
// encode or upload, the reconstruction term and the KL term in nats and their sum (-ELBO),
// averaged over K draws of q(z|x) with a fixed seed (crate/elbo.rs on the CPU reference; K and
// the seed come with the result), and a heat map of each pixel's reconstruction error. A model with a
// deterministic encoder (kind ae or pca: no logvar) has no KL term, and the panel says so.
import { $, state } from "./state.js";
import { t, localize, errorText } from "./i18n.js";

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
  localize(el, () => t("elbo.empty"));
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
    localize(el, () => t("elbo.failed", { reason: errorText(err) }));
    return;
  }
  // PCA (and an autoencoder trained on it) scores squared error, not a log-likelihood.
  const error = () => t(r.loss === "mse" ? "elbo.mse" : "elbo.bce", { value: r.reconstruction });
  el.dataset.reconstruction = String(r.reconstruction);
  if (r.kl == null || isDeterministic()) {
    el.dataset.kl = "";
    const kind = state.kind;
    localize(el, () => t("elbo.noKl", { error: error(), kind }));
  } else {
    el.dataset.kl = String(r.kl);
    localize(el, () => t("elbo.terms", { rec: r.reconstruction, kl: r.kl, total: r.reconstruction + r.kl, samples: r.samples, seed: String(r.seed) }));
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
  c.title = t("elbo.mapTitle", { max });
}
