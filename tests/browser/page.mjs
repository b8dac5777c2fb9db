// What the browser test files share: opening the page in a fresh Chromium, waiting until it is
// idle, and reading a digit off the screen.
import { before, after } from "node:test";
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";
import { CHROMIUM, BASE_ARGS, WEBGPU_ARGS } from "./chromium.mjs";

/** Serves www/ for the calling test file; `site.base` is its address once the tests run. */
export function servePage() {
  const site = { base: null };
  let server;
  before(async () => {
    server = await serve(0);
    site.base = `http://127.0.0.1:${server.address().port}/`;
  });
  after(() => server?.close());
  return site;
}

/** Opens the page served at `target` (an address, or a `servePage()` site) in a fresh browser;
 * returns { browser, page, errors }. Without `webgpu` Chromium has `navigator.gpu` but offers no
 * adapter; `init` runs in the page before its scripts; `height` is the viewport's; `context` adds
 * to the page's options (a phone's viewport, touch). */
export async function openPage(target, { webgpu, query = "", init, context = {}, height = 1000 }) {
  const base = typeof target === "string" ? target : target.base;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: webgpu ? [...BASE_ARGS, ...WEBGPU_ARGS] : BASE_ARGS,
  });
  const page = await browser.newPage({ viewport: { width: 1400, height }, ...context });
  if (init) await page.addInitScript(init);
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + query);
  await page.waitForFunction(() => document.body.dataset.ready === "true", null, { timeout: 60000 });
  // The page starts on the CPU; wait until WebGPU has taken over (or failed to).
  await page.waitForFunction(() => !window.explorer.state.gpuStarting, null, { timeout: 60000 });
  await waitForIdle(page);
  return { browser, page, errors };
}

/** The digit `testid` as shown on screen (a screenshot of the element: the GPU draws it through
 * WebGPU, the CPU path through 2D), as one grey level in [0, 1] per model pixel, and the z it
 * claims. */
export async function shownDigit(page, testid = "digit") {
  const digit = page.locator(`[data-testid="${testid}"]`);
  const png = (await digit.screenshot()).toString("base64");
  return page.evaluate(async ([png, testid]) => {
    const img = new Image();
    img.src = `data:image/png;base64,${png}`;
    await img.decode();
    const side = window.explorer.state.side;
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    // The centre of each model pixel's square.
    const px = [];
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const sx = Math.floor(((x + 0.5) * c.width) / side), sy = Math.floor(((y + 0.5) * c.height) / side);
        px.push(d[4 * (sy * c.width + sx)] / 255);
      }
    }
    return { z: document.querySelector(`[data-testid="${testid}"]`).dataset.z.split(",").map(Number), px };
  }, [png, testid]);
}

/** Waits until no digit is being decoded, the second model's (compare mode) included, and the
 * last one has reached the screen. */
export async function waitForIdle(page) {
  await page.waitForFunction(() => {
    const s = window.explorer.state;
    return !s.decoding && !s.pendingZ && !s.second?.decoding && !s.second?.pendingZ;
  });
  // The GPU path is done once its draw is submitted (nothing is awaited per digit); what is on
  // screen changes at the next frames. Two animation frames later it shows the last digit.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}
