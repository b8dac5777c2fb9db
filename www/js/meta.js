// What a model file says about itself, read from its metadata (an object of strings, as
// `Explorer.metadata()` gives it): its kind, the names of its data set's classes, and its test
// figures as the trainer recorded them, worded in the language shown.
import { t, has, onLanguage } from "./i18n.js";

const filled = new Map(); // figure lists shown, and the metadata each shows

/** Parses a metadata value that holds JSON; undefined when absent or not JSON. */
function json(meta, key) {
  try {
    return meta?.[key] == null ? undefined : JSON.parse(meta[key]);
  } catch {
    return undefined;
  }
}

/** "vae", "ae" or "pca"; files from before kinds existed are VAEs. */
export const kindOf = (meta) => meta?.kind ?? "vae";

/** The class names for labels 0..9: the metadata's `dataset.classes` when it has them, else digits. */
export function classNames(meta) {
  const classes = json(meta, "dataset")?.classes;
  if (Array.isArray(classes) && classes.length && classes.every((c) => typeof c === "string")) return classes;
  return Array.from({ length: 10 }, (_, i) => String(i));
}

/** The data set's name ("mnist", "fashion-mnist"), if recorded. */
export const datasetName = (meta) => json(meta, "dataset")?.name;

/** The share of prior draws near a test-set code, in [0, 1], or null when not recorded. */
export function priorCoverage(meta) {
  const v = Number(meta?.prior_coverage);
  return meta?.prior_coverage != null && Number.isFinite(v) ? v : null;
}

/** The share of the test set's codes inside the circle (ball) holding 99% of the prior's draws,
 * or null when not recorded. */
export function codesInPrior(meta) {
  const v = Number(meta?.codes_in_prior);
  return meta?.codes_in_prior != null && Number.isFinite(v) ? v : null;
}

/** Per class, the share of the prior's draws whose nearest test-set code has that class, or null. */
export function priorShares(meta) {
  const v = json(meta, "prior_share_by_class");
  return Array.isArray(v) && v.length && v.every(Number.isFinite) ? v : null;
}

/** The classes with the smallest and the largest share of the prior's draws: { low, high } as
 * { name, share }, or null when not recorded. */
export function priorExtremes(meta) {
  const shares = priorShares(meta);
  if (!shares) return null;
  const names = wordClasses(datasetName(meta), classNames(meta));
  const at = (i) => ({ name: names[i] ?? String(i), share: shares[i] });
  const order = shares.map((_, i) => i).sort((a, b) => shares[a] - shares[b]);
  return { low: at(order[0]), high: at(order[order.length - 1]) };
}

/** Class names in the language shown: the catalogue's for a data set it knows
 * (classes.<dataset>.<label>), else the names as given (MNIST's digits). */
export const wordClasses = (dataset, names) => names.map((n, i) => wordClass(dataset, i, n));

/** Class `label`'s name in the language shown, `name` where the catalogue has none. */
export const wordClass = (dataset, label, name) => (has(`classes.${dataset}.${label}`) ? t(`classes.${dataset}.${label}`) : name);

// The test figures shown beside a plane, in this order: metadata key, label, value's message.
const FIGURES = [
  ["test_reconstruction", "figures.reconstructionBce", "figures.natsPerImage"],
  ["test_mse", "figures.reconstructionMse", "figures.perImage"],
  ["test_kl", "figures.kl", "figures.natsPerImage"],
  ["test_neg_elbo", "figures.negElbo", "figures.natsPerImage"],
];

/** The figures beside a plane, in the language shown: [label, value text] rows, from the
 * metadata only. */
export function figureRows(meta) {
  const kind = kindOf(meta);
  const kindWords = has(`kind.${kind}`) ? t(`kind.${kind}`) : kind;
  const model = kind === "vae" && meta?.beta != null && meta.beta !== "1" ? t("figures.kindBeta", { kind: kindWords, beta: meta.beta }) : kindWords;
  const rows = [[t("figures.model"), model]];
  const data = datasetName(meta);
  if (data) rows.push([t("figures.data"), has(`dataset.${data}`) ? t(`dataset.${data}`) : data]);
  for (const [key, label, value] of FIGURES) {
    if (meta?.[key] != null && Number.isFinite(Number(meta[key]))) rows.push([t(label), t(value, { value: Number(meta[key]) })]);
  }
  if (kind === "ae") rows.push([t("figures.klLabel"), t("figures.noKlAe")]);
  if (kind === "pca") rows.push([t("figures.klLabel"), t("figures.noKlPca")]);
  const cover = priorCoverage(meta);
  if (cover != null) rows.push([t("figures.coverage"), t("figures.coverageValue", { share: cover })]);
  const inside = codesInPrior(meta);
  if (inside != null) rows.push([t("figures.inside"), t("figures.insideValue", { share: inside })]);
  const ext = priorExtremes(meta);
  if (ext) {
    rows.push([t("figures.byClass"), t("figures.byClassValue", { low: ext.low.name, lowShare: ext.low.share, high: ext.high.name, highShare: ext.high.share })]);
  }
  return rows;
}

/** Fills element `el` with the figure rows of `meta` as a definition list, worded again after a
 * switch of language. */
export function showFigures(el, meta) {
  if (!filled.has(el)) onLanguage(() => showFigures(el, filled.get(el)));
  filled.set(el, meta);
  el.replaceChildren();
  for (const [label, value] of figureRows(meta)) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = label;
    dd.textContent = value;
    el.append(dt, dd);
  }
}
