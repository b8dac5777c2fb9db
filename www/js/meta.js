// What a model file says about itself, read from its metadata (an object of strings, as
// `Explorer.metadata()` gives it): its kind, the names of its data set's classes, and its test
// figures as the trainer recorded them. Pure functions; imports nothing.

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
  const names = classNames(meta);
  const at = (i) => ({ name: names[i] ?? String(i), share: shares[i] });
  const order = shares.map((_, i) => i).sort((a, b) => shares[a] - shares[b]);
  return { low: at(order[0]), high: at(order[order.length - 1]) };
}

const KIND_WORDS = {
  vae: "variational autoencoder",
  ae: "plain autoencoder",
  pca: "PCA (a linear encoder and decoder)",
};

// The test figures shown beside a plane, in this order, with what each one is.
const FIGURES = [
  ["test_reconstruction", "reconstruction (BCE)", "nats per image"],
  ["test_mse", "reconstruction (squared error)", "per image"],
  ["test_kl", "KL(q(z|x) ‖ N(0, I))", "nats per image"],
  ["test_neg_elbo", "−ELBO", "nats per image"],
];

/** The figures beside a plane: [label, value text] rows, from the metadata only. */
export function figureRows(meta) {
  const kind = kindOf(meta);
  const beta = kind === "vae" && meta?.beta != null && meta.beta !== "1" ? `, β = ${meta.beta}` : "";
  const rows = [["model", `${KIND_WORDS[kind] ?? kind}${beta}`]];
  const data = datasetName(meta);
  if (data) rows.push(["data", data]);
  for (const [key, label, unit] of FIGURES) {
    if (meta?.[key] != null && Number.isFinite(Number(meta[key]))) rows.push([label, `${Number(meta[key]).toFixed(1)} ${unit}`]);
  }
  if (kind === "ae") rows.push(["KL", "no KL: a plain autoencoder"]);
  if (kind === "pca") rows.push(["KL", "no KL: PCA's encoder is a fixed linear map"]);
  const cover = priorCoverage(meta);
  if (cover != null) rows.push(["prior coverage", `${(100 * cover).toFixed(1)}% of prior draws land near a test-set code`]);
  const inside = codesInPrior(meta);
  if (inside != null) rows.push(["codes in the prior", `${(100 * inside).toFixed(1)}% of test-set codes lie where 99% of the prior's draws fall`]);
  const ext = priorExtremes(meta);
  if (ext) rows.push(["prior's draws by class", `fewest nearest “${ext.low.name}” (${(100 * ext.low.share).toFixed(1)}%), most nearest “${ext.high.name}” (${(100 * ext.high.share).toFixed(1)}%)`]);
  return rows;
}

/** Fills element `el` with the figure rows of `meta` as a definition list. */
export function showFigures(el, meta) {
  el.replaceChildren();
  for (const [label, value] of figureRows(meta)) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = label;
    dd.textContent = value;
    el.append(dt, dd);
  }
}
