// An independent decoder for the browser tests: reads a model file (safetensors) in plain
// JavaScript and decodes in float64, sharing no code with the Rust CPU reference, so a test
// that compares the page with it can fail even when the page runs on that same CPU reference.
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

/** Decodes one latent point `z` to pixel means: decoder.0 .. decoder.out, PyTorch Linear layout. */
export function decode({ arch, tensors }, z) {
  const names = arch.decoder_hidden.map((_, i) => `decoder.${i}`).concat("decoder.out");
  let x = Array.from(z, Number);
  names.forEach((name, l) => {
    const w = tensors[`${name}.weight`], bias = tensors[`${name}.bias`];
    const nOut = bias.length, nIn = x.length;
    const y = new Array(nOut);
    for (let o = 0; o < nOut; o++) {
      let s = bias[o];
      for (let i = 0; i < nIn; i++) s += w[o * nIn + i] * x[i];
      const last = l === names.length - 1;
      const act = last ? arch.output_activation : arch.hidden_activation;
      y[o] = act === "sigmoid" ? 1 / (1 + Math.exp(-s)) : act === "relu" ? Math.max(0, s) : s;
    }
    x = y;
  });
  return x;
}
