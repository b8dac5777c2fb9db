// The "things to try" tour. Its measured figures are numbers here, not text in the catalogues,
// so every language shows the same measurements, each in its own number format. They were read
// from the shipped models' metadata (www/models/*.safetensors: prior_coverage, codes_in_prior,
// prior_share_by_class, test_kl, test_reconstruction, test_mse) when the models were trained.
import { setRich, onLanguage } from "./i18n.js";

export const TOUR_FIGURES = {
  prior: {
    draws: 1000, aeCoverage: 1.0, vaeCoverage: 0.86, aeInside: 0.457, vaeInside: 0.966,
    aeOnes: 0.009, aeSixes: 0.226, vaeLow: 0.063, vaeHigh: 0.121,
  },
  beta: { kl4: 5.3, kl1: 7.3, cover4: 0.905, cover1: 0.86, rec4: 133.8, rec1: 128.6 },
  pca: { pcaError: 43.6, aeError: 26.8 },
};

function fill() {
  for (const li of document.querySelectorAll("#tour-items [data-tour]")) {
    setRich(li, `tour.${li.dataset.tour}`, TOUR_FIGURES[li.dataset.tour] ?? {});
  }
}

/** Fills the tour, and again after every switch of language. */
export function setupTour() {
  onLanguage(fill);
  fill();
}
