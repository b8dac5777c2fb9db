// The Train panel in Chromium, on WebGPU (SwiftShader) and on the CPU fallback (its Web Worker):
// from a fixed seed, steps on a small training subset make the loss fall and the plane move;
// pause stops the steps; beta moves the KL weight the engine uses; reset restores the initial
// weights; the saved file holds the page's weights bit for bit, loads in `manifold`, and matches
// the native session's steps (`bin/session`) within the GPU trainer's tolerances. Bad data and a
// lost GPU device are handled.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { servePage, openPage } from "./page.mjs";
import { loadModel } from "./reference.mjs";

const site = servePage();
// A small training subset (500 images, from run.sh) stands in for the shipped 10,000.
const SUBSET = process.env.TRAIN_SUBSET;
const BIN = process.env.RELEASE_BIN ?? "target/release";
const STEPS = 200;
const BATCH = "32";

/** Opens the page with the training data routed to the small subset (or `data` bytes). */
async function openTrain(backend, data = readFileSync(SUBSET)) {
  const p = await openPage(site, { webgpu: backend === "webgpu" });
  let fetched = 0;
  await p.page.route("**/data/train-mnist.safetensors.gz", (route) => { fetched++; route.fulfill({ body: data, contentType: "application/octet-stream" }); });
  await p.page.waitForTimeout(300);
  assert.equal(fetched, 0, "no training data is fetched before the panel is opened");
  await p.page.click('[data-testid="train-panel"]');
  await idle(p.page);
  await p.page.selectOption('[data-testid="train-backend"]', backend);
  await p.page.selectOption('[data-testid="train-batch"]', BATCH);
  await idle(p.page);
  return p;
}

/** Waits until the panel is not setting a run up. */
async function idle(page) {
  await page.waitForTimeout(50);
  await page.waitForFunction(() => { const T = window.explorer.train.state; return !T.busy && (T.run || T.failed); }, null, { timeout: 120000 });
}

const progress = (page) => page.evaluate(() => {
  const p = document.querySelector('[data-testid="train-progress"]');
  return { steps: Number(p.dataset.steps), loss: Number(p.dataset.loss) };
});
const params = (page) => page.evaluate(async () => Array.from(await window.explorer.train.params()));
const mu = (page) => page.evaluate(() => Array.from(window.explorer.train.state.mu));

/** The file's parameters in the model's flat order (PyTorch names), as float32. */
function fileParams(path) {
  const { arch, tensors } = loadModel(path);
  const layers = [...arch.encoder_hidden.map((_, i) => `encoder.${i}`), "encoder.mu", ...(arch.kind === "vae" ? ["encoder.logvar"] : []),
    ...arch.decoder_hidden.map((_, i) => `decoder.${i}`), "decoder.out"];
  return { arch, flat: Float32Array.from(layers.flatMap((l) => [...tensors[`${l}.weight`], ...tensors[`${l}.bias`]])), layers, tensors };
}

/** ||a - b|| / ||b|| per tensor of two loaded models, the worst. */
function worstTensor(a, b) {
  let worst = [0, ""];
  for (const [name, t] of Object.entries(b.tensors)) {
    let d = 0, n = 0;
    t.forEach((v, i) => { d += (a.tensors[name][i] - v) ** 2; n += v * v; });
    const rel = Math.sqrt(d / n);
    if (!(rel <= worst[0])) worst = [rel, name];
  }
  return worst;
}

async function trainAndCheck(backend) {
  const { browser, page, errors } = await openTrain(backend);
  try {
    const where = await page.textContent('[data-testid="train-progress"]');
    assert.match(await page.textContent('[data-testid="train-note"]'), backend === "webgpu" ? /WebGPU/ : /CPU/);
    const initial = await params(page), mu0 = await mu(page);
    const views0 = await page.evaluate(() => window.explorer.train.state.views);

    // STEPS steps from the fixed seed, then the run pauses itself.
    await page.evaluate((n) => window.explorer.train.stopAt(n), STEPS);
    await page.click('[data-testid="train-start"]');
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid="train-progress"]').dataset.steps) === n
      && !window.explorer.train.state.run.running, STEPS, { timeout: 240000 });
    const history = await page.evaluate(() => window.explorer.train.state.history.map((h) => h.loss));
    assert.equal(history.length, STEPS, `one loss per step (${where})`);
    const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const [first, last] = [mean(history.slice(0, 10)), mean(history.slice(-10))];
    assert.ok(last < first - 100, `the loss falls: ${first.toFixed(1)} over the first 10 steps, ${last.toFixed(1)} over the last 10`);
    assert.equal((await progress(page)).loss.toFixed(2), history[STEPS - 1].toFixed(2), "data-loss is the latest -ELBO per example");

    // The scatter was redrawn from a changed embedding.
    const mu1 = await mu(page);
    const moved = mean(mu1.map((v, i) => Math.abs(v - mu0[i])));
    assert.ok(moved > 0.05, `the embedding moved by ${moved} on average`);
    assert.ok(await page.evaluate((v) => window.explorer.train.state.views > v + 1, views0), "the plane was redrawn while training ran");

    // The saved file: the page's weights bit for bit; it loads in manifold, which decodes
    // what the page decodes.
    const inPage = Float32Array.from(await params(page));
    const dir = mkdtempSync(join(tmpdir(), "train-test-"));
    const [download] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="train-save"]')]);
    const saved = join(dir, "page.safetensors");
    await download.saveAs(saved);
    const file = fileParams(saved);
    assert.equal(file.flat.length, inPage.length);
    const differ = new Uint32Array(file.flat.buffer).filter((bits, i) => bits !== new Uint32Array(inPage.buffer)[i]).length;
    assert.equal(differ, 0, `${differ} weights in the file differ from the page's`);
    const png = join(dir, "digit.png");
    execFileSync(`${BIN}/manifold`, ["--model", saved, "--backend", "cpu", "--z", "0.5,-0.5", "--out", png]);
    assert.ok(readFileSync(png).length > 100, "manifold drew a digit from the saved model");

    // The native session's steps from the same settings and data, on the same kind of backend.
    const native = join(dir, "native.safetensors");
    execFileSync(`${BIN}/session`, ["--data", SUBSET, "--backend", backend === "webgpu" ? "gpu" : "cpu", "--hidden", "small",
      "--lr", "0.003", "--batch-size", BATCH, "--seed", "1", "--steps", String(STEPS), "--out", native], { env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" } });
    const [rel, name] = worstTensor(loadModel(saved), loadModel(native));
    console.log(`${backend}: worst tensor against the native session after ${STEPS} steps: ${name} ${rel.toExponential(2)}`);
    assert.ok(rel < 1e-3, `${name} differs from the native session's by ${rel} (relative L2)`);

    // Pause stops the step count.
    await page.evaluate(() => window.explorer.train.stopAt(Infinity));
    await page.click('[data-testid="train-start"]');
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid="train-progress"]').dataset.steps) > n + 2, STEPS, { timeout: 120000 });
    await page.click('[data-testid="train-pause"]');
    await page.waitForFunction(() => !window.explorer.train.state.run.running, null, { timeout: 60000 });
    const paused = (await progress(page)).steps;
    await page.waitForTimeout(1500);
    assert.equal((await progress(page)).steps, paused, "no step after pause");

    // Beta: the engine's KL weight follows the slider.
    assert.ok(Math.abs(await page.evaluate(() => window.explorer.train.klWeight()) - 1) < 1e-5);
    await page.locator('[data-testid="train-beta"]').fill("3.5");
    // (waitForFunction would take the predicate's Promise as truthy: poll from here instead.)
    let kl = null;
    for (let i = 0; i < 100 && !(Math.abs(kl - 3.5) < 1e-5); i++) {
      kl = await page.evaluate(() => window.explorer.train.klWeight());
      if (!(Math.abs(kl - 3.5) < 1e-5)) await page.waitForTimeout(100);
    }
    assert.ok(Math.abs(kl - 3.5) < 1e-5, `the engine's KL weight is ${kl} after moving beta to 3.5`);

    // Reset: the initial weights of the seed again.
    await page.click('[data-testid="train-reset"]');
    await idle(page);
    const again = await params(page);
    assert.equal(again.length, initial.length);
    assert.ok(again.every((v, i) => Object.is(v, initial[i])), "reset restores the initial weights");
    assert.equal((await progress(page)).steps, 0);

    // "use in the explorer": the explorer switches to the model trained here.
    if (backend === "cpu") {
      await page.evaluate((n) => window.explorer.train.stopAt(n), 20);
      await page.click('[data-testid="train-start"]');
      await page.waitForFunction(() => window.explorer.train.state.steps === 20 && !window.explorer.train.state.run.running, null, { timeout: 60000 });
      await page.click('[data-testid="train-use"]');
      await page.waitForFunction(() => /latent-explorer page/.test(window.explorer.state.explorer.metadata().trainer ?? ""), null, { timeout: 60000 });
      const shown = await page.evaluate(() => ({ n: window.explorer.state.embedding.labels.length, inPage: window.explorer.state.embedding.inPage }));
      assert.deepEqual(shown, { n: 2000, inPage: true }, "the explorer's plane shows the test subset encoded with the new model");
    }

    // Fashion-MNIST: its own training data (the shipped subset), its classes in the legend.
    if (backend === "cpu") {
      await page.selectOption('[data-testid="train-data"]', "fashion-mnist");
      await idle(page);
      assert.match(await page.textContent("#train-legend"), /T-shirt\/top.*Ankle boot/);
      await page.evaluate(() => window.explorer.train.stopAt(5));
      await page.click('[data-testid="train-start"]');
      await page.waitForFunction(() => window.explorer.train.state.steps === 5 && !window.explorer.train.state.run.running, null, { timeout: 60000 });
      assert.match(await page.textContent('[data-testid="train-progress"]'), /epoch 0\.02/, "5 steps of 32 are 0.016 of the 10,000-image epoch");
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
}

test("training on WebGPU (SwiftShader): the loss falls, the plane moves, the saved model is the page's and the native GPU session's", () => trainAndCheck("webgpu"));

test("training on the CPU fallback in a worker: the same, against the native CPU session", () => trainAndCheck("cpu"));

test("a corrupt training data file gives a clear message and nothing starts", async () => {
  const bytes = readFileSync(SUBSET);
  const corrupt = Buffer.concat([bytes.subarray(0, 100), Buffer.alloc(64, 7)]);
  const { browser, page } = await openTrain("cpu", corrupt);
  try {
    const note = await page.textContent('[data-testid="train-note"]');
    assert.match(note, /The training data file data\/train-mnist\.safetensors\.gz cannot be used: corrupt gzip stream/);
    assert.ok(await page.locator('[data-testid="train-start"]').isDisabled(), "start is disabled");
  } finally {
    await browser.close();
  }
});

test("a GPU device lost mid-training pauses and continues on the CPU from the last weights", async () => {
  const { browser, page } = await openTrain("webgpu");
  try {
    // Lost after a view drawn during training (each view reads the weights back first).
    const views = await page.evaluate(() => window.explorer.train.state.views);
    await page.click('[data-testid="train-start"]');
    await page.waitForFunction((v) => window.explorer.train.state.views > v + 1 && window.explorer.train.state.steps > 3, views, { timeout: 120000 });
    await page.evaluate(() => window.explorer.train.loseDevice());
    await page.locator('[data-testid="train-continue-cpu"]').waitFor({ state: "visible", timeout: 60000 });
    assert.match(await page.textContent('[data-testid="train-note"]'), /GPU device was lost, so training paused/);
    const snapshot = await page.evaluate(async () => (await window.explorer.train.state.run.t.snapshot()).position.steps);
    await page.click('[data-testid="train-continue-cpu"]');
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid="train-progress"]').dataset.steps) > n + 20, snapshot, { timeout: 60000 });
    assert.match(await page.textContent('[data-testid="train-progress"]'), /on the CPU/);
    assert.ok(snapshot > 0, "the CPU continued from weights read back after some steps");
  } finally {
    await browser.close();
  }
});
