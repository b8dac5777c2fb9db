// Browser benchmark (prints numbers; not a test): drag-to-pixels latency, from the pointer
// event to the animation frame that shows the new digit, p50 and p95 over 200 moves, per
// backend; and the time from navigation to the first decoded digit.
// Run: `npm run build && node tests/browser/bench.mjs`.
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";

const server = await serve(0);
const base = `http://127.0.0.1:${server.address().port}/`;
const args = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const pct = (xs, q) => xs.slice().sort((a, b) => a - b)[Math.round((xs.length - 1) * q)];

for (const [label, extra] of [["WebGPU (SwiftShader)", ["--enable-unsafe-webgpu"]], ["CPU (wasm)", []]]) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: [...args, ...extra] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const firstDigit = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    await page.goto(base + `?r=${i}`);
    await page.waitForFunction(() => document.body.dataset.ready === "true", null, { polling: 5, timeout: 60000 });
    firstDigit.push(Date.now() - t0);
  }
  const backend = await page.locator('[data-testid="backend"]').innerText();
  const box = await page.locator('[data-testid="latent-plane"]').boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
  await page.mouse.down();
  const lat = [];
  for (let i = 0; i < 200; i++) {
    const f = 0.3 + 0.4 * ((i * 37) % 200) / 200;
    await page.mouse.move(box.x + box.width * f, box.y + box.height * (1 - f));
    lat.push(await page.evaluate(() => new Promise((resolve) => {
      const s = window.explorer.state;
      const wait = () => (s.decoding || s.pendingZ ? setTimeout(wait, 0) : requestAnimationFrame((t) => resolve(t - s.lastInputTime)));
      wait();
    })));
  }
  await page.mouse.up();
  console.log(`${label}: ${backend}`);
  console.log(`  drag-to-pixels latency over ${lat.length} moves: p50 ${pct(lat, 0.5).toFixed(1)} ms, p95 ${pct(lat, 0.95).toFixed(1)} ms`);
  console.log(`  navigation to first decoded digit: median ${pct(firstDigit, 0.5)} ms (of ${firstDigit.length} loads)`);
  await browser.close();
}
server.close();
