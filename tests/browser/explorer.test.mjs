// The explorer page in a real browser: Debian's Chromium driven by playwright-core, with
// WebGPU (SwiftShader, `--enable-unsafe-webgpu`) and without it (the CPU fallback).
// Run by `npm test` after `npm run build`; needs /usr/bin/chromium (tests/setup.sh installs it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { chromium } from "playwright-core";
import { serve } from "../../www/serve.mjs";

const fixtures = new URL("../fixtures/", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const BASE_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

let server, base, tmp;
before(async () => {
  server = await serve(0);
  base = `http://127.0.0.1:${server.address().port}/`;
  tmp = mkdtempSync(join(tmpdir(), "latent-explorer-browser-"));
});
after(() => server?.close());

/** Opens the page in a fresh browser; returns { browser, page, errors }. */
async function open({ webgpu, query = "" }) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: webgpu ? [...BASE_ARGS, "--enable-unsafe-webgpu"] : BASE_ARGS,
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + query);
  await page.waitForFunction(() => document.body.dataset.ready === "true", null, { timeout: 60000 });
  return { browser, page, errors };
}

/** The digit canvas as 784 grey levels in [0, 1], and the z it claims to show. */
async function shownDigit(page) {
  return page.evaluate(() => {
    const c = document.querySelector('[data-testid="digit"]');
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const px = [];
    for (let i = 0; i < d.length; i += 4) px.push(d[i] / 255);
    return { z: c.dataset.z.split(",").map(Number), px };
  });
}

async function waitForIdle(page) {
  await page.waitForFunction(() => !window.explorer.state.decoding && !window.explorer.state.pendingZ);
}

/** The digit shown must be the CPU reference decode of the z it shows, within 2/255. */
async function assertDigitMatchesReference(page) {
  await waitForIdle(page);
  const { z, px } = await shownDigit(page);
  const ref = await page.evaluate((z) => Array.from(window.explorer.decodeCpu(z)), z);
  assert.equal(px.length, ref.length);
  const worst = Math.max(...px.map((v, i) => Math.abs(v - ref[i])));
  assert.ok(worst <= 2 / 255 + 1e-9, `digit differs from the CPU reference by ${worst * 255}/255 at z=${z}`);
  return { z, px };
}

/** Drags the point from one plane position to another (fractions of the plane's size). */
async function drag(page, from, to) {
  const box = await page.locator('[data-testid="latent-plane"]').boundingBox();
  const at = ([fx, fy]) => [box.x + fx * box.width, box.y + fy * box.height];
  await page.mouse.move(...at(from));
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) {
    const f = [from[0] + ((to[0] - from[0]) * i) / 10, from[1] + ((to[1] - from[1]) * i) / 10];
    await page.mouse.move(...at(f));
  }
  await page.mouse.up();
  await waitForIdle(page);
}

async function checkDragging(page) {
  await drag(page, [0.3, 0.3], [0.3, 0.31]);
  const a = await assertDigitMatchesReference(page);
  await drag(page, [0.3, 0.3], [0.75, 0.7]);
  const b = await assertDigitMatchesReference(page);
  assert.notDeepEqual(a.z, b.z, "dragging did not move z");
  const changed = a.px.filter((v, i) => Math.abs(v - b.px[i]) > 0.2).length;
  assert.ok(changed > 30, `the digit barely changed (${changed} pixels)`);
  // Keyboard: arrow keys move the point.
  await page.locator('[data-testid="latent-point"]').focus();
  await page.keyboard.press("ArrowRight");
  await waitForIdle(page);
  const c = await assertDigitMatchesReference(page);
  assert.ok(Math.abs(c.z[0] - b.z[0] - 0.05) < 1e-4, `ArrowRight moved z from ${b.z} to ${c.z}`);
}

async function checkUpload(page) {
  // Test-set image 0 (a 7), photographed large, dark on light: the point must land where the
  // model's own embedding puts test image 0.
  await page.locator('[data-testid="upload"]').setInputFiles(join(fixtures, "digit-7-test0.png"));
  await page.waitForFunction(() => window.explorer.state.sigma !== null);
  await waitForIdle(page);
  const [z, expected] = await page.evaluate(() => [window.explorer.state.z, Array.from(window.explorer.state.explorer.embeddingMu().slice(0, 2))]);
  const dist = Math.hypot(z[0] - expected[0], z[1] - expected[1]);
  assert.ok(dist < 0.2, `upload put the point at ${z}, the encoder puts test image 0 at ${expected}`);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="samples"] canvas').length === 16);
  await assertDigitMatchesReference(page);
}

async function checkDrawing(page) {
  await page.click("#clear");
  const box = await page.locator('[data-testid="draw-pad"]').boundingBox();
  // A "1": one vertical stroke, drawn with the mouse.
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
  await page.mouse.down();
  for (let i = 1; i <= 12; i++) await page.mouse.move(box.x + box.width * (0.5 - 0.01 * i / 12), box.y + box.height * (0.15 + 0.7 * i / 12));
  await page.mouse.up();
  const before = await page.evaluate(() => window.explorer.state.z.slice());
  await page.click('[data-testid="encode"]');
  await page.waitForFunction((b) => window.explorer.state.z[0] !== b[0] || window.explorer.state.z[1] !== b[1], before);
  await waitForIdle(page);
  const { sigma } = await page.evaluate(() => ({ sigma: window.explorer.state.sigma }));
  assert.ok(sigma && sigma[0] > 0 && sigma[0] < 2, `sigma ${sigma}`);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="samples"] canvas').length === 16);
  // The reconstruction of a "1" has ink.
  const { px } = await assertDigitMatchesReference(page);
  assert.ok(px.filter((v) => v > 0.5).length > 20, "the reconstruction is blank");
}

async function errorText(page) {
  await page.waitForSelector('[data-testid="error"]:not([hidden])');
  return page.locator('[data-testid="error"]').innerText();
}

/** A grey PNG of w x h pixels, all white (compresses to almost nothing). */
function whitePng(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (buf) => { let c = 0xffffffff; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 0;
  const raw = Buffer.alloc((w + 1) * h, 255);
  for (let y = 0; y < h; y++) raw[y * (w + 1)] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

for (const webgpu of [true, false]) {
  const name = webgpu ? "with WebGPU" : "without WebGPU (CPU fallback)";

  test(`${name}: backend, dragging, upload and drawing`, { timeout: 300000 }, async () => {
    const { browser, page, errors } = await open({ webgpu });
    try {
      const backend = await page.locator('[data-testid="backend"]').innerText();
      if (webgpu) {
        assert.match(backend, /WebGPU/, backend);
      } else {
        assert.match(backend, /CPU/, backend);
        assert.ok(await page.locator("#notice").isVisible(), "no sentence saying WebGPU is unavailable");
      }
      await checkDragging(page);
      await checkUpload(page);
      await checkDrawing(page);
      if (webgpu) await page.screenshot({ path: join(tmp, "explorer.png"), fullPage: true });
      assert.deepEqual(errors, [], `console errors: ${errors.join("\n")}`);
    } finally {
      await browser.close();
    }
  });
}

test("?backend=cpu forces the CPU even with WebGPU", { timeout: 120000 }, async () => {
  const { browser, page } = await open({ webgpu: true, query: "?backend=cpu" });
  try {
    assert.match(await page.locator('[data-testid="backend"]').innerText(), /CPU/);
    await assertDigitMatchesReference(page);
  } finally {
    await browser.close();
  }
});

test("bad input gets a clear message, and the page keeps working", { timeout: 300000 }, async () => {
  const { browser, page } = await open({ webgpu: false });
  try {
    const notImage = join(tmp, "notes.txt");
    writeFileSync(notImage, "this is not a picture");
    await page.locator('[data-testid="upload"]').setInputFiles(notImage);
    assert.match(await errorText(page), /not an image/);

    await page.click("#clear");
    await page.click('[data-testid="encode"]');
    assert.match(await errorText(page), /no ink|empty/i);

    const huge = join(tmp, "huge.png");
    writeFileSync(huge, whitePng(10000, 10000));
    await page.locator('[data-testid="upload"]').setInputFiles(huge);
    assert.match(await errorText(page), /10000 × 10000 pixels, too large/);

    const corrupt = join(tmp, "corrupt.safetensors");
    writeFileSync(corrupt, readFileSync(new URL("../../www/models/mnist-2d.safetensors", import.meta.url)).subarray(0, 5000));
    await page.locator('[data-testid="model-file"]').setInputFiles(corrupt);
    assert.match(await errorText(page), /cannot be used.*(truncated|safetensors)/i);

    // A well-formed file whose tensors do not match their architecture.
    const header = JSON.stringify({ __metadata__: { architecture: JSON.stringify({ input: 784, encoder_hidden: [8], latent: 2, decoder_hidden: [8], hidden_activation: "relu", output_activation: "sigmoid" }) }, "encoder.0.weight": { dtype: "F32", shape: [3, 3], data_offsets: [0, 36] } });
    const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(header.length));
    const mismatched = join(tmp, "mismatched.safetensors");
    writeFileSync(mismatched, Buffer.concat([len, Buffer.from(header), Buffer.alloc(36)]));
    await page.locator('[data-testid="model-file"]').setInputFiles(mismatched);
    assert.match(await errorText(page), /encoder\.0\.weight.*shape/);

    // After all that, the shipped model still answers.
    await drag(page, [0.5, 0.5], [0.6, 0.4]);
    await assertDigitMatchesReference(page);
  } finally {
    await browser.close();
  }
});

after(async () => {
  // The screenshot of the page in use, for the README (kept outside git unless copied).
  if (process.env.SAVE_SCREENSHOT) {
    writeFileSync(process.env.SAVE_SCREENSHOT, readFileSync(join(tmp, "explorer.png")));
  }
});
