// What every part of the page shares: the one mutable state object (also the tests' view of the
// page, as window.explorer.state) and two small helpers. Imports nothing, so any module may
// import it without making a cycle.

export const $ = (id) => document.getElementById(id);

export const state = {
  explorer: null, side: 28, latent: 2, range: 4, // side and latent: the loaded model's
  z: [0, 0],            // the point: the full latent z (all `latent` coordinates)
  embedding: null,      // what the plane shows: {mu, labels, inPage} (inPage: the shipped test subset encoded here)
  projection: null,     // latent > 2: the embedding's principal axes (a wasm Projection); null for 2-D
  kind: "vae",          // the model's metadata kind: "vae", or "ae"/"pca" (deterministic encoder, no KL)
  hasLogvar: true,      // its encoder gives a logvar (false for a deterministic one)
  input: null,          // the last drawing or upload, preprocessed (side * side intensities)
  corruption: null,     // the last noise or erasure: {how, corrupted, reconstruction, ...} (corrupt.js)
  sigma: null,          // encoder's sigma for the point, when it came from an encoding
  deterministic: false, // the loaded model's encoder has no sigma (autoencoder, PCA)
  samples: [],          // sampled z's, drawn as dots
  seed: 1,
  lastDecodeMs: null,
  decoding: false, pendingZ: null,
  digitOnGpu: false,    // the GPU draws the digit canvas itself (no readback)
  gpuStarting: false,   // the page runs on the CPU while WebGPU starts
  // Drag-to-pixels latency: the input event that asked for the digit being decoded, and for
  // each digit shown, ms from that event to the animation frame that first shows it.
  pendingInput: 0, latencies: [], work: [],
  // Called with (z, fromEncoder) after every move of the point, and with () after a new model is
  // loaded: the second plane, the interpolation (compare.js, interpolate.js) follow the point so.
  onMove: [], onModel: [],
};

/** Appends a timing to `list`, keeping the last 1000. */
export const record = (list, ms) => { list.push(ms); if (list.length > 1000) list.shift(); };

