// What every part of the page shares: the one mutable state object (also the tests' view of the
// page, as window.explorer.state) and three small helpers. Imports nothing, so any module may
// import it without making a cycle.

export const $ = (id) => document.getElementById(id);

export const state = {
  explorer: null, side: 28, latent: 2, range: 4, // side and latent: the loaded model's
  z: [0, 0],            // the point
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
};

/** Appends a timing to `list`, keeping the last 1000. */
export const record = (list, ms) => { list.push(ms); if (list.length > 1000) list.shift(); };

/** A latent point as text: "0.123, -1.500". */
export const fmt = (z) => z.map((v) => v.toFixed(3)).join(", ");
