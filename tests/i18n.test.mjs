// The catalogues (www/i18n/<lang>.json) against each other, and the page's pure i18n functions
// (www/js/i18n.js) against expectations written here: every language has every key with the
// same placeholders and markup, plural forms for exactly its CLDR categories, and no empty text;
// the language chosen follows ?lang=, the remembered choice, then the browser's languages;
// messages are filled and numbers formatted per locale. Run by `npm test` (node only).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { LANGUAGES, chooseLanguage, flatten, placeholders, formatMessage } from "../www/js/i18n.js";
import { TOUR_FIGURES } from "../www/js/tour.js";

const dir = new URL("../www/i18n/", import.meta.url);
const read = (code) => flatten(JSON.parse(readFileSync(new URL(`${code}.json`, dir), "utf8")));
const catalogues = Object.fromEntries(LANGUAGES.map(([code]) => [code, read(code)]));
const en = catalogues.en;
const forms = (m) => (typeof m === "string" ? [m] : Object.values(m));
const markup = (m) => forms(m).map((s) => (s.match(/<\/?[a-z]+>/g) ?? []).join("")).sort();

test("there is a catalogue for every language offered, and no other", () => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, "")).sort();
  assert.deepEqual(files, LANGUAGES.map(([c]) => c).sort());
});

for (const [code] of LANGUAGES) {
  test(`${code}: every key of en with the same placeholders and markup, plurals for its categories`, () => {
    const cat = catalogues[code];
    const problems = [];
    for (const [key, message] of en) {
      if (!cat.has(key)) { problems.push(`missing ${key}`); continue; }
      const m = cat.get(key);
      if (typeof m !== typeof message) { problems.push(`${key}: a ${typeof m}, en has a ${typeof message}`); continue; }
      if (placeholders(m).join() !== placeholders(message).join()) problems.push(`${key}: placeholders ${placeholders(m)} != ${placeholders(message)}`);
      if (markup(m)[0] !== markup(message)[0] && typeof m === "string") problems.push(`${key}: markup differs from en's`);
      if (forms(m).some((s) => typeof s !== "string" || (!s.trim() && forms(message).some((e) => e.trim().length > 1)))) problems.push(`${key}: empty`);
      if (typeof m === "object") {
        const want = new Intl.PluralRules(code).resolvedOptions().pluralCategories.slice().sort();
        if (Object.keys(m).sort().join() !== want.join()) problems.push(`${key}: plural forms ${Object.keys(m)} != ${want} (CLDR for ${code})`);
      }
    }
    for (const key of cat.keys()) if (!en.has(key)) problems.push(`extra ${key}`);
    assert.deepEqual(problems, []);
  });
}

test("the language shown: ?lang=, else the remembered choice, else the browser's first offered, else English", () => {
  assert.equal(chooseLanguage({ query: "pl", stored: "ko", preferred: ["th"] }), "pl");
  assert.equal(chooseLanguage({ query: "zh-hant", stored: null, preferred: [] }), "zh-Hant");
  assert.equal(chooseLanguage({ query: "xx", stored: "ko", preferred: ["th"] }), "ko");
  assert.equal(chooseLanguage({ query: null, stored: null, preferred: ["de-DE", "vi-VN", "en"] }), "vi");
  assert.equal(chooseLanguage({ query: null, stored: null, preferred: ["zh-TW"] }), "zh-Hant");
  assert.equal(chooseLanguage({ query: null, stored: null, preferred: ["zh-HK"] }), "zh-Hant");
  assert.equal(chooseLanguage({ query: null, stored: null, preferred: ["zh-Hant-TW"] }), "zh-Hant");
  // Simplified Chinese is not offered: the next language the reader reads, or English.
  assert.equal(chooseLanguage({ query: null, stored: null, preferred: ["zh-CN", "ko"] }), "ko");
  assert.equal(chooseLanguage({ query: null, stored: null, preferred: ["zh"] }), "en");
  assert.equal(chooseLanguage({ query: null, stored: null, preferred: ["th-TH"] }), "th");
  assert.equal(chooseLanguage({ query: null, stored: null, preferred: [] }), "en");
  assert.equal(chooseLanguage({ query: "qps", stored: null, preferred: [] }), "qps");
});

test("messages are filled, numbers formatted per locale, plurals chosen by count", () => {
  assert.equal(formatMessage("en", "{a} of {n:int}, {p:pct}, {x:f2}", { a: "x", n: 12345, p: 0.9666, x: 3 }), "x of 12,345, 96.7%, 3.00");
  assert.equal(formatMessage("pl", "{n:int} · {x:f1} · {p:pct}", { n: 12345, x: 128.64, p: 0.457 }), "12\u00a0345 · 128,6 · 45,7%");
  assert.equal(formatMessage("vi", "{x:f2}", { x: 1234.5 }), "1.234,50");
  assert.equal(formatMessage("en", "{missing} stays", {}), "{missing} stays");
  const dims = { one: "{count} wymiar", few: "{count} wymiary", many: "{count} wymiarów", other: "{count} wymiaru" };
  assert.deepEqual([1, 3, 5, 22, 1.5].map((count) => formatMessage("pl", dims, { count })), ["1 wymiar", "3 wymiary", "5 wymiarów", "22 wymiary", "1,5 wymiaru"]);
  assert.equal(formatMessage("en", en.get("status.recovered"), { count: 1 }), " · recovered from 1 lost GPU device");
  assert.equal(formatMessage("en", en.get("status.recovered"), { count: 2 }), " · recovered from 2 lost GPU devices");
});

test("the tour's figures are the shipped models' recorded ones", () => {
  const meta = (file) => {
    const b = readFileSync(new URL(`../www/models/${file}.safetensors`, import.meta.url));
    return JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString("utf8")).__metadata__;
  };
  const vae = meta("mnist-2d"), ae = meta("mnist-2d-ae"), beta4 = meta("mnist-2d-beta4"), pca = meta("mnist-2d-pca");
  const share = (m) => JSON.parse(m.prior_share_by_class);
  const close = (a, b, what) => assert.ok(Math.abs(a - Number(b)) < 0.051, `${what}: tour ${a}, model ${b}`);
  const { prior, beta, pca: p } = TOUR_FIGURES;
  close(prior.aeCoverage * 100, ae.prior_coverage * 100, "autoencoder's prior coverage");
  close(prior.vaeCoverage * 100, vae.prior_coverage * 100, "VAE's prior coverage");
  close(prior.aeInside * 100, ae.codes_in_prior * 100, "autoencoder's codes in the prior");
  close(prior.vaeInside * 100, vae.codes_in_prior * 100, "VAE's codes in the prior");
  close(prior.aeOnes * 100, share(ae)[1] * 100, "autoencoder's share of ones");
  close(prior.aeSixes * 100, share(ae)[6] * 100, "autoencoder's share of sixes");
  close(prior.vaeLow * 100, Math.min(...share(vae)) * 100, "VAE's smallest share");
  close(prior.vaeHigh * 100, Math.max(...share(vae)) * 100, "VAE's largest share");
  close(beta.kl4, beta4.test_kl, "β = 4 KL");
  close(beta.kl1, vae.test_kl, "β = 1 KL");
  close(beta.cover4 * 100, beta4.prior_coverage * 100, "β = 4 coverage");
  close(beta.rec4, beta4.test_reconstruction, "β = 4 reconstruction");
  close(beta.rec1, vae.test_reconstruction, "β = 1 reconstruction");
  close(p.pcaError, pca.test_mse, "PCA's squared error");
  close(p.aeError, ae.test_mse, "autoencoder's squared error");
});
