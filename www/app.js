// The explorer page: draws the latent plane, keeps the decoded digit in step with the point,
// samples around it, and encodes drawings and uploads. The model runs in Rust (wasm): on WebGPU
// when the browser has it and it is faster, else on the CPU reference. `?backend=webgpu|cpu`
// forces a backend.
//
// This entry point starts the wasm module, wires the controls and loads the shipped model; the
// parts live in js/: state (shared), status (what the page says about itself), plane, digit,
// point (moving it, sampling around it), input (drag, keys, pad, upload), model (loading,
// WebGPU), models (the menus), compare (the second model), prior, interpolate and train (the
// Train panel). Values the
// Rust side also defines are read from the wasm module, not repeated here.
import init from "./pkg/latent_explorer.js";
import { $, state } from "./js/state.js";
import { showError } from "./js/status.js";
import { showManifold } from "./js/plane.js";
import { moveTo, sample } from "./js/point.js";
import { setupPoint, setupPad, onUpload } from "./js/input.js";
import { loadModel } from "./js/model.js";
import { DEFAULT_MODEL, fetchModel, setupModelMenu } from "./js/models.js";
import { setupCompare } from "./js/compare.js";
import { setupPrior } from "./js/prior.js";
import { setupInterpolation } from "./js/interpolate.js";
import { setupCorrupt } from "./js/corrupt.js";
import { setupTrain, trainHooks } from "./js/train.js";
import { setupLanguage, localize, t, num, errorText } from "./js/i18n.js";
import { setupTour } from "./js/tour.js";

async function main() {
  // The model downloads while the wasm module compiles.
  const model = fetchModel({ file: DEFAULT_MODEL });
  model.catch(() => {}); // reported below, once the page can show it
  // The catalogue loads while the wasm module compiles; nothing is worded before it is in.
  await Promise.all([setupLanguage($("language")), init()]);
  setupTour();
  setupPoint();
  setupPad();
  setupCorrupt();
  localize($("sigmaval"), () => num(Number($("sigma").value), "f2"));
  $("sigma").addEventListener("input", () => localize($("sigmaval"), () => num(Number($("sigma").value), "f2")));
  $("resample").addEventListener("click", () => { state.seed++; sample(); });
  $("manifold").addEventListener("change", () => { if (state.explorer) showManifold(); });
  $("upload").addEventListener("change", (ev) => onUpload(ev.target.files[0]));
  const menus = setupModelMenu().then(setupCompare);
  setupPrior();
  setupInterpolation();
  setupTrain();
  let bytes;
  try {
    bytes = await model;
  } catch (e) {
    showError(() => errorText(e));
    return;
  }
  await menus;
  if (await loadModel(bytes, () => t("models.shipped"))) {
    // Ready once the first digit is on screen.
    while (state.decoding || !$("digit").dataset.z) await new Promise((r) => setTimeout(r, 10));
    document.body.dataset.ready = "true";
  }
  window.explorer = {
    state, moveTo,
    decodeCpu: (z) => state.explorer.decodeCpu(Float32Array.from(z)),
    // Tests: lose the GPU device as a driver reset would.
    loseGpu: (allowRecovery) => state.explorer.loseGpuForTesting(allowRecovery),
    train: trainHooks,
  };
}

main().catch((e) => showError(() => t("page.couldNotStart", { reason: errorText(e) })));
