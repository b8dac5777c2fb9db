// The teaching panels in a real browser (Chromium with WebGPU on SwiftShader, and on the CPU):
// the live ELBO of a drawing, denoising and completion, a model with an 8-dimensional latent,
// and a model file without an embedding. Every figure the page shows is checked against
// tests/browser/reference.mjs, a float64 JavaScript model that shares no code with the page.
// Run by tests/run.sh after `bash www/build.sh`, which also trains the models used here.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { servePage, openPage, waitForIdle, shownDigit } from "./page.mjs";
import { loadModel, decode, encode, normal, elboTerms } from "./reference.mjs";

const root = new URL("../../", import.meta.url).pathname;
const fixtures = join(root, "tests/fixtures");
const SHIPPED = join(root, "www/models/mnist-2d.safetensors");
const SMALL = process.env.SMALL_MODEL ?? join(root, "target/browser-test/small.safetensors");
const LATENT8 = process.env.LATENT8_MODEL ?? join(root, "target/browser-test/latent8.safetensors");
// The documented constants of the panels (README, "Teaching panels"): the ELBO averages K draws
// of q(z|x) with a fixed seed; the noise has a fixed seed of its own.
const ELBO_K = 16, ELBO_SEED = 11, NOISE_SEED = 2024;

// Both backends: WebGPU asked for by name (SwiftShader is slower than the CPU, so left to choose
// the page would keep the CPU), and the CPU.
const BACKENDS = [{ name: "WebGPU", webgpu: true, query: "?backend=webgpu" }, { name: "CPU", webgpu: false, query: "?backend=cpu" }];

const site = servePage();
let tmp;
before(() => { tmp = mkdtempSync(join(tmpdir(), "latent-explorer-panels-")); });

async function open(backend) {
  const opened = await openPage(site, { ...backend, height: 1400 });
  if (backend.webgpu) assert.match(await opened.page.locator('[data-testid="backend"]').innerText(), /WebGPU/);
  return opened;
}

/** Intensities in [0, 1] of a 2D canvas the page painted grey (one model pixel per canvas
 * pixel), from its red channel or `channel`. */
function canvasGrey(page, testid, channel = 0) {
  return page.evaluate(([id, channel]) => {
    const c = document.querySelector(`[data-testid="${id}"]`);
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    return Array.from({ length: c.width * c.height }, (_, i) => d[4 * i + channel] / 255);
  }, [testid, channel]);
}

const worstDiff = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

/** Draws a "7" on the pad with the mouse (two strokes). */
async function drawSeven(page) {
  await page.click("#clear");
  const box = await page.locator('[data-testid="draw-pad"]').boundingBox();
  const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
  const stroke = async (from, to) => {
    await page.mouse.move(...at(...from));
    await page.mouse.down();
    for (let i = 1; i <= 10; i++) await page.mouse.move(...at(from[0] + ((to[0] - from[0]) * i) / 10, from[1] + ((to[1] - from[1]) * i) / 10));
    await page.mouse.up();
  };
  await stroke([0.25, 0.2], [0.75, 0.2]);
  await stroke([0.75, 0.2], [0.45, 0.85]);
}

/** A model file's bytes rewritten: tensors for which `keep(name)` is false dropped, metadata
 * entries from `meta` set. Plain safetensors: 8-byte header length, JSON header, data. */
function editSafetensors(bytes, { keep = () => true, meta = {} }) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  const data = bytes.subarray(8 + n);
  const out = { __metadata__: { ...header.__metadata__, ...meta } }, parts = [];
  let offset = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__" || !keep(name)) continue;
    const part = data.subarray(t.data_offsets[0], t.data_offsets[1]);
    out[name] = { ...t, data_offsets: [offset, offset + part.length] };
    parts.push(part);
    offset += part.length;
  }
  const json = Buffer.from(JSON.stringify(out));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...parts]);
}

for (const backend of BACKENDS) {
  test(`the ELBO of a drawing, live and on encode, equals the reference's terms (${backend.name})`, { timeout: 300000 }, async () => {
    const model = loadModel(SHIPPED);
    const { browser, page, errors } = await open(backend);
    try {
      await drawSeven(page);
      // Updated while drawing, before any encode.
      await page.waitForFunction(() => document.querySelector('[data-testid="elbo"]').dataset.kl !== "");
      await page.click('[data-testid="encode"]');
      await page.waitForFunction(() => window.explorer.state.input !== null && window.explorer.state.sigma !== null);
      await waitForIdle(page);
      const { input, rec, kl, text } = await page.evaluate(() => {
        const el = document.querySelector('[data-testid="elbo"]');
        return { input: Array.from(window.explorer.state.input), rec: Number(el.dataset.reconstruction), kl: Number(el.dataset.kl), text: el.textContent };
      });
      const ref = elboTerms(model, input, ELBO_K, ELBO_SEED);
      assert.ok(Math.abs(rec - ref.reconstruction) < 0.01, `reconstruction ${rec} nats, the reference ${ref.reconstruction}`);
      assert.ok(Math.abs(kl - ref.kl) < 0.01, `KL ${kl} nats, the reference ${ref.kl}`);
      assert.match(text, new RegExp(`−ELBO ${(rec + kl).toFixed(2)} nats`));
      // The heat map: each pixel's error over the image's worst, white (0) to dark red (1); its
      // green channel is 1 minus that share.
      const green = await canvasGrey(page, "elbo-map", 1);
      const worst = Math.max(...ref.map);
      const off = worstDiff(green, ref.map.map((v) => 1 - v / worst));
      assert.ok(off <= 2 / 255, `the error map differs from the reference's by ${off * 255}/255`);
      // A model whose metadata says it is a plain autoencoder: the page shows no KL term.
      const ae = join(tmp, "ae.safetensors");
      writeFileSync(ae, editSafetensors(readFileSync(SMALL), { meta: { kind: "ae" } }));
      await page.locator('[data-testid="model-file"]').setInputFiles(ae);
      await page.waitForFunction(() => window.explorer.state.kind === "ae");
      await drawSeven(page);
      await page.click('[data-testid="encode"]');
      await page.waitForFunction(() => /No KL term/.test(document.querySelector('[data-testid="elbo"]').textContent));
      assert.equal(await page.locator('[data-testid="elbo"]').getAttribute("data-kl"), "");
      assert.deepEqual(errors, [], `console errors: ${errors.join("\n")}`);
    } finally {
      await browser.close();
    }
  });

  test(`noise and erasing give the documented corruption and its reconstruction (${backend.name})`, { timeout: 300000 }, async () => {
    const model = loadModel(SHIPPED);
    const { browser, page, errors } = await open(backend);
    try {
      await page.locator('[data-testid="upload"]').setInputFiles(join(fixtures, "digit-7-test0.png"));
      await page.waitForFunction(() => window.explorer.state.input !== null);
      const clean = await page.evaluate(() => Array.from(window.explorer.state.input));
      assert.ok(worstDiff(await canvasGrey(page, "clean"), clean) <= 0.5 / 255 + 1e-9, "the clean input is not shown");

      // Noise: pixel i becomes clamp(x_i + strength * normal(NOISE_SEED, 0, i), 0, 1).
      await page.evaluate(() => { const s = document.querySelector('[data-testid="noise-strength"]'); s.value = "0.4"; s.dispatchEvent(new Event("input")); });
      await page.click('[data-testid="noise"]');
      await page.waitForFunction(() => window.explorer.state.corruption?.how === "noise");
      const noisy = clean.map((x, i) => Math.min(1, Math.max(0, x + 0.4 * normal(NOISE_SEED, 0, i))));
      await checkCorruption(page, model, noisy, "noise");

      // Erasing by dragging a rectangle on the clean input: model pixels (5, 10) to (20, 18).
      const box = await page.locator('[data-testid="clean"]').boundingBox();
      const at = (col, row) => [box.x + ((col + 0.5) * box.width) / 28, box.y + ((row + 0.5) * box.height) / 28];
      await page.mouse.move(...at(5, 10));
      await page.mouse.down();
      await page.mouse.move(...at(12, 14));
      await page.mouse.move(...at(20, 18));
      await page.mouse.up();
      await page.waitForFunction(() => window.explorer.state.corruption?.how === "erase");
      const erased = clean.map((x, i) => (i % 28 >= 5 && i % 28 <= 20 && Math.floor(i / 28) >= 10 && Math.floor(i / 28) <= 18 ? 0 : x));
      await checkCorruption(page, model, erased, "drag");

      // The numeric fallback: columns 0 to 28 of rows 14 to 28, the lower half.
      await page.evaluate(() => {
        for (const [k, v] of Object.entries({ x0: 0, x1: 28, y0: 14, y1: 28 })) document.getElementById(`erase-${k}`).value = String(v);
        window.explorer.state.corruption = null;
      });
      await page.click('[data-testid="erase"]');
      await page.waitForFunction(() => window.explorer.state.corruption?.how === "erase");
      await checkCorruption(page, model, clean.map((x, i) => (i >= 14 * 28 ? 0 : x)), "fields");
      assert.deepEqual(errors, [], `console errors: ${errors.join("\n")}`);
    } finally {
      await browser.close();
    }
  });
}

/** The page's corrupted input equals `expected` (and is shown), and the reconstruction shown is
 * the reference decode of the reference encoder's mean of it, within 2/255 (plus rounding). */
async function checkCorruption(page, model, expected, what) {
  const corrupted = await page.evaluate(() => Array.from(window.explorer.state.corruption.corrupted));
  assert.ok(worstDiff(corrupted, expected) < 1e-5, `${what}: corrupted input off by ${worstDiff(corrupted, expected)}`);
  assert.ok(worstDiff(await canvasGrey(page, "corrupted"), expected) <= 0.5 / 255 + 1e-6, `${what}: the corrupted input shown differs`);
  const reconstruction = decode(model, encode(model, expected).mu);
  const shown = await canvasGrey(page, "corrupted-reconstruction");
  const worst = worstDiff(shown, reconstruction);
  assert.ok(worst <= 2.5 / 255, `${what}: the reconstruction shown differs from the reference by ${worst * 255}/255`);
}

test("a model with an 8-dimensional latent loads; its plane is the embedding's principal plane and its sliders move z", { timeout: 300000 }, async () => {
  assert.ok(existsSync(LATENT8), `${LATENT8} is missing: tests/run.sh trains it`);
  const model = loadModel(LATENT8);
  const { browser, page, errors } = await open(BACKENDS[0]);
  try {
    await page.locator('[data-testid="model-file"]').setInputFiles(LATENT8);
    await page.waitForFunction(() => window.explorer.state.latent === 8 && !window.explorer.state.gpuStarting);
    await waitForIdle(page);
    const sliders = page.locator('[data-testid="axes"] input[type="range"]');
    assert.equal(await sliders.count(), 6, "one slider per axis past the plane's two");
    const a = await shownDigit(page);
    assert.equal(a.z.length, 8, `data-z ${a.z}`);
    const point = () => page.locator('[data-testid="latent-point"]').getAttribute("style");
    const pointBefore = await point();
    // The third axis's slider from 0 to 1.5: z moves 1.5 along a unit axis, the point stays.
    await page.evaluate(() => { const s = document.querySelector('[data-testid="axis-3"]'); s.value = "1.5"; s.dispatchEvent(new Event("input")); });
    await waitForIdle(page);
    const b = await shownDigit(page);
    const step = b.z.map((v, i) => v - a.z[i]);
    assert.ok(Math.abs(Math.hypot(...step) - 1.5) < 1e-3, `z moved ${Math.hypot(...step)}, not 1.5`);
    assert.equal(await point(), pointBefore, "the point moved on the plane");
    for (const { z, px } of [a, b]) {
      const worst = worstDiff(px, decode(model, z));
      assert.ok(worst <= 2 / 255 + 1e-9, `the digit differs from the reference decode of its z by ${worst * 255}/255`);
    }
    assert.ok(a.px.some((v, i) => Math.abs(v - b.px[i]) > 0.05), "the digit did not change with the slider");
    // Dragging the point moves z across the plane, keeping the third axis's coordinate.
    const plane = await page.locator('[data-testid="latent-plane"]').boundingBox();
    await page.mouse.click(plane.x + plane.width * 0.3, plane.y + plane.height * 0.7);
    await waitForIdle(page);
    const c = await shownDigit(page);
    const move = c.z.map((v, i) => v - b.z[i]);
    const range = await page.evaluate(() => window.explorer.state.range);
    assert.ok(Math.hypot(...move) > 0.1 * range, "clicking the plane did not move z");
    const along = move.reduce((s, v, i) => s + (v * step[i]) / 1.5, 0);
    assert.ok(Math.abs(along) < 1e-3, `moving on the plane changed the third axis's coordinate by ${along}`);
    // The manifold backdrop is the decoder at the sliders' coordinates: letting a slider go redraws it.
    await page.locator('[data-testid="manifold"]').check();
    await page.waitForFunction(() => window.explorer.state.manifold?.rest === "1.5,0,0,0,0,0");
    await page.evaluate(() => { const s = document.querySelector('[data-testid="axis-4"]'); s.value = "-2"; s.dispatchEvent(new Event("input")); s.dispatchEvent(new Event("change")); });
    await page.waitForFunction(() => window.explorer.state.manifold?.rest === "1.5,-2,0,0,0,0", null, { timeout: 60000 });
    assert.ok(worstDiff(c.px, decode(model, c.z)) <= 2 / 255 + 1e-9);
    // The plane shows the embedding: many coloured points.
    const points = await colouredPixels(page);
    assert.ok(points > 1000, `the plane shows no embedding (${points} coloured pixels)`);
    assert.deepEqual(errors, [], `console errors: ${errors.join("\n")}`);
  } finally {
    await browser.close();
  }
});

/** Pixels of the plane coloured like the scatter (not grey, not white). */
function colouredPixels(page) {
  return page.evaluate(() => {
    const c = document.querySelector('[data-testid="latent-plane"]');
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 40) n++;
    return n;
  });
}

/** The shipped MNIST test subset's first `count` images as intensities in [0, 1]. */
function testsetImages(count) {
  const bytes = readFileSync(join(root, "www/models/testset-mnist.safetensors"));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  const t = header.images, data = bytes.subarray(8 + n);
  assert.equal(t.dtype, "U8");
  return Array.from({ length: count }, (_, k) => Array.from(data.subarray(t.data_offsets[0] + k * 784, t.data_offsets[0] + (k + 1) * 784), (v) => v / 255));
}

for (const backend of BACKENDS) {
  test(`a model without an embedding gets a plane: the shipped test subset, encoded in the page (${backend.name})`, { timeout: 300000 }, async () => {
    const file = join(tmp, "no-embedding.safetensors");
    writeFileSync(file, editSafetensors(readFileSync(SMALL), { keep: (name) => !name.startsWith("embedding.") }));
    const model = loadModel(file);
    const { browser, page, errors } = await open(backend);
    try {
      const shippedPoints = await colouredPixels(page);
      await page.locator('[data-testid="model-file"]').setInputFiles(file);
      await page.waitForFunction(() => window.explorer.state.embedding?.inPage === true && !window.explorer.state.gpuStarting);
      await waitForIdle(page);
      assert.match(await page.locator('[data-testid="backend"]').innerText(), /the plane is the shipped 2,000-image test subset, encoded in the page/);
      // Encoded on the GPU when the page has one.
      assert.equal(await page.evaluate(() => window.explorer.state.embedding.onGpu), backend.webgpu);
      const { mu, count } = await page.evaluate(() => ({ mu: Array.from(window.explorer.state.embedding.mu.slice(0, 6)), count: window.explorer.state.embedding.count }));
      assert.equal(count, 2000);
      // The first points are where the reference encoder puts the subset's first images.
      testsetImages(3).forEach((x, k) => {
        const ref = encode(model, x).mu;
        assert.ok(worstDiff(mu.slice(2 * k, 2 * k + 2), ref) < 1e-3, `point ${k}: ${mu.slice(2 * k, 2 * k + 2)}, the reference ${ref}`);
      });
      const points = await colouredPixels(page);
      assert.ok(points > 1000 && points !== shippedPoints, `the plane shows ${points} coloured pixels`);
      assert.deepEqual(errors, [], `console errors: ${errors.join("\n")}`);
    } finally {
      await browser.close();
    }
  });
}
