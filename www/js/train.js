// The Train panel: a model learns in the page while the latent plane forms. On WebGPU the
// steps run in the GPU session (many steps per submission, their losses read a group later, so
// the page's thread never waits on the GPU); otherwise, or when asked, in a Web Worker running
// the CPU session (train-worker.js). Either way the view (the test subset's embedding, the digit
// at the panel's point, prior samples) is recomputed with the current weights every VIEW_MS.
// Training data are fetched only when the panel is opened. A lost GPU device pauses training and
// offers to continue on the CPU from the last weights read back.
import { GpuTraining, Testset, hiddenPresets } from "../pkg/latent_explorer.js";
import { $ } from "./state.js";
import { paintBackdrop, rangeOf, showLegend, toCanvasOf, fromClientOf } from "./plane.js";
import { paintDigit } from "./digit.js";
import { drawCurves } from "./curves.js";
import { loadModel } from "./model.js";
import { t, num, localize, errorText, onLanguage, wordedError as worded } from "./i18n.js";

const VIEW_MS = 120;     // the view is refreshed more than 5 times a second while training runs
const GROUP_MS = 60;     // GPU steps per submission are sized to about this much GPU time
const PRIOR_SAMPLES = 16;
// The shipped subsets' sizes (www/data/train-*.safetensors.gz, www/models/testset-*.safetensors).
const SUBSETS = { images: 10000, perClass: 1000, test: 2000 };
const DATA = (name) => `data/train-${name}.safetensors.gz`;
const TESTSET = (name) => `models/testset-${name}.safetensors`;

const T = {
  run: null, opened: false, busy: null,
  data: new Map(), tests: new Map(), // bytes and test subsets by data set name, fetched once
  counts: new Map(),                 // training images per data set
  history: [], steps: 0, rate: [], views: 0, mu: null, z: [0, 0], range: 4,
  stopAt: Infinity, model: null,
  prior: priorDraws(PRIOR_SAMPLES),
};

// Fixed draws z ~ N(0, I) (Box-Muller on a small LCG), decoded anew at every view.
function priorDraws(n) {
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) + 1) / 4294967297;
  return Float32Array.from({ length: 2 * n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

/** Says `render()` in the panel's note, in the language shown (again after a switch). */
const say = (render) => localize($("train-note"), render);
/** An error sent by the worker (`{message, code, params}`), as an Error again. */
const fromData = (d) => Object.assign(new Error(d?.message ?? String(d)), { code: d?.code, params: d?.params });

const dataName = () => $("train-data").value;

function settings() {
  return {
    kind: $("train-kind").value, hidden: $("train-hidden").value, lr: Number($("train-lr").value),
    batchSize: Number($("train-batch").value), beta: Number($("train-beta").value), seed: Number($("train-seed").value),
  };
}

async function fetchBytes(url, what) {
  const res = await fetch(url);
  if (!res.ok) throw worded(() => t("train.fetchFailed", { what: t(what), url, status: res.status }));
  return new Uint8Array(await res.arrayBuffer());
}

/** The training data and test subset of data set `name`: fetched and checked on first use. */
async function dataFor(name) {
  if (!T.data.has(name)) {
    const bytes = await fetchBytes(DATA(name), "train.trainingData");
    let set;
    try { set = Testset.parse(bytes); } catch (e) { throw worded(() => t("train.dataUnusable", { file: DATA(name), reason: errorText(e) })); }
    T.counts.set(name, set.count());
    set.free?.();
    T.data.set(name, bytes);
  }
  if (!T.tests.has(name)) {
    const set = Testset.parse(await fetchBytes(TESTSET(name), "train.testSubset"));
    T.tests.set(name, { images: set.images(), labels: set.labels(), classes: set.classes() });
    set.free?.();
  }
  return { bytes: T.data.get(name), test: T.tests.get(name) };
}

// ---- the two ways of running: the same interface ----

class GpuRun {
  constructor(training, test) { this.t = training; this.test = test; this.running = false; this.loop = null; const adapter = training.adapter(); this.where = () => t("train.whereGpu", { adapter }); }
  // `running` stays true until the last queued step has been read back; `want` asks the loop
  // to stop queueing.
  start() { if (!this.running) { this.running = this.want = true; this.loop = this.go(); } }
  async go() {
    // Steps per submission: sized from the measured time per step, so that each is about
    // GROUP_MS of GPU work; the view takes at most a third of the time.
    let group = 1, lastView = performance.now();
    try {
      while (this.want && T.steps + this.queued() < T.stopAt) {
        const n = Math.max(1, Math.min(group, T.stopAt - T.steps - this.queued()));
        const t0 = performance.now();
        const done = await this.t.advance(n);
        this.inFlight = n;
        onResults(done);
        if (done.length) {
          T.stepMs = (performance.now() - t0) / done.length;
          group = Math.max(1, Math.min(64, Math.round(GROUP_MS / T.stepMs)));
        }
        if (performance.now() - lastView >= Math.max(VIEW_MS, 3 * (T.viewMs ?? 0))) { await this.view(); lastView = performance.now(); }
      }
      await this.view();
    } catch (e) {
      onFailure(e, this);
    }
    this.running = false;
    onPaused();
  }
  queued() { return this.inFlight ?? 0; }
  async view() {
    onResults(await this.t.sync());
    this.inFlight = 0;
    const t0 = performance.now();
    const mu = await this.t.embed(this.test.images);
    const digit = await this.t.decode(Float32Array.from(T.z));
    const prior = await this.t.decode(T.prior);
    T.viewMs = performance.now() - t0;
    onView({ mu, digit, prior });
  }
  async pause() { this.want = false; await this.loop; }
  async setBeta(b) { await this.t.setBeta(b); }
  async klWeight() { return this.t.deviceBeta(); }
  async params() { return (await this.t.snapshot()).params; }
  async model() { return this.t.modelBytes(); }
  async pointMoved() { if (!this.running) await this.view(); }
  dispose() { this.want = false; this.t.free?.(); }
}

class CpuRun {
  constructor(worker) {
    this.w = worker; this.next = 1; this.replies = new Map(); this.running = false; this.where = () => t("train.whereCpu");
    worker.onmessage = ({ data: m }) => {
      if (m.type === "reply") { const r = this.replies.get(m.id); this.replies.delete(m.id); m.error ? r.reject(fromData(m.error)) : r.resolve(m.value); }
      else if (m.type === "results") onResults(m.results);
      else if (m.type === "view") onView(m);
      else if (m.type === "stopped") { this.running = false; onPaused(); }
      else if (m.type === "error") { this.running = false; onFailure(fromData(m.error), this); onPaused(); }
    };
    worker.onerror = (e) => { this.running = false; onFailure(worded(() => t("train.workerFailed", { reason: e.message })), this); };
  }
  static async create(settings, bytes, test, resume = null) {
    const run = new CpuRun(new Worker(new URL("./train-worker.js", import.meta.url), { type: "module" }));
    await run.ask("start", { settings, data: bytes, testImages: test.images, point: T.z, prior: T.prior, resume });
    return run;
  }
  ask(type, payload = {}) {
    const id = this.next++;
    return new Promise((resolve, reject) => { this.replies.set(id, { resolve, reject }); this.w.postMessage({ type, id, ...payload }); });
  }
  start() { this.running = true; this.ask("run", { until: T.stopAt }); }
  // The worker's last results and view arrive before its reply: the count is final then.
  async pause() { await this.ask("pause"); this.running = false; onPaused(); }
  async setBeta(b) { await this.ask("beta", { beta: b }); }
  async klWeight() { return (await this.ask("position")).beta; }
  async params() { return this.ask("params"); }
  async model() { return this.ask("model"); }
  async pointMoved() { await this.ask("point", { point: T.z }); }
  dispose() { this.running = false; this.w.terminate(); }
}

// ---- what a run reports ----

function onResults(results) {
  if (!results?.length) return;
  for (const r of results) T.history.push({ reconstruction: r.reconstruction, kl: r.kl, loss: r.reconstruction + r.kl });
  T.steps += results.length;
  const examples = results.reduce((s, r) => s + r.rows, 0);
  T.rate.push([performance.now(), examples]);
  while (T.rate.length > 2 && performance.now() - T.rate[0][0] > 3000) T.rate.shift();
  const last = T.history[T.history.length - 1];
  const p = $("train-progress");
  p.dataset.steps = String(T.steps);
  p.dataset.loss = last.loss.toFixed(4);
  showProgress();
}

function examplesPerSecond() {
  if (T.rate.length < 2) return null;
  const span = (T.rate[T.rate.length - 1][0] - T.rate[0][0]) / 1000;
  return span > 0 ? T.rate.slice(1).reduce((s, [, n]) => s + n, 0) / span : null;
}

function showProgress() {
  const last = T.history[T.history.length - 1];
  const rate = examplesPerSecond();
  const epochs = T.history.length && T.dataCount ? (T.steps * Number($("train-batch").value)) / T.dataCount : 0;
  const running = T.run?.running, run = T.run, steps = T.steps;
  localize($("train-progress"), () => [
    t("train.step", { n: steps }), t("train.epoch", { n: epochs }),
    last ? t("train.loss", { value: last.loss }) : null,
    rate && running ? t("train.rate", { n: Math.round(rate) }) : null,
    run ? t("train.on", { where: run.where() }) : null,
  ].filter(Boolean).join(t("train.separator")));
}

let curvesPending = false;
function onView({ mu, digit, prior, viewMs }) {
  T.mu = mu;
  if (viewMs != null) T.viewMs = viewMs;
  T.views++;
  const test = T.tests.get(T.dataset);
  const view = { xy: mu, labels: test.labels };
  T.range = rangeOf(view);
  const canvas = $("train-plane");
  paintBackdrop(canvas.getContext("2d", { alpha: false }), view, T.range, null);
  drawPoint(canvas);
  canvas.dataset.views = String(T.views);
  paintDigit($("train-digit"), digit);
  const grid = $("train-prior").children;
  for (let i = 0; i < PRIOR_SAMPLES; i++) paintDigit(grid[i], prior, i * 784);
  if (!curvesPending) { curvesPending = true; requestAnimationFrame(() => { curvesPending = false; drawCurves($("train-curves"), T.history); }); }
}

function drawPoint(canvas) {
  const ctx = canvas.getContext("2d");
  const [cx, cy] = toCanvasOf(canvas.width, T.range, T.z);
  ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.arc(cx, cy, 6, 0, 2 * Math.PI); ctx.stroke(); ctx.lineWidth = 1;
}

function onFailure(e, run) {
  if (run instanceof GpuRun && (e?.code === "gpu.device-lost" || /lost/i.test(e?.message ?? ""))) {
    const n = T.steps;
    say(() => t("train.lost", { n }));
    $("train-continue-cpu").hidden = false;
  } else {
    say(() => errorText(e));
  }
  T.failed = true;
}

function onPaused() {
  buttons();
  showProgress();
}

function buttons() {
  const running = !!T.run?.running;
  $("train-start").disabled = running || !!T.busy || T.failed;
  $("train-pause").disabled = !running;
  $("train-reset").disabled = !!T.busy;
  $("train-save").disabled = running || !T.run || T.failed || T.steps === 0;
  $("train-use").disabled = running || !T.run || T.failed || T.steps === 0;
}

// ---- the controls ----

/** A fresh run of the panel's settings (the initial weights of its seed). */
async function newRun() {
  T.run?.dispose();
  T.run = null;
  T.history = []; T.steps = 0; T.rate = []; T.failed = false; T.dataset = dataName();
  $("train-continue-cpu").hidden = true;
  $("train-progress").dataset.steps = "0";
  $("train-progress").dataset.loss = "";
  const dataKey = T.dataset === "fashion-mnist" ? "train.fashion" : "train.mnist";
  say(() => t("train.loading", { data: t(dataKey) }));
  const { bytes, test } = await dataFor(T.dataset);
  T.dataCount = T.counts.get(T.dataset);
  showLegend($("train-legend"), test.classes, T.dataset);
  const s = settings();
  const want = $("train-backend").value;
  let note = null;
  if (want !== "cpu" && navigator.gpu) {
    try {
      const training = await GpuTraining.start(s, bytes);
      if (want === "auto" && training.isSoftware()) {
        const adapter = training.adapter();
        note = () => t("train.software", { adapter });
        training.free?.();
      } else {
        T.run = new GpuRun(training, test);
      }
    } catch (e) {
      // Bad data or settings fail on the CPU too: said as they are.
      if (want === "webgpu" || e?.code?.startsWith("testset.") || e?.code === "model.config") throw e;
      note = () => t("train.noStart", { reason: errorText(e) });
    }
  } else if (want === "webgpu") {
    throw worded(() => t("train.noWebgpu"));
  }
  T.run ??= await CpuRun.create(s, bytes, test);
  const where = T.run.where;
  say(note ?? (() => t("train.ready", { where: where() })));
  await T.run.pointMoved?.();
  if (T.run instanceof GpuRun) await T.run.view();
  drawCurves($("train-curves"), T.history);
}

/** Runs `f` with the controls locked; its error is shown in the panel. A call made meanwhile
 * (a setting changed while a run is being set up) runs after it, the latest one only. */
async function locked(f) {
  if (T.busy) { T.then = f; return; }
  T.busy = f;
  buttons();
  try { await f(); } catch (e) { say(() => errorText(e)); T.failed = !T.run; } finally { T.busy = null; buttons(); }
  const next = T.then;
  T.then = null;
  if (next) await locked(next);
}

async function start() {
  if (!T.run) await newRun();
  T.run.start();
  const where = T.run.where;
  say(() => t("train.training", { where: where() }));
}

async function save() {
  const bytes = await T.run.model();
  T.model = bytes;
  const name = `${T.dataset}-${$("train-kind").value}-step${T.steps}.safetensors`;
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  say(() => t("train.saved", { name, bytes: bytes.length }));
}

async function continueOnCpu() {
  const snap = await T.run.t.snapshot();
  const { bytes, test } = await dataFor(T.dataset);
  const s = { ...settings(), beta: snap.position.beta };
  T.run.dispose();
  T.run = await CpuRun.create(s, bytes, test, snap);
  T.history.length = Math.min(T.history.length, snap.position.steps);
  T.steps = snap.position.steps;
  T.failed = false;
  $("train-continue-cpu").hidden = true;
  T.run.start();
  const where = T.run.where, n = T.steps;
  say(() => t("train.continuing", { where: where(), n }));
}

export function setupTrain() {
  for (const [name, sizes] of hiddenPresets().map((p) => p.split(":"))) {
    const o = new Option("", name);
    $("train-hidden").append(o);
    localize(o, () => t("train.hiddenOption", { name: t(name === "small" ? "train.hiddenSmall" : "train.hiddenDefault"), sizes: sizes.replace(",", ", ") }));
  }
  if (new URLSearchParams(location.search).get("backend") === "cpu") $("train-backend").value = "cpu";
  $("train-panel").addEventListener("click", () => {
    const body = $("train-body");
    body.hidden = !body.hidden;
    if (!body.hidden && !T.opened) { T.opened = true; locked(newRun); }
  });
  $("train-start").addEventListener("click", () => locked(start));
  $("train-pause").addEventListener("click", () => locked(() => T.run.pause()));
  $("train-reset").addEventListener("click", () => locked(async () => { await T.run?.pause(); await newRun(); }));
  $("train-save").addEventListener("click", () => locked(save));
  $("train-use").addEventListener("click", () => locked(async () => {
    T.model = await T.run.model();
    const n = T.steps;
    if (await loadModel(T.model, () => t("models.trainedHere"))) say(() => t("train.used", { n }));
  }));
  $("train-continue-cpu").addEventListener("click", () => locked(continueOnCpu));
  for (const id of ["train-data", "train-kind", "train-hidden", "train-lr", "train-batch", "train-seed", "train-backend"]) {
    $(id).addEventListener("change", () => { if (T.opened) locked(async () => { await T.run?.pause(); await newRun(); }); });
  }
  $("train-beta").addEventListener("input", () => {
    const b = Number($("train-beta").value);
    localize($("train-beta-val"), () => num(b, "f1"));
    T.run?.setBeta(b).catch((e) => say(() => errorText(e)));
  });
  const plane = $("train-plane");
  const move = (ev) => {
    T.z = fromClientOf(plane, T.range, ev.clientX, ev.clientY);
    T.run?.pointMoved().catch(() => {});
  };
  plane.addEventListener("pointerdown", (ev) => { plane.setPointerCapture(ev.pointerId); move(ev); });
  plane.addEventListener("pointermove", (ev) => { if (plane.hasPointerCapture(ev.pointerId)) move(ev); });
  const grid = $("train-prior");
  for (let i = 0; i < PRIOR_SAMPLES; i++) grid.append(Object.assign(document.createElement("canvas"), { width: 28, height: 28 }));
  drawCurves($("train-curves"), []);
  localize($("train-progress"), () => t("train.notStarted"));
  localize($("train-prior-caption"), () => t("train.priorDraws", { count: PRIOR_SAMPLES }));
  localize($("train-about"), () => t("train.about", SUBSETS));
  localize($("train-beta-val"), () => num(Number($("train-beta").value), "f1"));
  onLanguage(() => drawCurves($("train-curves"), T.history));
  buttons();
}

/** For tests: the panel's state and what only the engine knows. */
export const trainHooks = {
  state: T,
  params: () => T.run.params(),
  klWeight: () => T.run.klWeight(),
  loseDevice: () => T.run.t.loseDeviceForTesting(),
  /** Stop after step `n` (the run pauses there). */
  stopAt: (n) => { T.stopAt = n; },
};
