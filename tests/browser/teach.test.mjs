// What the page teaches, in a real browser (Chromium with WebGPU on SwiftShader, and on the CPU):
// the model menu, compare mode (two models decoding the same z), samples from the prior,
// interpolation, and the layout on a phone. Every decode the page shows is checked against
// tests/browser/reference.mjs, an independent decoder in plain JavaScript, and the prior's z's
// against an independent port of the sampler's generator (below).
// Run by `npm test` after `npm run build`, with SMALL_MODEL (a model from `train`, see run.sh).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { serve } from "../../www/serve.mjs";
import { loadModel, decode, normal } from "./reference.mjs";
import { openPage, shownDigit, waitForIdle } from "./page.mjs";

const SHIPPED = new URL("../../www/models/mnist-2d.safetensors", import.meta.url).pathname;
const SMALL = process.env.SMALL_MODEL ?? new URL("../../target/browser-test/small.safetensors", import.meta.url).pathname;
const TOLERANCE = 2 / 255 + 1e-9;

let server, base;
before(async () => {
  server = await serve(0);
  base = `http://127.0.0.1:${server.address().port}/`;
});
after(() => server?.close());

/** The largest difference between pixel lists `a` and `b`. */
const worst = (a, b) => {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
};

/** The grey levels of the canvases in `selector` (painted by the page's 2D path), one list each,
 * with the z each claims (data-z). */
function canvases(page, selector) {
  return page.evaluate((selector) => [...document.querySelectorAll(selector)].map((c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    return { z: c.dataset.z.split(",").map(Number), px: Array.from({ length: d.length / 4 }, (_, i) => d[4 * i] / 255) };
  }), selector);
}

/** Drags on plane `testid` from one position to another (fractions of its size). */
async function drag(page, testid, from, to) {
  // A screenshot of an element below the fold scrolls the page: bring the plane back into view.
  await page.locator(`[data-testid="${testid}"]`).scrollIntoViewIfNeeded();
  const box = await page.locator(`[data-testid="${testid}"]`).boundingBox();
  const at = ([fx, fy]) => [box.x + fx * box.width, box.y + fy * box.height];
  await page.mouse.move(...at(from));
  await page.mouse.down();
  for (let i = 1; i <= 8; i++) await page.mouse.move(...at(from.map((f, k) => f + ((to[k] - f) * i) / 8)));
  await page.mouse.up();
  await waitForIdle(page);
}

/** Both digits show the same z, each its own model's decode of it (within 2/255). */
async function assertBothDigits(page, first, second) {
  await waitForIdle(page);
  const a = await shownDigit(page, "digit"), b = await shownDigit(page, "digit-2");
  assert.deepEqual(a.z, b.z, "the two digits show different z's");
  const e1 = worst(a.px, decode(first, a.z)), e2 = worst(b.px, decode(second, b.z));
  assert.ok(e1 <= TOLERANCE, `the first digit differs from its model's decode by ${e1 * 255}/255 at z=${a.z}`);
  assert.ok(e2 <= TOLERANCE, `the second digit differs from its model's decode by ${e2 * 255}/255 at z=${b.z}`);
  return a.z;
}

/** Compare mode with the shipped model and SMALL_MODEL (through the second menu's "load your
 * own"): drags on either plane decode the same z with both models. */
async function checkCompare(page, first, second) {
  await page.locator('[data-testid="compare"]').check();
  await page.locator('[data-testid="model-file-2"]').setInputFiles(SMALL);
  await page.waitForFunction(() => window.explorer.state.second.title.endsWith(".safetensors"));
  await drag(page, "latent-plane", [0.3, 0.3], [0.7, 0.4]);
  const z1 = await assertBothDigits(page, first, second);
  await drag(page, "latent-plane-2", [0.6, 0.6], [0.35, 0.7]);
  const z2 = await assertBothDigits(page, first, second);
  assert.notDeepEqual(z1, z2, "dragging on the second plane did not move the point");
  // Each plane's figures beside it, from its own file.
  const elbo = (path) => Number(readMeta(path).test_neg_elbo).toFixed(1);
  assert.match(await page.locator('[data-testid="figures"]').innerText(), new RegExp(`−ELBO\\s+${elbo(SHIPPED)} nats`));
  assert.match(await page.locator('[data-testid="figures-2"]').innerText(), new RegExp(`−ELBO\\s+${elbo(SMALL)} nats`));
  // The second plane's own manifold backdrop: its cells are the second model's decodes.
  await page.locator('[data-testid="manifold-2"]').check();
  await page.waitForFunction(() => window.explorer.state.second.manifold?.explorer === window.explorer.state.second.explorer);
  const m = await page.evaluate(() => {
    const { manifold, range } = window.explorer.state.second;
    return { range, z: Array.from(manifold.z), cells: [0, 100, 300].map((c) => Array.from(manifold.pixels.slice(c * 784, (c + 1) * 784))) };
  });
  const grid = Math.round(Math.sqrt(m.z.length / 2));
  [0, 100, 300].forEach((c, k) => {
    const centre = [-m.range + (((c % grid) + 0.5) * 2 * m.range) / grid, m.range - ((Math.floor(c / grid) + 0.5) * 2 * m.range) / grid];
    const e = worst(m.cells[k], decode(second, centre));
    assert.ok(e <= TOLERANCE, `second manifold cell ${c} differs from the second model's decode of ${centre} by ${e * 255}/255`);
  });
  // Drawn on the second plane, the point is where the pointer left it: z from that plane's range.
  const [range, box] = [await page.evaluate(() => window.explorer.state.second.range), await page.locator('[data-testid="latent-plane-2"]').boundingBox()];
  const expected = [(0.35 * 2 - 1) * range, (1 - 0.7 * 2) * range];
  assert.ok(Math.hypot(z2[0] - expected[0], z2[1] - expected[1]) < (3 * range) / box.width, `z ${z2}, expected about ${expected}`);
}

/** Samples from the prior: the first press draws with seed 1, "again" with seed 2; the z's are
 * the sampler's (checked against the port above), the same on both planes, and each grid holds
 * its model's decodes of them. */
async function checkPrior(page, first, second) {
  for (const [button, seed] of [["prior-samples", 1], ["prior-again", 2]]) {
    const before = await page.evaluate(() => window.explorer.state.prior);
    await page.click(`[data-testid="${button}"]`);
    await page.waitForFunction((b) => window.explorer.state.prior && window.explorer.state.prior !== b
      && document.querySelectorAll('[data-testid="prior-grid-2"] canvas').length === 16, before);
    const prior = await page.evaluate(() => window.explorer.state.prior);
    assert.equal(prior.seed, seed);
    const expected = Array.from({ length: 16 }, (_, j) => [normal(seed, j, 0), normal(seed, j, 1)]);
    const off = Math.max(...expected.flatMap((z, j) => z.map((v, k) => Math.abs(v - prior.z[j][k]))));
    assert.ok(off < 1e-4, `seed ${seed}: the prior's z's differ from the sampler's by ${off}`);
    for (const [testid, model] of [["prior-grid", first], ["prior-grid-2", second]]) {
      const cells = await canvases(page, `[data-testid="${testid}"] canvas`);
      cells.forEach((c, j) => {
        const e = worst(c.px, decode(model, expected[j]));
        assert.ok(e <= TOLERANCE, `${testid} cell ${j} differs from the decode of z=${expected[j]} by ${e * 255}/255`);
      });
    }
    const text = await page.locator('[data-testid="prior-text"]').innerText();
    assert.match(text, /^16 draws z ~ N\(0, I\), the same for every model shown/);
  }
}

/** Interpolation between two clicked points: at least 10 frames, linear in z, the end frames the
 * decodes of the ends, for both models; the point travels to the far end, through the frames. */
async function checkInterpolation(page, first, second) {
  await page.click('[data-testid="interpolate"]');
  // Clicking the button scrolled the page: the plane back into view, then where it is.
  await page.locator('[data-testid="latent-plane"]').scrollIntoViewIfNeeded();
  const box = await page.locator('[data-testid="latent-plane"]').boundingBox();
  const range = await page.evaluate(() => window.explorer.state.range);
  const ends = [[0.2, 0.25], [0.8, 0.7]];
  const zOf = ([fx, fy]) => [(fx * 2 - 1) * range, (1 - fy * 2) * range];
  // A mid frame's z seen as the point's: it travels.
  const passed = page.waitForFunction(() => {
    const s = window.explorer.state, f = s.interpolation?.z;
    return f && s.z[0] === f[5][0] && s.z[1] === f[5][1];
  }, null, { polling: "raf", timeout: 30000 });
  for (const e of ends) await page.mouse.click(box.x + e[0] * box.width, box.y + e[1] * box.height);
  await passed;
  await page.waitForFunction(() => {
    const s = window.explorer.state, f = s.interpolation.z, b = f[f.length - 1];
    return s.z[0] === b[0] && s.z[1] === b[1];
  }, null, { timeout: 30000 });
  const [a, b] = ends.map(zOf);
  for (const [testid, model] of [["interpolation", first], ["interpolation-2", second]]) {
    const frames = await canvases(page, `[data-testid="${testid}"] canvas`);
    const n = frames.length;
    assert.ok(n >= 10, `${testid}: ${n} frames`);
    frames.forEach((f, i) => {
      const want = a.map((v, k) => v + ((b[k] - v) * i) / (n - 1));
      assert.ok(Math.hypot(f.z[0] - want[0], f.z[1] - want[1]) < (3 * range) / box.width, `${testid} frame ${i} at z=${f.z}, not ${want}`);
    });
    for (const i of [0, n - 1]) {
      const e = worst(frames[i].px, decode(model, frames[i].z));
      assert.ok(e <= TOLERANCE, `${testid}: end frame ${i} differs from the decode of its z by ${e * 255}/255`);
    }
    assert.deepEqual(frames[n - 1].z, await page.evaluate(() => window.explorer.state.z));
  }
  await assertBothDigits(page, first, second);
}

/** With prefers-reduced-motion the point goes straight to the far end; the ends here are the
 * last two encoded uploads ("between the last two encodings"). */
async function checkReducedMotionFromEncodings(page) {
  await page.emulateMedia({ reducedMotion: "reduce" });
  const encoded = [];
  for (const name of ["digit-7-test0.png", "digit-0-test3.png"]) {
    const before = await page.evaluate(() => window.explorer.state.z.slice());
    await page.locator('[data-testid="upload"]').setInputFiles(new URL(`../fixtures/${name}`, import.meta.url).pathname);
    await page.waitForFunction((b) => window.explorer.state.sigma && (window.explorer.state.z[0] !== b[0] || window.explorer.state.z[1] !== b[1]), before);
    encoded.push(await page.evaluate(() => window.explorer.state.z.slice()));
  }
  await waitForIdle(page);
  // Every z the point is moved to from now on.
  await page.evaluate(() => { window.visited = []; window.explorer.state.onMove.push((z) => window.visited.push(z.slice())); });
  const before = await page.evaluate(() => window.explorer.state.interpolation);
  await page.click('[data-testid="interpolate-encoded"]');
  await page.waitForFunction((b) => window.explorer.state.interpolation !== b, before);
  await waitForIdle(page);
  const { interpolation, visited } = await page.evaluate(() => ({ interpolation: window.explorer.state.interpolation, visited: window.visited }));
  assert.deepEqual([interpolation.a, interpolation.b], encoded, "the ends are not the last two encodings");
  assert.deepEqual(visited, [encoded[1]], "with reduced motion the point should go straight to the far end");
}

for (const webgpu of [true, false]) {
  test(`compare mode, prior samples and interpolation decode what they claim (${webgpu ? "WebGPU" : "CPU"})`, { timeout: 300000 }, async () => {
    const { browser, page, errors } = await openPage(base, { webgpu, query: webgpu ? "?backend=webgpu" : "" });
    try {
      const first = loadModel(SHIPPED), second = loadModel(SMALL);
      if (webgpu) assert.ok(await page.evaluate(() => window.explorer.state.digitOnGpu), "WebGPU did not take over the digit");
      await checkCompare(page, first, second);
      // With WebGPU, the second model's batches (the prior's sampler, the strip) run there too.
      if (webgpu) await page.waitForFunction(() => window.explorer.state.second.explorer.usesGpu() && window.explorer.state.explorer.usesGpu(), null, { timeout: 60000 });
      await checkPrior(page, first, second);
      await checkInterpolation(page, first, second);
      if (!webgpu) await checkReducedMotionFromEncodings(page);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
}

test("the model menu lists the manifest, loads a model with its figures, and names a missing one", { timeout: 120000 }, async () => {
  const { browser, page, errors } = await openPage(base, { webgpu: false });
  try {
    const manifest = JSON.parse(readFileSync(new URL("../../www/models/models.json", import.meta.url), "utf8"));
    const values = await page.locator('[data-testid="model-select"] option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(values.slice(0, -1), manifest.models.map((m) => m.file));
    assert.match(await page.locator('[data-testid="figures"]').innerText(), /reconstruction \(BCE\)\s+128\.6 nats per image/);
    // A listed model the server lacks: a sentence naming it; the page keeps its model.
    const [missing, other] = manifest.models.slice(1);
    await page.route(`**/models/${missing.file}`, (r) => r.fulfill({ status: 404, body: "not found" }));
    await page.locator('[data-testid="model-select"]').selectOption(missing.file);
    await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
    assert.match(await page.locator('[data-testid="error"]').innerText(), new RegExp(`The model “${missing.title.replace(/[()]/g, "\\$&")}” \\(models/${missing.file}\\) is not on this server`));
    assert.equal(await page.locator('[data-testid="model-select"]').inputValue(), "mnist-2d.safetensors");
    // Another listed model (served here as SMALL_MODEL) becomes the page's, figures and all.
    await page.route(`**/models/${other.file}`, (r) => r.fulfill({ status: 200, body: readFileSync(SMALL) }));
    await page.locator('[data-testid="model-select"]').selectOption(other.file);
    await page.waitForFunction(() => window.explorer.state.explorer.metadata().test_neg_elbo !== "135.9108");
    await waitForIdle(page);
    const small = loadModel(SMALL);
    const { z, px } = await shownDigit(page);
    assert.ok(worst(px, decode(small, z)) <= TOLERANCE, "the digit is not the new model's decode");
    const elbo = Number(readMeta(SMALL).test_neg_elbo);
    assert.match(await page.locator('[data-testid="figures"]').innerText(), new RegExp(`−ELBO\\s+${elbo.toFixed(1)} nats`));
    // "load your own" opens the file picker; the file chosen becomes the page's model.
    const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.locator('[data-testid="model-select"]').selectOption("__own__")]);
    await chooser.setFiles(SMALL);
    await page.waitForFunction(() => document.querySelector('[data-testid="model-select"]').selectedOptions[0]?.text === "your file: small.safetensors");
    // Class names for the legend: the metadata's dataset.classes, else the digits.
    const names = await page.evaluate(async () => {
      const { classNames } = await import("./js/meta.js");
      return [classNames({ dataset: JSON.stringify({ name: "fashion-mnist", classes: ["T-shirt/top", "Trouser"] }) }), classNames({ dataset: "{}" })];
    });
    assert.deepEqual(names, [["T-shirt/top", "Trouser"], ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]]);
    // The words for a model without a KL term, from its metadata.
    const rows = await page.evaluate(async () => (await import("./js/meta.js")).figureRows({
      kind: "ae", test_mse: "26.7509", codes_in_prior: "0.457", prior_share_by_class: "[0.012,0.009,0.129,0.184,0.046,0.155,0.226,0.019,0.195,0.025]",
    }));
    assert.deepEqual(rows, [
      ["model", "plain autoencoder"],
      ["reconstruction (squared error)", "26.8 per image"],
      ["KL", "no KL: a plain autoencoder"],
      ["codes in the prior", "45.7% of test-set codes lie where 99% of the prior's draws fall"],
      ["prior's draws by class", "fewest nearest “1” (0.9%), most nearest “6” (22.6%)"],
    ]);
    assert.deepEqual(errors.filter((e) => !/404/.test(e)), []);
  } finally {
    await browser.close();
  }
});

/** A model file's metadata (strings), read here directly. */
function readMeta(path) {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")).__metadata__;
}

/** Every element laid out on the page lies within the viewport's width. */
async function assertFitsWidth(page, what) {
  const { width, scroll, wide } = await page.evaluate(() => ({
    width: document.documentElement.clientWidth,
    scroll: document.documentElement.scrollWidth,
    wide: [...document.querySelectorAll("body *")].map((e) => [e, e.getBoundingClientRect()])
      .filter(([, r]) => r.width > 0 && (r.left < -0.5 || r.right > document.documentElement.clientWidth + 0.5))
      .map(([e, r]) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""} ${r.left.toFixed(0)}..${r.right.toFixed(0)}`),
  }));
  assert.deepEqual(wide, [], `${what}: elements outside the ${width} px viewport`);
  assert.ok(scroll <= width, `${what}: the page is ${scroll} px wide on a ${width} px viewport`);
}

test("on a phone (412 x 915, touch) nothing is wider than the screen, compare stacks the planes, and a touch drag moves the point", { timeout: 180000 }, async () => {
  const context = { viewport: { width: 412, height: 915 }, isMobile: true, hasTouch: true };
  const { browser, page, errors } = await openPage(base, { webgpu: false, context });
  try {
    await assertFitsWidth(page, "the page");
    // The CPU notice (no adapter here) stays compact: well under a fifth of the first screen.
    const notice = await page.locator("#notice").boundingBox();
    assert.ok(notice && notice.height < 915 / 5, `the notice is ${notice?.height} px tall`);
    // A touch drag on the plane, through the DevTools protocol's touch events.
    const box = await page.locator('[data-testid="latent-plane"]').boundingBox();
    const cdp = await page.context().newCDPSession(page);
    const touch = (type, fx, fy) => cdp.send("Input.dispatchTouchEvent", {
      type, touchPoints: type === "touchEnd" ? [] : [{ x: box.x + fx * box.width, y: box.y + fy * box.height }],
    });
    // Started off the point (at the centre), so the plane's own touch-action counts.
    await touch("touchStart", 0.4, 0.45);
    for (let i = 1; i <= 8; i++) await touch("touchMove", 0.4 + 0.04 * i, 0.45 + 0.03 * i);
    await touch("touchEnd");
    await waitForIdle(page);
    const range = await page.evaluate(() => window.explorer.state.range);
    const { z, px } = await shownDigit(page);
    const expected = [(0.72 * 2 - 1) * range, (1 - 0.69 * 2) * range];
    assert.ok(Math.hypot(z[0] - expected[0], z[1] - expected[1]) < (3 * range) / box.width, `touch drag left z at ${z}, expected ${expected}`);
    assert.ok(worst(px, decode(loadModel(SHIPPED), z)) <= TOLERANCE, "the digit is not the decode of the touched z");
    // Compare mode: the planes stacked, still within the screen.
    await page.locator('[data-testid="compare"]').check();
    await page.locator('[data-testid="model-file-2"]').setInputFiles(SMALL);
    await page.waitForFunction(() => window.explorer.state.second.title.endsWith(".safetensors"));
    await waitForIdle(page);
    await assertFitsWidth(page, "compare mode");
    const [p1, p2] = [await page.locator('[data-testid="latent-plane"]').boundingBox(), await page.locator('[data-testid="latent-plane-2"]').boundingBox()];
    assert.ok(p2.y >= p1.y + p1.height, `the second plane (top ${p2.y}) is not below the first (bottom ${p1.y + p1.height})`);
    assert.deepEqual(errors.filter((e) => !/404/.test(e)), []);
  } finally {
    await browser.close();
  }
});
