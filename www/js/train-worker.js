// The Train panel's CPU path: a Web Worker with its own instance of the wasm module, running a
// CpuTraining session (the native trainer's steps) so the page's thread stays free to draw.
// It steps in slices of about SLICE_MS, yielding between them so that messages (pause, beta,
// the point) are handled, and posts each slice's results and, at most every VIEW_MS (and never
// more than a third of its time), a view: the test subset's embedding, the digit at the point
// and the prior samples, decoded with the current weights.
import init, { CpuTraining } from "../pkg/latent_explorer.js";

const SLICE_MS = 40;
const VIEW_MS = 120;

let session = null, running = false, looping = false;
let test = null, z = [0, 0], priorZ = null, stopAt = Infinity;
let viewCost = 0, lastView = -Infinity;

const ready = init();

function view() {
  const t0 = performance.now();
  const mu = Float32Array.from(session.embed(test));
  const digit = Float32Array.from(session.decode(Float32Array.from(z)));
  const prior = Float32Array.from(session.decode(priorZ));
  viewCost = performance.now() - t0;
  lastView = performance.now();
  postMessage({ type: "view", mu, digit, prior, viewMs: viewCost, position: session.position() }, [mu.buffer, digit.buffer, prior.buffer]);
}

async function loop() {
  if (looping) return;
  looping = true;
  try {
    while (running) {
      const t0 = performance.now();
      const results = [];
      while (performance.now() - t0 < SLICE_MS && session.position().steps < stopAt) results.push(...session.run(1));
      postMessage({ type: "results", results, position: session.position() });
      if (session.position().steps >= stopAt) { running = false; postMessage({ type: "stopped" }); }
      if (performance.now() - lastView >= Math.max(VIEW_MS, 3 * viewCost)) view();
      await new Promise((r) => setTimeout(r, 0));
    }
    view();
  } catch (e) {
    running = false;
    postMessage({ type: "error", error: asData(e) });
  } finally {
    looping = false;
  }
}

// An error as a message can carry it: its English text, and the code and parameters the page
// words it with (crate/error_code.rs).
const asData = (e) => ({ message: e?.message ?? String(e), code: e?.code, params: e?.params });

// Requests that answer: {id, type, ...}; the reply is {type: "reply", id, value} or an error.
const handlers = {
  async start({ settings, data, testImages, point, prior, resume }) {
    await ready;
    session?.free();
    session = null;
    test = testImages; z = point; priorZ = prior;
    session = resume
      ? CpuTraining.resume(settings, data, resume.params, resume.m, resume.v, BigInt(resume.position.steps), resume.position.epoch, resume.position.batch)
      : new CpuTraining(settings, data);
    view();
    return session.position();
  },
  run({ until }) { stopAt = until ?? Infinity; running = true; loop(); },
  async pause() { running = false; while (looping) await new Promise((r) => setTimeout(r, 5)); return session.position(); },
  beta({ beta }) { session.setBeta(beta); return session.position(); },
  point({ point }) { z = point; if (!running) view(); },
  params() { return session.params(); },
  position() { return session.position(); },
  model() { return session.modelBytes(); },
};

onmessage = async ({ data: msg }) => {
  try {
    const value = await handlers[msg.type](msg);
    if (msg.id != null) postMessage({ type: "reply", id: msg.id, value });
  } catch (e) {
    if (msg.id != null) postMessage({ type: "reply", id: msg.id, error: asData(e) });
  }
};
