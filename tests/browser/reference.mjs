// An independent model for the browser tests: reads a model file (safetensors) in plain
// JavaScript and encodes, decodes and draws the sampler's noise in float64, sharing no code with
// the Rust CPU reference, so a test that compares the page with it can fail even when the page
// runs on that same CPU reference.
import { readFileSync } from "node:fs";

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Loads `path`: its architecture (from the metadata) and its tensors as Float64Arrays. */
export function loadModel(path) {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  const data = bytes.subarray(8 + n);
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [a, b] = t.data_offsets;
    const raw = data.subarray(a, b);
    if (t.dtype === "F32") tensors[name] = Float64Array.from({ length: (b - a) / 4 }, (_, i) => raw.readFloatLE(4 * i));
    else if (t.dtype === "F16") tensors[name] = Float64Array.from({ length: (b - a) / 2 }, (_, i) => halfToFloat(raw.readUInt16LE(2 * i)));
  }
  return { arch: JSON.parse(header.__metadata__.architecture), tensors };
}

// One dense layer `name` (PyTorch Linear layout: weight [out, in]) applied to `x`, then `act`.
function dense(tensors, name, x, act) {
  const w = tensors[`${name}.weight`], bias = tensors[`${name}.bias`];
  const nOut = bias.length, nIn = x.length;
  const y = new Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let s = bias[o];
    for (let i = 0; i < nIn; i++) s += w[o * nIn + i] * x[i];
    y[o] = act === "sigmoid" ? 1 / (1 + Math.exp(-s)) : act === "relu" ? Math.max(0, s) : s;
  }
  return y;
}

/** Decodes one latent point `z` to its output logits (before the output activation). */
export function decodeLogits({ arch, tensors }, z) {
  let x = Array.from(z, Number);
  arch.decoder_hidden.forEach((_, i) => { x = dense(tensors, `decoder.${i}`, x, arch.hidden_activation); });
  return dense(tensors, "decoder.out", x, "identity");
}

/** Decodes one latent point `z` to pixel means: decoder.0 .. decoder.out, PyTorch Linear layout. */
export function decode(model, z) {
  const act = model.arch.output_activation;
  return decodeLogits(model, z).map((s) => (act === "sigmoid" ? 1 / (1 + Math.exp(-s)) : act === "relu" ? Math.max(0, s) : s));
}

/** Encodes one picture `x` to `{mu, logvar}` (logvar null when the file has no logvar head). */
export function encode({ arch, tensors }, x) {
  let h = Array.from(x, Number);
  arch.encoder_hidden.forEach((_, i) => { h = dense(tensors, `encoder.${i}`, h, arch.hidden_activation); });
  return { mu: dense(tensors, "encoder.mu", h, "identity"), logvar: tensors["encoder.logvar.weight"] ? dense(tensors, "encoder.logvar", h, "identity") : null };
}

// pcg3d (Jarzynski & Olano 2020) in 32-bit JavaScript integer arithmetic.
function pcg3d(x, y, z) {
  const v = [x, y, z].map((a) => (Math.imul(a, 1664525) + 1013904223) >>> 0);
  const mix = () => {
    v[0] = (v[0] + Math.imul(v[1], v[2])) >>> 0;
    v[1] = (v[1] + Math.imul(v[2], v[0])) >>> 0;
    v[2] = (v[2] + Math.imul(v[0], v[1])) >>> 0;
  };
  mix();
  for (let i = 0; i < 3; i++) v[i] = (v[i] ^ (v[i] >>> 16)) >>> 0;
  mix();
  return v;
}

/** The sampler's standard normal for (seed, index, dim), by textbook Box-Muller in float64:
 * u1 = ((h0 >> 8) + 1) / 2^24, u2 = (h1 >> 8) / 2^24, -sqrt(-2 ln u1) cos(2 pi u2). */
export function normal(seed, index, dim) {
  const [h0, h1] = pcg3d(seed >>> 0, index >>> 0, dim >>> 0);
  const u1 = ((h0 >>> 8) + 1) / 2 ** 24, u2 = (h1 >>> 8) / 2 ** 24;
  return -Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** The terms of -ELBO for picture `x` averaged over `k` draws z_j = mu + sigma * normal(seed, j, d):
 * reconstruction (Bernoulli cross-entropy, nats, summed over pixels; `map` holds each pixel's
 * share) and the closed-form KL of q(z|x) from N(0, I). */
export function elboTerms(model, x, k, seed) {
  const { mu, logvar } = encode(model, x);
  const map = new Array(x.length).fill(0);
  for (let j = 0; j < k; j++) {
    const z = mu.map((m, d) => m + Math.exp(0.5 * logvar[d]) * normal(seed, j, d));
    decodeLogits(model, z).forEach((s, i) => {
      // -[x log sigmoid(s) + (1 - x) log(1 - sigmoid(s))] = log(1 + e^s) - x s
      map[i] += (Math.max(s, 0) + Math.log1p(Math.exp(-Math.abs(s))) - x[i] * s) / k;
    });
  }
  const reconstruction = map.reduce((a, v) => a + v, 0);
  const kl = mu.reduce((a, m, d) => a + 0.5 * (m * m + Math.exp(logvar[d]) - 1 - logvar[d]), 0);
  return { reconstruction, kl, map };
}
