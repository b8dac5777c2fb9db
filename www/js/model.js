// Models: loading the shipped model or a user's file into an `Explorer`, finding what its plane
// shows (its embedding, or, for a file without one, the shipped test subset encoded here; for a
// latent of more than two dimensions, seen along its principal axes), and moving its work to
// WebGPU once a device is open. The page works on the CPU from the first moment; `?backend=cpu`
// keeps it there.
import { Explorer, Projection, Testset } from "../pkg/latent_explorer.js";
import { $, state } from "./state.js";
import { setStatus, showError } from "./status.js";
import { drawBackdrop, showManifold } from "./plane.js";
import { freshDigitCanvas, requestDecode } from "./digit.js";
import { moveTo } from "./point.js";
import { showFigures, kindOf } from "./meta.js";
import { makeAxisSliders, toPlane } from "./latent.js";
import { clearElbo, isDeterministic } from "./elbo.js";
import { setClean } from "./corrupt.js";
import { t, errorText, wordedError } from "./i18n.js";

/** Loads a model file's bytes and shows it; `what()` names it in error messages (in the language
 * shown). Resolves to whether it is now the page's model (if not, the previous one stays). */
export async function loadModel(bytes, what) {
  const params = new URLSearchParams(location.search);
  const backend = params.get("backend") ?? "";
  let explorer;
  try {
    explorer = await Explorer.load(bytes, backend);
  } catch (e) {
    showError(() => t(e?.code ? "models.unusable" : "models.failed", { what: what(), reason: errorText(e) }));
    return false;
  }
  if (explorer.latent() < 2 || explorer.side() ** 2 !== explorer.input()) {
    // The plane needs two latent dimensions, the digit a square picture.
    const shape = { latent: explorer.latent(), inputs: explorer.input() };
    showError(() => t("models.badShape", { what: what(), ...shape }));
    explorer.free?.();
    return false;
  }
  const metadata = explorer.metadata();
  let embedding;
  try {
    embedding = await embeddingOf(explorer, metadata, backend);
  } catch (e) {
    showError(() => (e.words ? e.words(what()) : t("models.failed", { what: what(), reason: errorText(e) })));
    explorer.free?.();
    return false;
  }
  state.explorer?.free?.();
  state.projection?.free?.();
  state.explorer = explorer;
  state.side = explorer.side();
  state.latent = explorer.latent();
  state.kind = kindOf(metadata);
  state.hasLogvar = embedding.hasLogvar;
  state.input = null;
  clearElbo();
  setClean(null);
  // A larger latent is seen along the embedding's principal axes (at least a few points needed).
  state.projection = state.latent > 2 ? new Projection(embedding.mu, state.latent) : null;
  state.embedding = { ...embedding, xy: planeCoords(embedding.mu) };
  // An autoencoder's or PCA's encoder is deterministic (no sigma): no sampling around a point.
  for (const id of ["sigma", "resample"]) $(id).disabled = isDeterministic();
  showError("");
  freshDigitCanvas();
  drawBackdrop();
  showFigures($("figures"), metadata);
  for (const f of state.onModel) f();
  // The manifold shows the decoder at the sliders' coordinates: redrawn when one is let go.
  makeAxisSliders(() => moveTo(toPlane(state.z)), () => { if ($("manifold").checked) showManifold(); });
  setStatus();
  moveTo([0, 0]);
  if ($("manifold").checked) showManifold();
  if (backend !== "cpu") startGpu(explorer);
  return true;
}

// The page works on the CPU from the first moment; WebGPU takes over once its device is open and
// its shaders compiled. The GPU then draws the digit itself: the canvas holds one model pixel
// per pixel and CSS scales it up crisply, like the CPU path.
async function startGpu(explorer) {
  state.gpuStarting = true;
  setStatus();
  const ok = await explorer.startGpu();
  if (state.explorer !== explorer) return; // another model was loaded meanwhile
  state.gpuStarting = false;
  if (ok) {
    state.digitOnGpu = explorer.attachDigit(freshDigitCanvas());
    requestDecode(state.z);
  }
  setStatus();
}

/** What the plane shows for `explorer`: `{mu, labels, inPage, hasLogvar}`. The file's own
 * embedding when it has one; otherwise the shipped test subset of its data set (metadata
 * `dataset`, MNIST when it says none), fetched only then and encoded here, on the GPU when the
 * backend has it (started first, unless `backend` is "cpu"; `onGpu` says where it ran). */
async function embeddingOf(explorer, metadata, backend) {
  // Whether the encoder gives a logvar: a deterministic one (ae, pca) gives none.
  const probe = await explorer.encode(new Float32Array(explorer.input()));
  const hasLogvar = (probe.logvar?.length ?? 0) > 0; // null or empty for a deterministic encoder
  let dataset = {};
  try { dataset = JSON.parse(metadata.dataset ?? "{}") ?? {}; } catch { /* none recorded: MNIST, digits */ }
  const mu = explorer.embeddingMu();
  if (mu.length) {
    // Class names for the legend, when the trainer recorded them (metadata dataset.classes).
    return { mu, labels: explorer.embeddingLabels(), classes: dataset.classes, dataset: dataset.name, inPage: false, hasLogvar };
  }
  const name = dataset.name ?? "mnist";
  const file = `models/testset-${name === "fashion-mnist" ? "fashion-mnist" : "mnist"}.safetensors`;
  const res = await fetch(file);
  if (!res.ok) throw wordedError((what) => t("models.noTestset", { what, file, status: res.status }));
  const testset = Testset.parse(new Uint8Array(await res.arrayBuffer()));
  if (backend !== "cpu") await explorer.startGpu();
  if (testset.side() ** 2 !== explorer.input()) {
    const p = { file, inputs: explorer.input(), side: testset.side() };
    throw wordedError((what) => t("models.testsetSize", { what, ...p }));
  }
  const encoded = await explorer.encode(testset.images());
  const onGpu = explorer.usesGpu();
  const out = { onGpu, mu: Float32Array.from(encoded.mu), labels: testset.labels(), inPage: true, count: testset.count(), classes: testset.classes(), dataset: name, hasLogvar };
  testset.free?.();
  return out;
}

/** The plane coordinates of each embedding point, interleaved (x0, y0, x1, y1, ...). */
function planeCoords(mu) {
  const d = state.latent, n = mu.length / d, xy = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) xy.set(toPlane(mu.slice(i * d, (i + 1) * d)), 2 * i);
  return xy;
}
