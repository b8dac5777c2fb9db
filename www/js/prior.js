// Sampling from the prior: PRIOR_SAMPLES draws z ~ N(0, I) through the sampler (sampleAndDecode
// with mu = 0 and log-variance 0, so z = eps), shown as dots on the plane(s) and decoded by the
// page's model and, in compare mode, the second one: the same seed gives both the same z's. The
// first press uses FIRST_PRIOR_SEED, so everyone sees the same draws; "again" takes the next seed.
// Beside the grids, each model's prior-coverage figure, and words that follow from those figures.
import { $, state } from "./state.js";
import { setStatus, showError } from "./status.js";
import { drawPlane } from "./plane.js";
import { paintDigit } from "./digit.js";
import { secondExplorer, showSecondDots } from "./compare.js";
import { kindOf, priorCoverage, codesInPrior, priorExtremes } from "./meta.js";
import { t, point, localize, errorText } from "./i18n.js";

export const PRIOR_SAMPLES = 16;
export const FIRST_PRIOR_SEED = 1;

/** The words beside the grids, in the language shown, from the figures of the models shown
 * ([{title, meta}], `title()` a model's name): what the coverage figure is, each model's, and
 * which covers more. Nothing is claimed that the figures do not say. */
export function priorText(shown) {
  const parts = [t("prior.intro", { count: PRIOR_SAMPLES })];
  const covers = shown.map(({ title, meta }) => ({ title: title(), kind: kindOf(meta), cover: priorCoverage(meta) }));
  const known = covers.filter((c) => c.cover != null);
  if (known.length) {
    parts.push(t("prior.coverageIs", { draws: 1000 }));
    parts.push(known.map((c) => t("prior.coverageOf", { title: c.title, share: c.cover })).join(t("prior.listSeparator")) + t("prior.end"));
  } else {
    parts.push(t(shown.length > 1 ? "prior.noneBoth" : "prior.noneOne"));
  }
  if (known.length === 2 && known[0].cover !== known[1].cover) {
    const [hi, lo] = known[0].cover > known[1].cover ? known : [known[1], known[0]];
    parts.push(t("prior.compare", { hi: hi.title, lo: lo.title }));
  }
  // Where the codes lie relative to N(0, I), and which classes the prior's draws reach: the
  // figures that set a plain autoencoder apart (its decoder, too, draws digits between clusters).
  for (const { title, meta } of shown) {
    const inside = codesInPrior(meta), ext = priorExtremes(meta);
    if (inside == null || !ext) continue;
    const plain = kindOf(meta) !== "vae";
    parts.push(t(plain ? "prior.wherePlain" : "prior.where", {
      title: title(), inside, low: ext.low.name, lowShare: ext.low.share, high: ext.high.name, highShare: ext.high.share,
    }));
  }
  return parts.join(" ");
}

function grid(title, cover, pixels, zs, testid) {
  const box = document.createElement("figure");
  box.className = "prior-grid";
  const cap = document.createElement("figcaption");
  localize(cap, () => (cover == null ? title() : t("prior.gridCaption", { title: title(), share: cover })));
  const cells = document.createElement("div");
  cells.className = "samples";
  cells.dataset.testid = testid;
  zs.forEach((z, i) => {
    const c = document.createElement("canvas");
    c.title = t("digit.z", { z: point(z) });
    c.dataset.z = z.join(",");
    paintDigit(c, pixels, i * state.side * state.side);
    cells.appendChild(c);
  });
  box.append(cap, cells);
  return box;
}

/** Draws PRIOR_SAMPLES z's with seed `seed` and shows them for the model(s). */
export async function drawPrior(seed) {
  const models = [{ e: state.explorer, title: () => t("prior.thisModel"), testid: "prior-grid" }];
  const e2 = secondExplorer();
  if (e2) models.push({ e: e2, title: () => state.second.title, testid: "prior-grid-2" });
  if (e2) models[0].title = () => $("model-select").selectedOptions[0]?.text ?? t("prior.firstModel");
  try {
    // Both at once: neither waits for the other.
    const results = await Promise.all(models.map(({ e }) => {
      const d = e.latent();
      return e.sampleAndDecode(new Float32Array(d), new Float32Array(d), PRIOR_SAMPLES, seed);
    }));
    if (models[0].e !== state.explorer) return;
    const d = state.latent;
    const zs = Array.from({ length: PRIOR_SAMPLES }, (_, i) => Array.from(results[0].z.slice(i * d, i * d + d)));
    state.prior = { seed, z: zs, pixels: results.map((r) => Array.from(r.pixels)), z2: results[1] && Array.from(results[1].z) };
    state.samples = zs;
    if ($("samples").firstChild) $("samples").replaceChildren();
    drawPlane();
    if (e2) showSecondDots(Array.from({ length: PRIOR_SAMPLES }, (_, i) => Array.from(results[1].z.slice(2 * i, 2 * i + 2))));
    const shown = models.map(({ e, title }) => ({ title, meta: e.metadata() }));
    $("prior-grids").replaceChildren(...models.map(({ title, testid }, k) => grid(title, priorCoverage(shown[k].meta), results[k].pixels, zs, testid)));
    localize($("prior-text"), () => priorText(shown));
    $("prior-text").hidden = false;
    $("prior-again").disabled = false;
    setStatus(); // the GPU may have failed while sampling
  } catch (err) {
    showError(() => t("prior.failed", { reason: errorText(err) }));
  }
}

export function setupPrior() {
  $("prior-samples").addEventListener("click", () => { state.priorSeed = FIRST_PRIOR_SEED; drawPrior(state.priorSeed); });
  $("prior-again").addEventListener("click", () => { state.priorSeed = (state.priorSeed ?? FIRST_PRIOR_SEED) + 1; drawPrior(state.priorSeed); });
  // A new model: the grids showed another model's decodes.
  state.onModel.push(() => { $("prior-grids").replaceChildren(); $("prior-text").hidden = true; });
}
