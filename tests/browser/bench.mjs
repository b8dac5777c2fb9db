// Browser benchmark (prints numbers; not a test), per backend, in headless Chromium:
// - drag-to-pixels latency over 200 pointer moves, p50 and p95: from the pointer event's
//   timestamp to the start of the animation frame that first shows the new digit (recorded by
//   the page itself: a requestAnimationFrame callback queued once the digit is drawn);
// - the part of it the explorer spends: from the event to the digit drawn (decode + draw);
// - time from navigation to the first decoded digit (the page starts on the CPU), and to the
//   first digit drawn by WebGPU once it has started.
// Run: `npm run bench:browser` (builds first).
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";
import { CHROMIUM, BASE_ARGS, WEBGPU_ARGS } from "./chromium.mjs";

const server = await serve(0);
const base = `http://127.0.0.1:${server.address().port}/`;
const pct = (xs, q) => xs.slice().sort((a, b) => a - b)[Math.round((xs.length - 1) * q)];
const MOVES = 200;

const only = process.argv[2];
// WebGPU asked for by name: left to choose, the page keeps the CPU, faster than SwiftShader.
const runs = [["WebGPU (SwiftShader)", WEBGPU_ARGS, "&backend=webgpu"], ["CPU (wasm)", [], ""]];
for (const [label, args, query] of runs.filter(([l]) => !only || l.startsWith(only))) {
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
  const box = await page.locator('[data-testid="latent-plane"]').boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
  await page.mouse.down();
  await page.evaluate(() => { window.explorer.state.latencies.length = 0; window.explorer.state.work = []; });
  for (let i = 0; i < MOVES; i++) {
    const f = 0.3 + 0.4 * ((i * 37) % 200) / 200;
    await page.mouse.move(box.x + box.width * f, box.y + box.height * (1 - f));
    // One move at a time: wait until its digit has been on screen for a frame.
    await page.waitForFunction((n) => window.explorer.state.latencies.length >= n, i + 1, { polling: "raf" });
  }
  await page.mouse.up();
  const { latencies, work } = await page.evaluate(() => ({ latencies: window.explorer.state.latencies.slice(), work: window.explorer.state.work.slice() }));
  console.log(`${label}: ${backend}`);
  console.log(`  drag-to-pixels latency over ${latencies.length} moves: p50 ${pct(latencies, 0.5).toFixed(1)} ms, p95 ${pct(latencies, 0.95).toFixed(1)} ms`);
  console.log(`  of which event to digit drawn (decode + draw): p50 ${pct(work, 0.5).toFixed(1)} ms, p95 ${pct(work, 0.95).toFixed(1)} ms`);
  console.log(`  navigation to first decoded digit: median ${pct(firstDigit, 0.5)} ms (of ${firstDigit.length} loads)`);
  if (gpuDigit.length) console.log(`  navigation to first digit drawn by the GPU (WebGPU started, shaders compiled): median ${pct(gpuDigit, 0.5)} ms`);
  await browser.close();
}
server.close();
