// The model menus: the shipped models as the manifest (models/models.json) lists them, plus
// "load your own" (the file picker); fetching a model's bytes with a clear message when a file is
// missing. The first menu is the page's model; the second, compare mode's (compare.js).
import { $, state } from "./state.js";
import { showError } from "./status.js";
import { loadModel } from "./model.js";
import { t, has, onLanguage, wordedError, errorText } from "./i18n.js";

export const MANIFEST = "models/models.json";
export const DEFAULT_MODEL = "mnist-2d.safetensors";
// The menu entry that opens the file picker instead of loading a shipped model.
const OWN = "__own__";

/** The manifest's models, [{file, title, kind, dataset}]; just the default model when the manifest
 * cannot be read (the page still works). */
export async function readManifest() {
  try {
    const res = await fetch(MANIFEST);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const { models } = await res.json();
    if (!Array.isArray(models) || !models.every((m) => typeof m?.file === "string")) throw new Error("no list of models");
    return models.map((m) => ({ ...m, title: String(m.title ?? m.file) }));
  } catch (e) {
    console.warn(`${MANIFEST} could not be read (${e.message ?? e}); only the default model is listed`);
    return [{ file: DEFAULT_MODEL, title: DEFAULT_MODEL }];
  }
}

/** A shipped model's title in the language shown: the catalogue's (models.titles.<file's stem>),
 * else the manifest's. */
export function titleOf(m) {
  const key = `models.titles.${String(m?.file ?? "").replace(/\.safetensors$/, "")}`;
  return has(key) ? t(key) : String(m?.title ?? m?.file ?? "");
}

/** The bytes of shipped model `m` ({file, title}); rejects with a sentence naming it and what
 * went wrong (its `words()`). */
export async function fetchModel(m) {
  const file = m.file, title = () => titleOf(m);
  let res;
  try {
    res = await fetch(`models/${encodeURIComponent(file)}`);
  } catch (e) {
    throw wordedError(() => t("models.fetchFailed", { title: title(), reason: e.message ?? String(e) }));
  }
  if (res.status === 404) throw wordedError(() => t("models.notOnServer", { title: title(), file }));
  if (!res.ok) throw wordedError(() => t("models.httpFailed", { title: title(), file, status: res.status }));
  return new Uint8Array(await res.arrayBuffer());
}

/** Words the options of a model menu in the language shown. */
function wordMenu(select, models) {
  for (const o of select.options) {
    if (o.value === OWN) o.text = t("models.own");
    else if (o.dataset.own) o.text = t("models.yourFile", { name: o.dataset.own });
    else o.text = titleOf(models.find((m) => m.file === o.value) ?? { file: o.value });
  }
}

/** Fills `select` with the models and "load your own", worded again after a switch of language. */
export function fillMenu(select, models, selected) {
  select.replaceChildren(...models.map((m) => new Option("", m.file, false, m.file === selected)), new Option("", OWN));
  wordMenu(select, models);
  onLanguage(() => wordMenu(select, models));
}

/** Makes `select` load the model chosen: `load(bytes, what)` (`what()` names the model) resolves
 * to whether it took; the menu goes back to the model in use otherwise. "load your own" clicks
 * `fileInput`. */
export function wireMenu(select, models, fileInput, load) {
  let current = select.value;
  select.addEventListener("change", async () => {
    const file = select.value;
    if (file === OWN) {
      select.value = current;
      fileInput.click();
      return;
    }
    const m = models.find((x) => x.file === file) ?? { file };
    try {
      if (await load(await fetchModel(m), () => t("models.quoted", { name: titleOf(m) }))) {
        current = file;
        return;
      }
    } catch (e) {
      showError(() => errorText(e));
    }
    select.value = current;
  });
  return {
    /** A file of the user's, loaded through the picker, shows in the menu as such. */
    markOwn(name) {
      select.querySelector("option[data-own]")?.remove();
      const o = new Option(t("models.yourFile", { name }), `own:${name}`, false, true);
      o.dataset.own = name;
      o.disabled = true;
      select.add(o, select.options.length - 1);
      current = o.value;
    },
  };
}

/** The page's model menu (the first): loads into the page's explorer. */
export async function setupModelMenu() {
  const models = await readManifest();
  state.models = models;
  const select = $("model-select");
  fillMenu(select, models, DEFAULT_MODEL);
  const menu = wireMenu(select, models, $("model-file"), loadModel);
  $("model-file").addEventListener("change", async (ev) => {
    const f = ev.target.files[0];
    if (f && (await loadModel(new Uint8Array(await f.arrayBuffer()), () => t("models.quoted", { name: f.name })))) menu.markOwn(f.name);
  });
  return models;
}
