// The page in each of its languages, in Chromium: every string worded (no missing-key marker in
// the text, the attributes or the menus), nothing wider than its box, `<html lang>` set, a
// screenshot per language kept as an artefact (I18N_SHOTS, by default target/browser-test/i18n);
// no text that did not come from a catalogue (the pseudo-language ?lang=qps marks every message
// ⟪…⟫, so anything left unmarked was written somewhere else); and switching language in place:
// the model, the point and the drawing stay, and the choice is remembered. Run by tests/run.sh.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { servePage, openPage, waitForIdle } from "./page.mjs";

const site = servePage();
const SHOTS = process.env.I18N_SHOTS ?? new URL("../../target/browser-test/i18n", import.meta.url).pathname;
const LANGUAGES = ["en", "th", "zh-Hant", "ko", "pl", "vi"];
const CPU = { webgpu: false };

/** Opens everything that folds: the tour, the notice's details, the Train panel (which loads its
 * data and is ready once its note says so). */
async function unfold(page) {
  await page.evaluate(() => { for (const d of document.querySelectorAll("details")) d.open = true; });
  await page.click('[data-testid="train-panel"]');
  await page.waitForFunction(() => !document.querySelector('[data-testid="train-start"]').disabled);
}

/** What is wrong with the page as shown: missing-key markers (in the text, the title, attributes
 * a reader meets, the menus' options) and elements whose content is wider than their box. */
function problems(page) {
  return page.evaluate(() => {
    const out = [];
    const MARK = /⟦[^⟧]*⟧/;
    if (MARK.test(document.body.innerText)) out.push(`text: ${document.body.innerText.match(MARK)[0]}`);
    if (MARK.test(document.title)) out.push(`title: ${document.title}`);
    for (const el of document.querySelectorAll("*")) {
      for (const a of ["aria-label", "title", "aria-valuetext"]) {
        if (MARK.test(el.getAttribute(a) ?? "")) out.push(`${el.id || el.tagName} ${a}: ${el.getAttribute(a)}`);
      }
      if (el.tagName === "OPTION" && MARK.test(el.text)) out.push(`option: ${el.text}`);
    }
    // Overflow: content wider (or taller, for a box of fixed height) than the element that holds
    // it, where nothing scrolls or clips it on purpose.
    const name = (el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.dataset.i18n ? `[${el.dataset.i18n}]` : ""}`;
    for (const el of document.body.querySelectorAll("*")) {
      if (["CANVAS", "INPUT", "OPTION", "SCRIPT"].includes(el.tagName) || !el.getClientRects().length) continue;
      const style = getComputedStyle(el);
      if (style.display === "inline" || style.overflowX !== "visible") continue;
      if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) out.push(`${name(el)} overflows: ${el.scrollWidth} > ${el.clientWidth} px`);
    }
    // Buttons and menus size to their text unless squeezed: text wider than the control is cut.
    for (const el of document.querySelectorAll("button, select, .file-button")) {
      if (el.getClientRects().length && el.scrollWidth > el.clientWidth + 1) out.push(`${name(el)} cuts its text: ${el.scrollWidth} > ${el.clientWidth} px`);
    }
    // A menu shows its options' text cut to its own width: each must fit beside the arrow.
    const ctx = document.createElement("canvas").getContext("2d");
    for (const el of document.querySelectorAll("select")) {
      if (!el.getClientRects().length) continue;
      ctx.font = getComputedStyle(el).font;
      const widest = Math.max(0, ...[...el.options].map((o) => ctx.measureText(o.text).width));
      if (widest + 16 > el.clientWidth) out.push(`${name(el)} cuts its options: ${Math.ceil(widest)} px of text in ${el.clientWidth} px`);
    }
    const root = document.documentElement;
    if (root.scrollWidth > innerWidth) out.push(`the page scrolls sideways: ${root.scrollWidth} > ${innerWidth} px`);
    return out;
  });
}

for (const lang of LANGUAGES) {
  test(`the page in ${lang}: every string worded, nothing overflows its box`, { timeout: 180000 }, async (t) => {
    const { browser, page, errors } = await openPage(site, { ...CPU, query: `?lang=${lang}` });
    try {
      assert.equal(await page.evaluate(() => document.documentElement.lang), lang);
      await unfold(page);
      await waitForIdle(page);
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, `${lang}.png`), fullPage: true });
      t.diagnostic(`screenshots: ${join(SHOTS, `${lang}.png`)} and ${lang}-narrow.png`);
      assert.deepEqual(await problems(page), []);
      // A phone's width: the layout wraps, and still nothing overflows.
      await page.setViewportSize({ width: 400, height: 900 });
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      await page.screenshot({ path: join(SHOTS, `${lang}-narrow.png`), fullPage: true });
      assert.deepEqual(await problems(page), [], "at 400 px wide");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
}

test("every string the page shows comes from the catalogue (pseudo-language ?lang=qps)", { timeout: 180000 }, async () => {
  const { browser, page, errors } = await openPage(site, { ...CPU, query: "?lang=qps" });
  try {
    await unfold(page);
    // Things the page says only on request: a few training steps (progress, curves), the prior's
    // grids and words, an encoded drawing's q(z|x) and ELBO, a corruption, an interpolation's
    // first end, an error.
    await page.evaluate(() => window.explorer.train.stopAt(5));
    await page.click('[data-testid="train-start"]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="train-progress"]').dataset.steps) >= 5
      && !document.querySelector('[data-testid="train-start"]').disabled);
    await page.click('[data-testid="prior-samples"]');
    await page.waitForFunction(() => !document.querySelector('[data-testid="prior-text"]').hidden);
    await page.locator('[data-testid="draw-pad"]').scrollIntoViewIfNeeded();
    const pad = await page.locator('[data-testid="draw-pad"]').boundingBox();
    await page.mouse.move(pad.x + 100, pad.y + 60);
    await page.mouse.down();
    await page.mouse.move(pad.x + 150, pad.y + 220, { steps: 8 });
    await page.mouse.up();
    await page.click('[data-testid="encode"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="elbo"]').dataset.kl !== "");
    await page.click('[data-testid="noise"]');
    await page.click('[data-testid="interpolate"]');
    await page.locator('[data-testid="upload"]').setInputFiles({ name: "note.txt", mimeType: "text/plain", buffer: Buffer.from("not an image") });
    await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
    await waitForIdle(page);
    const unmarked = await page.evaluate(() => {
      // Messages may hold messages (a model's name in an error): drop the innermost first.
      const strip = (s) => { let prev; do { prev = s; s = s.replace(/⟪[^⟪⟫]*⟫/g, ""); } while (s !== prev); return s; };
      const LETTERS = /\p{L}{2,}/u;
      // Not from the catalogue by design: the notice's details (the driver's and the browser's own
      // words, shown as they are) and the language menu (each language named in itself).
      const own = [document.getElementById("notice-detail"), document.getElementById("language")];
      for (const el of own) el.hidden = true;
      const left = strip(document.body.innerText).split("\n").filter((line) => LETTERS.test(line)).map((line) => `text: ${line.trim()}`);
      for (const el of own) el.hidden = false;
      for (const el of document.body.querySelectorAll("[aria-label], [title], [aria-valuetext]")) {
        for (const a of ["aria-label", "title", "aria-valuetext"]) {
          const v = el.getAttribute(a);
          if (v && LETTERS.test(strip(v))) left.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""} ${a}: ${v}`);
        }
      }
      if (LETTERS.test(strip(document.title))) left.push(`document title: ${document.title}`);
      return left;
    });
    assert.deepEqual(unmarked, [], "text not from the catalogue");
    assert.deepEqual(errors.filter((e) => !/not an image/.test(e)), []);
  } finally {
    await browser.close();
  }
});

test("switching language keeps the model, the point and the drawing, and is remembered", { timeout: 180000 }, async () => {
  const { browser, page, errors } = await openPage(site, { ...CPU, query: "" });
  try {
    assert.equal(await page.evaluate(() => document.documentElement.lang), "en", "Chromium's default language here is English");
    // Another model, a point moved, a drawing encoded.
    await page.locator('[data-testid="model-select"]').selectOption("mnist-2d-ae.safetensors");
    await page.waitForFunction(() => window.explorer.state.kind === "ae");
    await page.locator('[data-testid="draw-pad"]').scrollIntoViewIfNeeded();
    const pad = await page.locator('[data-testid="draw-pad"]').boundingBox();
    await page.mouse.move(pad.x + 90, pad.y + 50);
    await page.mouse.down();
    await page.mouse.move(pad.x + 190, pad.y + 60, { steps: 6 });
    await page.mouse.move(pad.x + 120, pad.y + 230, { steps: 6 });
    await page.mouse.up();
    await page.click('[data-testid="encode"]');
    await page.waitForFunction(() => window.explorer.state.input !== null);
    await page.evaluate(() => window.explorer.moveTo([1.25, -0.75]));
    await waitForIdle(page);
    const look = () => page.evaluate(() => {
      const pad = document.querySelector('[data-testid="draw-pad"]');
      const px = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
      let ink = 0, sum = 0;
      for (let i = 0; i < px.length; i += 4) { ink += px[i] < 128; sum = (sum * 31 + px[i]) >>> 0; }
      return {
        model: document.querySelector('[data-testid="model-select"]').value, kind: window.explorer.state.kind,
        z: window.explorer.state.z, digitZ: document.querySelector('[data-testid="digit"]').dataset.z,
        input: Array.from(window.explorer.state.input), pad: { ink, sum }, same: window.explorer.state.explorer === window.before,
      };
    });
    await page.evaluate(() => { window.before = window.explorer.state.explorer; });
    const before = await look();
    assert.ok(before.pad.ink > 100, "the drawing is on the pad");
    const elboBefore = await page.locator('[data-testid="elbo"]').innerText();

    await page.locator('[data-testid="language"]').selectOption("ko");
    await page.waitForFunction(() => document.documentElement.lang === "ko");
    await waitForIdle(page);
    const after = await look();
    assert.deepEqual(after, { ...before, same: true }, "the model, the point or the drawing changed");
    // The words changed, in place: the ELBO line is the same figures in Korean.
    const elboAfter = await page.locator('[data-testid="elbo"]').innerText();
    assert.notEqual(elboAfter, elboBefore);
    assert.match(elboAfter, /[\u3131-\uD79D]/, "the ELBO line is not in Korean");
    assert.deepEqual(await problems(page), []);

    // Remembered: a reload without ?lang= is in Korean; ?lang= still wins.
    await page.goto(site.base);
    await page.waitForFunction(() => document.body.dataset.ready === "true");
    assert.equal(await page.evaluate(() => document.documentElement.lang), "ko");
    assert.equal(await page.locator('[data-testid="language"]').inputValue(), "ko");
    await page.goto(`${site.base}?lang=pl`);
    await page.waitForFunction(() => document.body.dataset.ready === "true");
    assert.equal(await page.evaluate(() => document.documentElement.lang), "pl");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("errors from the Rust side are worded in the reader's language", { timeout: 120000 }, async () => {
  const pl = JSON.parse(readFileSync(new URL("../../www/i18n/pl.json", import.meta.url), "utf8"));
  const { browser, page } = await openPage(site, { ...CPU, query: "?lang=pl" });
  const error = () => page.locator('[data-testid="error"]').innerText();
  try {
    // An empty pad: the preprocessing's "no ink", whole, after the drawing's name.
    await page.click("#clear");
    await page.click('[data-testid="encode"]');
    await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
    assert.equal(await error(), `${pl.input.drawing}: ${pl.rust.preprocess["no-ink"]}`);
    // A truncated model file: the format error's words around the library's own detail.
    const bytes = readFileSync(new URL("../../www/models/mnist-2d.safetensors", import.meta.url)).subarray(0, 5000);
    await page.locator('[data-testid="model-file"]').setInputFiles({ name: "cut.safetensors", mimeType: "application/octet-stream", buffer: bytes });
    await page.waitForFunction(() => /cut\.safetensors/.test(document.querySelector('[data-testid="error"]').innerText));
    const [before, after] = pl.rust.model.format.split("{detail}");
    const reason = pl.models.unusable.replace("{what}: ", "").replace("{reason}", "");
    const text = await error();
    assert.ok(text.includes(reason) && text.includes(before) && text.endsWith(after), `not worded in Polish: ${text}`);
    // Switched to Korean, the same errors are worded again.
    await page.locator('[data-testid="language"]').selectOption("ko");
    await page.waitForFunction(() => document.documentElement.lang === "ko");
    const ko = JSON.parse(readFileSync(new URL("../../www/i18n/ko.json", import.meta.url), "utf8"));
    assert.ok((await error()).includes(ko.rust.model.format.split("{detail}")[0]), `not worded in Korean: ${await error()}`);
  } finally {
    await browser.close();
  }
});

test("the browser's own language is the default", { timeout: 120000 }, async () => {
  for (const [locale, lang] of [["vi-VN", "vi"], ["zh-TW", "zh-Hant"], ["de-DE", "en"]]) {
    const { browser, page } = await openPage(site, { ...CPU, context: { locale } });
    try {
      assert.equal(await page.evaluate(() => document.documentElement.lang), lang, `a browser in ${locale}`);
    } finally {
      await browser.close();
    }
  }
});
