// Train panel benchmark (prints numbers; not a test), in headless Chromium, per backend (WebGPU
// on SwiftShader, and the CPU fallback in its Web Worker), with the panel's defaults on the
// shipped 10,000-image MNIST subset:
// - examples/s: steps times the batch over the node process's clock, between two readings of the
//   page's step count after a warm-up;
// - time from pressing start to a recognisable layout: the first view whose embedding of the
//   2,000-image test subset has a 10-nearest-neighbour accuracy (leave one out, computed here in
//   node from the embedding the page drew) of at least 80%, and of 60% and 70% on the way (the
//   shipped VAE, trained on all 60,000 images for 100 epochs, scores 80.3% on these images);
// - frame times while training: requestAnimationFrame intervals in the page (p50, p95), and the
//   intervals between frames Chrome's own trace says were presented.
// Run: `npm run bench:train [-- CPU|WebGPU]` (builds first). BENCH_SECONDS sets each run's length
// (default 40); BENCH_SET="train-beta=0.5,train-lr=0.001" changes the panel's controls first.
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";
import { CHROMIUM, BASE_ARGS, WEBGPU_ARGS } from "./chromium.mjs";
import { traced } from "./trace.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 40);
const server = await serve(0);
const base = `http://127.0.0.1:${server.address().port}/`;
const pct = (xs, q) => xs.slice().sort((a, b) => a - b)[Math.round((xs.length - 1) * q)];
const only = process.argv[2];

/** Leave-one-out k-nearest-neighbour accuracy of 2-D points `xy` with `labels`. */
function knn(xy, labels, k = 10) {
  const n = labels.length;
  let right = 0;
  const best = new Float64Array(k), who = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    best.fill(Infinity);
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const d = (xy[2 * i] - xy[2 * j]) ** 2 + (xy[2 * i + 1] - xy[2 * j + 1]) ** 2;
      if (d >= best[k - 1]) continue;
      let p = k - 1;
      while (p > 0 && best[p - 1] > d) { best[p] = best[p - 1]; who[p] = who[p - 1]; p--; }
      best[p] = d; who[p] = j;
    }
    const votes = new Array(10).fill(0);
    who.forEach((j) => votes[labels[j]]++);
    if (votes.indexOf(Math.max(...votes)) === labels[i]) right++;
  }
  return right / n;
}

async function run(name) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: name === "WebGPU" ? [...BASE_ARGS, ...WEBGPU_ARGS] : BASE_ARGS });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(base);
  await page.waitForFunction(() => document.body.dataset.ready === "true", null, { timeout: 120000 });
  await page.click('[data-testid="train-panel"]');
  const idle = () => page.waitForFunction(() => { const T = window.explorer.train.state; return !T.busy && T.run; }, null, { timeout: 120000 });
  await idle();
  await page.selectOption('[data-testid="train-backend"]', name === "WebGPU" ? "webgpu" : "cpu");
  for (const [id, value] of (process.env.BENCH_SET ?? "").split(",").filter(Boolean).map((kv) => kv.split("="))) {
    const el = page.locator(`[data-testid="${id}"]`);
    if (await el.evaluate((e) => e.tagName === "SELECT")) await el.selectOption(value); else await el.fill(value);
  }
  await page.waitForTimeout(50);
  await idle();
  const where = await page.evaluate(() => window.explorer.train.state.run.where);
  const batch = Number(await page.inputValue('[data-testid="train-batch"]'));
  // In the page: every view's embedding as it is drawn, and every animation frame's time.
  await page.evaluate(() => {
    const T = window.explorer.train.state, rec = (window.bench = { views: [], frames: [] });
    let seen = T.views;
    const frame = (t) => {
      rec.frames.push(t);
      if (T.views !== seen) { seen = T.views; rec.views.push({ t, mu: Array.from(T.mu), steps: T.steps }); }
      if (!rec.stop) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    rec.t0 = performance.now();
    document.querySelector('[data-testid="train-start"]').click();
  });
  const cdp = await page.context().newCDPSession(page);
  const steps = () => page.evaluate(() => Number(document.querySelector('[data-testid="train-progress"]').dataset.steps));
  let rate = null;
  const events = await traced(cdp, async () => {
    await page.waitForTimeout(Math.min(5000, SECONDS * 250));
    const [s0, t0] = [await steps(), performance.now()];
    await page.waitForTimeout(SECONDS * 1000 - Math.min(5000, SECONDS * 250));
    const [s1, t1] = [await steps(), performance.now()];
    rate = ((s1 - s0) * batch) / ((t1 - t0) / 1000);
  });
  const rec = await page.evaluate(() => { window.bench.stop = true; return window.bench; });
  await page.click('[data-testid="train-pause"]');
  const labels = await page.evaluate(() => Array.from(window.explorer.train.state.tests.get("mnist").labels));
  await browser.close();

  const reached = {};
  let lastT = -Infinity;
  for (const v of rec.views) {
    if (v.t - lastT < 500) continue; // two views a second are enough to time the layout
    lastT = v.t;
    const acc = knn(v.mu, labels);
    for (const q of [0.6, 0.7, 0.8]) if (acc >= q && !reached[q]) reached[q] = { seconds: (v.t - rec.t0) / 1000, steps: v.steps };
    if (reached[0.8]) break;
  }
  const last = rec.views[rec.views.length - 1];
  const intervals = rec.frames.slice(1).map((t, i) => t - rec.frames[i]);
  const presented = events.filter((e) => e.name === "AnimationFrame::Presentation" && e.args?.data?.begin_frame_id?.sequence_number !== 0).map((e) => e.ts / 1000).sort((a, b) => a - b);
  const shown = presented.slice(1).map((t, i) => t - presented[i]);
  const viewsPerSecond = rec.views.length / ((last.t - rec.t0) / 1000);
  console.log(`${name} (${where}), batch ${batch}${process.env.BENCH_SET ? `, ${process.env.BENCH_SET}` : ""}, ${SECONDS} s:`);
  console.log(`  ${rate.toFixed(0)} examples/s; ${viewsPerSecond.toFixed(1)} views/s (embedding of 2,000 test images, digit, prior samples)`);
  for (const q of [0.6, 0.7, 0.8]) {
    const r = reached[q];
    console.log(r ? `  10-NN accuracy >= ${100 * q}% ${r.seconds.toFixed(1)} s after start, at step ${r.steps}` : `  10-NN accuracy >= ${100 * q}%: not within ${SECONDS} s`);
  }
  console.log(`  last view: 10-NN accuracy ${(100 * knn(last.mu, labels)).toFixed(1)}% at step ${last.steps}`);
  console.log(`  animation-frame intervals while training: p50 ${pct(intervals, 0.5).toFixed(1)} ms, p95 ${pct(intervals, 0.95).toFixed(1)} ms (${intervals.length} frames)`);
  if (shown.length) console.log(`  presented-frame intervals (Chrome's trace): p50 ${pct(shown, 0.5).toFixed(1)} ms, p95 ${pct(shown, 0.95).toFixed(1)} ms (${shown.length} frames)`);
}

for (const name of ["CPU", "WebGPU"]) if (!only || only === name) await run(name);
server.close();
