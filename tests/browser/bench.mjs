// Browser benchmark (prints numbers; not a test), per backend, in headless Chromium:
// - drag-to-presentation latency over 200 pointer moves, p50 and p95, from Chrome's own trace:
//   from the move's input timestamp to the presentation of the first frame that carries its digit
//   (tests/browser/trace.mjs says how a move is matched to its frame). The moves come one at a
//   time, each a random 0-16.7 ms after the last digit's frame, so they land at random phases of
//   the frame. Exits non-zero when fewer than 90% of the moves are matched to a frame;
// - where that time goes (medians): event to digit drawn (dispatch, decode, draw), to the start of
//   the next rendering update, and from there to the screen (commit, composite, present);
// - the page's own estimate beside it: event to the start of the next animation frame (its
//   status line shows it live);
// - time from navigation to the first decoded digit (the page starts on the CPU), and to the
//   first digit drawn by WebGPU once it has started;
// - compare mode on the CPU: the same drag with a second model decoding each z too, measured to
//   the frame that shows the first model's digit and to the one that shows the second's (its own
//   mark, DIGIT_2_MARK). The second model is the shipped plain autoencoder when it is there (same
//   layers), else the shipped VAE again.
// Run: `npm run bench:browser [-- CPU|WebGPU]` (builds first); `node tests/browser/bench.mjs` alone
// does not build. BENCH_TRACE=PREFIX keeps each backend's trace events in PREFIX-<backend>.json.
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";
import { CHROMIUM, BASE_ARGS, WEBGPU_ARGS } from "./chromium.mjs";
import { existsSync } from "node:fs";
import { traced, matchMoves, DIGIT_MARK, DIGIT_2_MARK } from "./trace.mjs";

const server = await serve(0);
const base = `http://127.0.0.1:${server.address().port}/`;
const pct = (xs, q) => xs.slice().sort((a, b) => a - b)[Math.round((xs.length - 1) * q)];
const MOVES = 200;
const FRAME_MS = 1000 / 60;
const median = (xs) => pct(xs, 0.5);
const p50p95 = (xs) => `p50 ${pct(xs, 0.5).toFixed(1)} ms, p95 ${pct(xs, 0.95).toFixed(1)} ms`;
// Waits `ms` (fractional): a timer for the whole milliseconds, then a spin for the rest.
async function sleep(ms) {
  const end = performance.now() + ms;
  await new Promise((r) => setTimeout(r, Math.max(0, Math.floor(ms) - 1)));
  while (performance.now() < end) { /* spin */ }
}
let failed = false;

const only = process.argv[2];
// WebGPU asked for by name: left to choose, the page keeps the CPU, faster than SwiftShader.
const runs = [["WebGPU (SwiftShader)", WEBGPU_ARGS, "&backend=webgpu"], ["CPU (wasm)", [], ""], ["CPU compare mode (wasm)", [], "", true]];
const SECOND = ["mnist-2d-ae.safetensors", "mnist-2d.safetensors"].find((f) => existsSync(new URL(`../../www/models/${f}`, import.meta.url)));
for (const [label, args, query, compare] of runs.filter(([l]) => !only || l.startsWith(only))) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...args] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const firstDigit = [], gpuDigit = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    await page.goto(base + `?r=${i}${query}`);
    await page.waitForFunction(() => document.body.dataset.ready === "true", null, { polling: 5, timeout: 60000 });
    firstDigit.push(Date.now() - t0);
    await page.waitForFunction(() => !window.explorer.state.gpuStarting && !window.explorer.state.decoding, null, { polling: 5, timeout: 60000 });
    if (await page.evaluate(() => window.explorer.state.digitOnGpu)) gpuDigit.push(Date.now() - t0);
  }
  const backend = await page.locator('[data-testid="backend"]').innerText();
  if (compare) {
    await page.locator('[data-testid="compare"]').check();
    await page.locator('[data-testid="model-select-2"]').selectOption(SECOND);
    await page.waitForFunction((f) => window.explorer.state.second.explorer && document.querySelector('[data-testid="model-select-2"]').value === f
      && !window.explorer.state.second.decoding, SECOND, { timeout: 60000 });
  }
  const box = await page.locator('[data-testid="latent-plane"]').boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
  await page.mouse.down();
  await page.waitForFunction(() => !window.explorer.state.decoding && window.explorer.state.latencies.length, null, { polling: "raf" });
  await page.evaluate(() => { const s = window.explorer.state; s.latencies.length = 0; s.work = []; if (s.second) s.second.latencies.length = 0; });
  // Each move's digits shown: the first model's, and in compare mode the second's too.
  const shown = (n) => { const s = window.explorer.state; return s.latencies.length >= n && (!s.compareRun || s.second.latencies.length >= n); };
  await page.evaluate((c) => { window.explorer.state.compareRun = c; }, !!compare);
  const cdp = await page.context().newCDPSession(page);
  const events = await traced(cdp, async () => {
    for (let i = 0; i < MOVES; i++) {
      const f = 0.3 + 0.4 * ((i * 37) % 200) / 200;
      await page.mouse.move(box.x + box.width * f, box.y + box.height * (1 - f));
      // One move at a time: wait until its digit is drawn and the next frame has started and
      // ended, then a random fraction of a frame, so that the next move lands at a random phase.
      await page.waitForFunction(shown, i + 1, { polling: "raf" });
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
      await sleep(Math.random() * FRAME_MS);
    }
    // The last frame's presentation, on SwiftShader tens of ms later, before the trace ends.
    await sleep(500);
  });
  await page.mouse.up();
  if (process.env.BENCH_TRACE) writeFileSync(`${process.env.BENCH_TRACE}-${label.split(" ")[0]}${compare ? "-compare" : ""}.json`, JSON.stringify(events));
  const latencies = await page.evaluate(() => window.explorer.state.latencies.slice());
  console.log(`${label}: ${backend}${compare ? ` · second model ${SECOND}` : ""}`);
  for (const mark of compare ? [DIGIT_MARK, DIGIT_2_MARK] : [DIGIT_MARK]) {
    const { inputs, marks, moves } = matchMoves(events, mark);
    if (compare) console.log(`  ${mark === DIGIT_MARK ? "the first model's digit" : "the second model's digit"}:`);
    if (moves.length < 0.9 * MOVES) {
      console.error(`  FAILED: only ${moves.length} of ${MOVES} moves matched to a presented frame in the trace ` +
        `(${inputs} InputLatency::MouseMove, ${marks} "${mark}" marks, ${events.length} events); no figures printed`);
      failed = true;
    } else {
      const col = (k) => moves.map((m) => m[k]);
      const agree = moves.filter((m) => m.pipelineAgrees).length;
      console.log(`  drag to presentation (Chrome's trace), ${moves.length} of ${MOVES} moves matched: ${p50p95(col("latency"))}`);
      console.log(`    medians: event to digit drawn ${median(col("work")).toFixed(1)} ms, to the rendering update ${median(col("toRender")).toFixed(1)} ms, ` +
        `update to presentation ${median(col("toScreen")).toFixed(1)} ms; PipelineReporter ends at the same presentation for ${agree} of ${moves.length}`);
    }
  }
  console.log(`  page's own estimate (event to the next frame's start, over ${latencies.length} digits): ${p50p95(latencies)}`);
  console.log(`  navigation to first decoded digit: median ${pct(firstDigit, 0.5)} ms (of ${firstDigit.length} loads)`);
  if (gpuDigit.length) console.log(`  navigation to first digit drawn by the GPU (WebGPU started, shaders compiled): median ${pct(gpuDigit, 0.5)} ms`);
  await browser.close();
}
server.close();
if (failed) process.exit(1);
