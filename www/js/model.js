// Models: loading the shipped model or a user's file into an `Explorer` (refusing latent sizes
// the page cannot show), and moving its work to WebGPU once a device is open. The page works on
// the CPU from the first moment; `?backend=cpu` keeps it there.
import { Explorer } from "../pkg/latent_explorer.js";
import { $, state } from "./state.js";
import { setStatus, showError } from "./status.js";
import { drawBackdrop, showManifold } from "./plane.js";
import { freshDigitCanvas, requestDecode } from "./digit.js";
import { moveTo } from "./point.js";

/** Loads a model file's bytes and shows it; `what` names it in error messages. Resolves to
 * whether it is now the page's model (if not, the previous one stays). */
export async function loadModel(bytes, what) {
  const params = new URLSearchParams(location.search);
  const backend = params.get("backend") ?? "";
  let explorer;
  try {
    explorer = await Explorer.load(bytes, backend);
  } catch (e) {
    showError(`${what}: ${e.message ?? e}`);
    return false;
  }
  if (explorer.latent() !== 2) {
    // The plane, the point and the samples are 2-D; a model of another latent size would be
    // shown wrongly, so it is refused until the page can show such models.
    showError(`${what}: this model has a ${explorer.latent()}-dimensional latent space; the explorer shows 2-D latent planes only (train one with --latent 2).`);
    explorer.free?.();
    return false;
  }
  if (explorer.side() * explorer.side() < 1) {
    showError(`${what}: this model's shape cannot be shown.`);
    return false;
  }
  state.explorer?.free?.();
  state.explorer = explorer;
  state.side = explorer.side();
  state.latent = explorer.latent();
  // An autoencoder's or PCA's encoder is deterministic (no sigma): no sampling around a point.
  state.deterministic = ["ae", "pca"].includes(JSON.parse(explorer.metadata().architecture ?? "{}").kind);
  for (const id of ["sigma", "resample"]) $(id).disabled = state.deterministic;
  showError("");
  freshDigitCanvas();
  drawBackdrop();
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
