// The explorer page in a real browser: Debian's Chromium driven by playwright-core, with
// WebGPU (SwiftShader, see chromium.mjs) and without it (the CPU fallback, for each reason the
// page may have to fall back, with the sentence it shows for it). SwiftShader is a software
// adapter that decodes a digit more slowly than the CPU path, so left to choose the page keeps the
// CPU ("cpu-faster"); the tests of the GPU path ask for it with ?backend=webgpu.
// Run by `npm test` after `npm run build`; needs /usr/bin/chromium (tests/setup.sh installs it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { serve } from "../../www/serve.mjs";
import { loadModel, decode } from "./reference.mjs";
import { openPage, shownDigit, waitForIdle } from "./page.mjs";

const fixtures = new URL("../fixtures/", import.meta.url).pathname;

let server, base, tmp;
before(async () => {
  server = await serve(0);
  base = `http://127.0.0.1:${server.address().port}/`;
  tmp = mkdtempSync(join(tmpdir(), "latent-explorer-browser-"));
});
after(() => server?.close());

const open = (options) => openPage(base, options);

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

/** The optional manifold backdrop: a grid of decoded digits behind the points. */
async function checkManifold(page) {
  const brightness = () => page.evaluate(() => {
    const c = document.querySelector('[data-testid="latent-plane"]');
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
    return sum / (d.length / 4) / 765;
  });
  const before = await brightness();
  await page.locator('[data-testid="manifold"]').check();
  await page.waitForFunction(() => window.explorer.state.manifold?.explorer === window.explorer.state.explorer);
  const after = await brightness();
  assert.ok(after < before - 0.02, `the plane did not darken with the manifold behind it (${before} -> ${after})`);
  // Each cell is the decode of the centre of its cell of the plane, checked for a few cells
  // against an independent decoder (tests/browser/reference.mjs: plain JavaScript in float64),
  // so the check holds the CPU fallback, which computes with the Rust CPU reference, too.
  const cells = [0, 57, 300, 575];
  const { z, pixels, range, grid } = await page.evaluate((cells) => {
    const m = window.explorer.state.manifold, d = window.explorer.state.latent, n = 784;
    return {
      z: cells.map((c) => Array.from(m.z.slice(c * d, (c + 1) * d))),
      pixels: cells.map((c) => Array.from(m.pixels.slice(c * n, (c + 1) * n))),
      range: m.range,
      grid: Math.round(Math.sqrt(m.z.length / d)),
    };
  }, cells);
  const model = loadModel(new URL("../../www/models/mnist-2d.safetensors", import.meta.url).pathname);
  let worst = 0;
  cells.forEach((c, k) => {
    const [i, j] = [Math.floor(c / grid), c % grid];
    const centre = [-range + ((j + 0.5) * 2 * range) / grid, range - ((i + 0.5) * 2 * range) / grid];
    assert.ok(Math.abs(z[k][0] - centre[0]) < 1e-5 && Math.abs(z[k][1] - centre[1]) < 1e-5, `cell ${c} decodes z = ${z[k]}, not its centre ${centre}`);
    const ref = decode(model, centre);
    for (let p = 0; p < 784; p++) worst = Math.max(worst, Math.abs(ref[p] - pixels[k][p]));
  });
  assert.ok(worst < 1e-4, `manifold cells differ from the independent decode by ${worst}`);
}

// The notice's sentence for each reason the page runs on the CPU (CPU_REASONS in www/js/status.js).
const REASONS = {
  "no-webgpu": /^This browser has no WebGPU, so the explorer runs on the CPU instead; everything still works\.$/,
  "no-adapter": /^This browser has WebGPU but offered no GPU to use, so the explorer runs on the CPU instead; everything still works\.$/,
  "device-lost": /^The GPU stopped responding \(its device was lost\), so the explorer now runs on the CPU; everything still works\.$/,
  "requested-cpu": /^You asked for the CPU with \?backend=cpu, so the explorer runs on the CPU; everything works just the same\.$/,
  "gpu-failed": /^The GPU ran into an error, so the explorer now runs on the CPU; everything still works\.$/,
  "cpu-faster": /^Here the CPU draws digits faster than this browser's GPU adapter, so the explorer uses the CPU; add \?backend=webgpu to the address to use the GPU anyway\.$/,
};

/** Where the page says it runs. With a `cause` (a key of REASONS): the notice shows that
 * cause's sentence, the technical detail behind a "details" disclosure, and the sampling heading
 * says the CPU. Without: no notice, and sampling on the GPU. Returns the detail text. */
async function checkWhereItRuns(page, cause) {
  const where = await page.locator('[data-testid="sampling-where"]').getAttribute("data-where");
  const notice = page.locator('[data-testid="gpu-notice"]');
  const details = page.locator('[data-testid="gpu-notice-details"]');
  if (!cause) {
    assert.ok(!(await notice.isVisible()) && !(await details.isVisible()), `a notice although the GPU is in use: ${await notice.innerText()}`);
    assert.equal(where, "GPU", "the sampling heading should say the GPU");
    return null;
  }
  assert.ok(await notice.isVisible(), `no notice saying why the page runs on the CPU (${cause})`);
  const sentence = await notice.innerText();
  assert.match(sentence, REASONS[cause]);
  assert.doesNotMatch(sentence, /not compiled in/, "wgpu's internal list in the sentence");
  assert.equal(where, "CPU", "the sampling heading should say the CPU");
  assert.ok(await details.isVisible(), "no details disclosure");
  const summary = details.locator("summary");
  assert.equal(await summary.innerText(), "details");
  const pre = details.locator("pre");
  assert.ok(!(await pre.isVisible()), "the technical detail should be hidden until asked for");
  await summary.click();
  const detail = await pre.innerText();
  assert.ok(detail.startsWith(`${cause}: `) && detail.length > cause.length + 5, `detail: ${detail}`);
  await summary.click(); // closed again
  return detail;
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
  const name = webgpu ? "with WebGPU" : "WebGPU with no adapter (CPU fallback)";

  test(`${name}: backend, dragging, upload and drawing`, { timeout: 300000 }, async () => {
    const { browser, page, errors } = await open({ webgpu, query: webgpu ? "?backend=webgpu" : "" });
    try {
      const backend = await page.locator('[data-testid="backend"]').innerText();
      if (webgpu) {
        assert.match(backend, /WebGPU/, backend);
        assert.match(backend, /drawn on the GPU/, "the digit should be drawn by the GPU, with no readback");
      } else {
        assert.match(backend, /CPU/, backend);
        assert.match(await checkWhereItRuns(page, "no-adapter"), /adapter/);
      }
      if (webgpu) await checkWhereItRuns(page, null);
      await checkDragging(page);
      await checkUpload(page);
      await checkDrawing(page);
      await checkManifold(page);
      await checkWhereItRuns(page, webgpu ? null : "no-adapter");
      if (webgpu) await page.screenshot({ path: join(tmp, "explorer.png"), fullPage: true });
      assert.deepEqual(errors, [], `console errors: ${errors.join("\n")}`);
    } finally {
      await browser.close();
    }
  });
}

test("a lost GPU device is replaced, or the page falls back to the CPU, without a reload", { timeout: 300000 }, async () => {
  const { browser, page, errors } = await open({ webgpu: true, query: "?backend=webgpu" });
  try {
    await checkWhereItRuns(page, null);
    // The device goes away (as in a driver reset); the next drag gets a new device.
    await page.evaluate(() => window.explorer.loseGpu(true));
    await drag(page, [0.4, 0.4], [0.6, 0.55]);
    await assertDigitMatchesReference(page);
    let backend = await page.locator('[data-testid="backend"]').innerText();
    assert.match(backend, /WebGPU.*recovered from 1 lost GPU device/, backend);
    assert.match(backend, /drawn on the GPU/, backend);
    await checkWhereItRuns(page, null);
    // Lost again with no new device to be had: the CPU takes over, and says so.
    await page.evaluate(() => window.explorer.loseGpu(false));
    await drag(page, [0.6, 0.55], [0.35, 0.7]);
    await assertDigitMatchesReference(page);
    backend = await page.locator('[data-testid="backend"]').innerText();
    assert.match(backend, /backend: CPU/, backend);
    assert.match(await checkWhereItRuns(page, "device-lost"), /lost/);
    await drag(page, [0.35, 0.7], [0.7, 0.3]);
    await assertDigitMatchesReference(page);
    // Encoding and sampling still work on the CPU.
    await page.locator('[data-testid="upload"]').setInputFiles(join(fixtures, "digit-7-test0.png"));
    await page.waitForFunction(() => window.explorer.state.sigma !== null);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="samples"] canvas').length === 16);
    assert.deepEqual(errors.filter((e) => !/lost|destroy/i.test(e)), [], `console errors: ${errors.join("\n")}`);
  } finally {
    await browser.close();
  }
});

test("a model trained with `train` loads through the file picker and drives the page", { timeout: 300000 }, async () => {
  // tests/run.sh trains it (784-64-32-(2), 2 epochs on 2048 images) before these tests.
  const small = process.env.SMALL_MODEL ?? new URL("../../target/browser-test/small.safetensors", import.meta.url).pathname;
  assert.ok(existsSync(small), `${small} is missing: run the browser tests through tests/run.sh (npm test), which trains it`);
  const { browser, page, errors } = await open({ webgpu: true, query: "?backend=webgpu" });
  try {
    await page.locator('[data-testid="model-file"]').setInputFiles(small);
    await page.waitForFunction(() => JSON.parse(window.explorer.state.explorer.metadata().architecture).encoder_hidden.join() === "64,32");
    await page.waitForFunction(() => !window.explorer.state.gpuStarting);
    const backend = await page.locator('[data-testid="backend"]').innerText();
    assert.match(backend, /WebGPU.*drawn on the GPU/, backend);
    // The plane shows the new model's own embedding of the test set.
    assert.equal(await page.evaluate(() => window.explorer.state.explorer.embeddingLabels().length), 10000);
    await drag(page, [0.35, 0.35], [0.65, 0.6]);
    await assertDigitMatchesReference(page); // decodeCpu is the loaded model's CPU reference
    assert.deepEqual(errors, [], `console errors: ${errors.join("\n")}`);
  } finally {
    await browser.close();
  }
});

test("left to choose, the page keeps the CPU, which draws a digit faster than SwiftShader, and says why", { timeout: 300000 }, async () => {
  const { browser, page, errors } = await open({ webgpu: true });
  try {
    const times = await page.evaluate(() => window.explorer.state.explorer.decodeTimes());
    assert.ok(times && times.cpuMs < times.gpuMs, `decode times ${JSON.stringify(times)}`);
    console.log(`single-point decode under SwiftShader: GPU ${times.gpuMs.toFixed(1)} ms, CPU ${times.cpuMs.toFixed(1)} ms`);
    const backend = await page.locator('[data-testid="backend"]').innerText();
    assert.match(backend, /^backend: CPU, faster here than the GPU \(\d+\.\d ms a digit, the GPU \d+\.\d ms\)/, backend);
    assert.doesNotMatch(backend, /drawn on the GPU/, backend);
    const detail = await checkWhereItRuns(page, "cpu-faster");
    assert.match(detail, /^cpu-faster: the GPU adapter \(.*WebGPU.*\) decoded a digit in \d+\.\d ms, the CPU in \d+\.\d ms$/, detail);
    await checkDragging(page);
    await checkWhereItRuns(page, "cpu-faster");
    assert.deepEqual(errors, [], `console errors: ${errors.join("\n")}`);
  } finally {
    await browser.close();
  }
});

test("?backend=cpu forces the CPU even with WebGPU", { timeout: 120000 }, async () => {
  const { browser, page } = await open({ webgpu: true, query: "?backend=cpu" });
  try {
    assert.match(await page.locator('[data-testid="backend"]').innerText(), /CPU/);
    await checkWhereItRuns(page, "requested-cpu");
    await assertDigitMatchesReference(page);
  } finally {
    await browser.close();
  }
});

test("a browser with no WebGPU at all says so, and everything runs on the CPU", { timeout: 120000 }, async () => {
  // WebGPU's flags are on, but navigator.gpu is gone before the page's scripts run: the page
  // must notice its absence itself, not read it from whatever the adapter request says.
  const { browser, page, errors } = await open({ webgpu: true, init: () => { delete Navigator.prototype.gpu; } });
  try {
    assert.equal(await page.evaluate(() => "gpu" in navigator), false);
    assert.match(await page.locator('[data-testid="backend"]').innerText(), /backend: CPU/);
    assert.match(await checkWhereItRuns(page, "no-webgpu"), /navigator\.gpu/);
    await page.click("#resample");
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="samples"] canvas').length === 16);
    await drag(page, [0.4, 0.4], [0.6, 0.55]);
    await assertDigitMatchesReference(page);
    await checkWhereItRuns(page, "no-webgpu");
    assert.deepEqual(errors, [], `console errors: ${errors.join("\n")}`);
  } finally {
    await browser.close();
  }
});

/** A valid model file (safetensors, f32) of architecture `arch` with small finite weights. */
function modelFile(arch) {
  const layers = [];
  let n = arch.input;
  arch.encoder_hidden.forEach((h, i) => { layers.push([`encoder.${i}`, h, n]); n = h; });
  layers.push(["encoder.mu", arch.latent, n], ["encoder.logvar", arch.latent, n]);
  n = arch.latent;
  arch.decoder_hidden.forEach((h, i) => { layers.push([`decoder.${i}`, h, n]); n = h; });
  layers.push(["decoder.out", arch.input, n]);
  const header = { __metadata__: { architecture: JSON.stringify(arch) } };
  const blobs = [];
  let offset = 0;
  for (const [name, out, inp] of layers) {
    for (const [suffix, shape] of [["weight", [out, inp]], ["bias", [out]]]) {
      const count = shape.reduce((a, b) => a * b, 1);
      const data = Buffer.alloc(4 * count);
      for (let i = 0; i < count; i++) data.writeFloatLE(0.01 * ((i % 7) - 3), 4 * i);
      header[`${name}.${suffix}`] = { dtype: "F32", shape, data_offsets: [offset, offset + data.length] };
      blobs.push(data);
      offset += data.length;
    }
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...blobs]);
}

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
    assert.match(await errorText(page), /10,000 × 10,000 pixels, too large/);

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

    // A valid model with a 1-D latent space: refused with a clear message (the plane needs two
    // dimensions; larger latents load, see panels.test.mjs), the shipped model kept.
    const file = join(tmp, "latent-1.safetensors");
    writeFileSync(file, modelFile({ input: 784, encoder_hidden: [4], latent: 1, decoder_hidden: [4], hidden_activation: "relu", output_activation: "sigmoid" }));
    await page.locator('[data-testid="model-file"]').setInputFiles(file);
    assert.match(await errorText(page), /a 1-dimensional latent/);
    assert.equal(await page.evaluate(() => window.explorer.state.latent), 2);

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
