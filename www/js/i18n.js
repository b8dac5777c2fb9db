// The page's words in the reader's language. Every string the page shows comes from one
// catalogue per language (www/i18n/<code>.json: nested keys, `{name}` or `{name:format}`
// placeholders, plural forms as objects keyed by CLDR category, `<b>`, `<i>` and `<code>` as the
// only markup); nothing else holds user-visible text. Static text is named in the HTML
// (data-i18n, data-i18n-rich, data-i18n-aria-label, data-i18n-title); text made in code is set
// through `localize`, which keeps how it was made, so switching language redraws every word in
// place: the model, the point and the drawing stay as they are. Errors from the Rust side carry a
// code and parameters (crate/error_code.rs) and are worded here (`errorText`).
//
// The pure parts (choosing a language, formatting a message) take no DOM, so node tests use them.

/** The languages offered, by BCP 47 code, each named in itself. */
export const LANGUAGES = [
  ["en", "English"], ["th", "ไทย"], ["zh-Hant", "繁體中文"], ["ko", "한국어"], ["pl", "Polski"], ["vi", "Tiếng Việt"],
];
/** A pseudo-language for tests (`?lang=qps`): English with every message marked ⟪…⟫, so text
 * that did not come from the catalogue stands out. Not in the menu. */
export const PSEUDO = "qps";
const STORE_KEY = "latent-explorer.language";
/** What a key missing from the catalogue shows as: the tests look for it. */
export const missing = (key) => `⟦${key}⟧`;

const PLURAL_CATEGORIES = new Set(["zero", "one", "two", "few", "many", "other"]);

/** The language to show: `?lang=` when it names one, else the remembered choice, else the first
 * of the browser's languages that is offered (zh-TW, zh-HK and zh-MO read Traditional Chinese;
 * Simplified Chinese is not offered), else English. */
export function chooseLanguage({ query, stored, preferred = [] }) {
  const offered = (code) => {
    if (!code) return null;
    const c = String(code).toLowerCase();
    if (c === PSEUDO) return PSEUDO;
    const exact = LANGUAGES.find(([l]) => l.toLowerCase() === c);
    if (exact) return exact[0];
    const [primary, ...rest] = c.split(/[-_]/);
    if (primary === "zh") return rest.some((s) => ["hant", "tw", "hk", "mo"].includes(s)) ? "zh-Hant" : null;
    return LANGUAGES.find(([l]) => l === primary)?.[0] ?? null;
  };
  return offered(query) ?? offered(stored) ?? preferred.map(offered).find(Boolean) ?? "en";
}

/** A nested catalogue as a Map from dotted keys to messages (a string, or plural forms). */
export function flatten(tree, prefix = "", out = new Map()) {
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix + k;
    const isPlural = v && typeof v === "object" && Object.keys(v).every((c) => PLURAL_CATEGORIES.has(c));
    if (v && typeof v === "object" && !isPlural) flatten(v, `${key}.`, out);
    else out.set(key, v);
  }
  return out;
}

/** The placeholders of a message, as written ("{count:int}"), sorted; of all its plural forms. */
export function placeholders(message) {
  const forms = typeof message === "string" ? [message] : Object.values(message);
  return [...new Set(forms.flatMap((s) => s.match(/\{[^}]*\}/g) ?? []))].sort();
}

const numberFormats = new Map();
function numberFormat(locale, format) {
  const id = `${locale}|${format}`;
  if (!numberFormats.has(id)) {
    const fixed = /^f(\d)$/.exec(format ?? "");
    const options = format === "int" ? { maximumFractionDigits: 0 }
      : format === "pct" ? { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }
        : fixed ? { minimumFractionDigits: Number(fixed[1]), maximumFractionDigits: Number(fixed[1]) }
          : { maximumFractionDigits: 3 };
    numberFormats.set(id, new Intl.NumberFormat(locale, options));
  }
  return numberFormats.get(id);
}

/** Formats number `v` for `locale`: "int", "f1".."f3" (fixed decimals), "pct" (a share as a
 * percentage, one decimal), or at most three decimals. */
export const formatNumber = (locale, v, format) => numberFormat(locale === PSEUDO ? "en" : locale, format).format(v);

/** Fills `message` (a string, or plural forms chosen by the `count` parameter) for `locale`:
 * each `{name}` or `{name:format}` is replaced by that parameter, numbers formatted for the
 * locale (formatNumber). An unknown parameter stays as written, so it shows. */
export function formatMessage(locale, message, params = {}) {
  let text = message;
  if (typeof message !== "string") {
    const rules = new Intl.PluralRules(locale === PSEUDO ? "en" : locale);
    text = message[rules.select(Number(params.count))] ?? message.other;
  }
  return text.replace(/\{(\w+)(?::(\w+))?\}/g, (whole, name, format) => {
    const v = params[name];
    if (v == null) return whole;
    return typeof v === "number" ? formatNumber(locale, v, format) : String(v);
  });
}

// ---- the page's state: the language shown and its catalogue ----

let current = "en";
let messages = new Map();
const localized = new Map(); // element -> the function that makes its text
const listeners = [];

/** The language shown. */
export const language = () => current;

/** The message `key` filled with `params`, in the language shown (missing(key) if absent). */
export function t(key, params) {
  const m = messages.get(key);
  if (m == null) return missing(key);
  const text = formatMessage(current, m, params);
  return current === PSEUDO ? `⟪${text}⟫` : text;
}

/** Whether the catalogue has `key`. */
export const has = (key) => messages.has(key);

/** A number formatted for the language shown (see formatNumber). */
export const num = (v, format) => formatNumber(current, v, format);

/** A latent point as text: coordinates with three decimals, separated by ", " (or "; " where
 * the decimal separator is a comma, as in Polish and Vietnamese). */
export function point(z) {
  const sep = num(0.5, "f1").includes(",") ? "; " : ", ";
  return z.map((v) => num(v, "f3")).join(sep);
}

/** An error as the reader's words: one the page words itself (wordedError), a Rust error by its
 * code and parameters, else its own message. */
export function errorText(e) {
  if (e?.words) return e.words("");
  if (e?.code && has(`rust.${e.code}`)) return t(`rust.${e.code}`, e.params ?? {});
  return e?.message ?? String(e);
}

/** An error the page words itself: `words(...)` says it in the language shown when it is shown
 * (its arguments, if any, are the caller's: a model's name); the message is for the console. */
export const wordedError = (words) => Object.assign(new Error(words("")), { words });

/** Sets `el`'s text to what `render()` returns, now and after every switch of language. */
export function localize(el, render) {
  // Elements made and dropped again (legends, grids) are forgotten once the page holds many.
  if (localized.size > 512) for (const old of localized.keys()) if (!old.isConnected) localized.delete(old);
  localized.set(el, render);
  const text = render();
  if (el.textContent !== text) el.textContent = text;
}

/** Forgets how `el`'s text was made (it is about to be emptied or removed). */
export const unlocalize = (el) => localized.delete(el);

/** Calls `f` after every switch of language (canvas text, menus). */
export const onLanguage = (f) => listeners.push(f);

/** Fills `el` with message `key`, its <b>, <i> and <code> as elements, never as HTML. */
export function setRich(el, key, params) {
  const parts = [];
  let open = null;
  for (const piece of t(key, params).split(/(<\/?(?:b|i|code)>)/)) {
    const tag = /^<(b|i|code)>$/.exec(piece), close = /^<\/(b|i|code)>$/.exec(piece);
    if (tag) { open = document.createElement(tag[1]); parts.push(open); }
    else if (close) open = null;
    else if (piece && open) open.append(piece);
    else if (piece) parts.push(piece);
  }
  el.replaceChildren(...parts);
}

/** Translates the static text under `root` (the data-i18n* attributes). */
export function translateStatic(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-rich]")) setRich(el, el.dataset.i18nRich);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

/** Loads catalogue `code` (English for the pseudo-language) and shows the page in it:
 * `<html lang>`, the static text, every localized element, then the listeners. */
export async function setLanguage(code) {
  const file = code === PSEUDO ? "en" : code;
  const res = await fetch(`i18n/${file}.json`);
  if (!res.ok) throw new Error(`i18n/${file}.json could not be fetched (HTTP ${res.status})`);
  messages = flatten(await res.json());
  current = code;
  document.documentElement.lang = code === PSEUDO ? "en" : code;
  translateStatic();
  for (const [el, render] of localized) {
    if (!el.isConnected) { localized.delete(el); continue; }
    const text = render();
    if (el.textContent !== text) el.textContent = text;
  }
  for (const f of listeners) f(code);
}

/** Starts the page in the language chosen (chooseLanguage) and wires the menu `select`: a choice
 * there is shown at once and remembered. */
export async function setupLanguage(select) {
  const query = new URLSearchParams(location.search).get("lang");
  let stored = null;
  try { stored = localStorage.getItem(STORE_KEY); } catch { /* storage blocked: not remembered */ }
  const code = chooseLanguage({ query, stored, preferred: navigator.languages ?? [navigator.language] });
  select.replaceChildren(...LANGUAGES.map(([c, name]) => {
    const o = new Option(name, c, false, c === code);
    o.lang = c;
    return o;
  }));
  select.addEventListener("change", async () => {
    try { localStorage.setItem(STORE_KEY, select.value); } catch { /* not remembered */ }
    await setLanguage(select.value);
  });
  await setLanguage(code);
}
