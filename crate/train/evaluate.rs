//! Test-set evaluation: -ELBO with one fixed-seed sample per image, the importance-weighted
//! bound on log p(x) (Burda et al. 2016), reconstruction errors and prior coverage for every
//! kind, and the encoder means for the latent plane.
//!
//! Every image's noise is indexed by the image's position, and per-image results are summed in
//! order, so the numbers do not depend on the thread count. Work runs in the current rayon pool.

use std::collections::BTreeMap;

use crate::architecture::{ModelKind, ReconstructionLoss};
use crate::coverage::{codes_in_prior, prior_coverage, prior_share_by_class};
use crate::dataset::to_intensities;
use crate::loss::bce_with_logits;
use crate::model::{reparameterize_into, Encoding, Vae};

/// Seeds of the evaluation noise: fixed, so a recorded figure can be reproduced.
pub const ELBO_SEED: u32 = 0x0000_E1B0;
pub const IW_SEED: u32 = 0x001_3A7;

/// Means over a data set, per example.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ElboReport {
    /// The model's own reconstruction loss (BCE or squared error, per its architecture).
    pub reconstruction: f64,
    /// 0 for a deterministic encoder.
    pub kl: f64,
    /// reconstruction + kl (with BCE, the true bound, beta = 1): the trained objective.
    pub neg_elbo: f64,
    /// Binary cross-entropy in nats, whatever the model's loss.
    pub bce: f64,
    /// Squared error, whatever the model's loss.
    pub squared_error: f64,
}

/// What only a VAE has: its KL and its bounds on log p(x) (under the Bernoulli likelihood).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VariationalFigures {
    pub kl: f64,
    /// BCE + KL: -ELBO of the Bernoulli decoder.
    pub neg_elbo: f64,
    /// The importance-weighted bound on log p(x), from `iw_samples` samples per image.
    pub iw_bound: f64,
    pub iw_samples: usize,
}

/// The test-set figures a model file records in its metadata: the trainer's final model and a
/// converted one both write them through [`TestFigures::record`], so they carry the same keys.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestFigures {
    pub kind: ModelKind,
    pub loss: ReconstructionLoss,
    /// BCE per image in nats. A PCA's pixel means are clamped first (`loss::BCE_CLAMP`).
    pub reconstruction: f64,
    /// Squared error per image.
    pub squared_error: f64,
    /// `coverage::prior_coverage` of the test set's encoder means.
    pub prior_coverage: f64,
    /// `coverage::codes_in_prior`: the share of those means inside the prior's 99% ball.
    pub codes_in_prior: f64,
    /// `coverage::prior_share_by_class`, for the ten classes of the data sets this crate knows.
    pub prior_share_by_class: [f64; CLASSES],
    /// A VAE's figures; `None` for a deterministic kind.
    pub variational: Option<VariationalFigures>,
}

/// Classes of MNIST and Fashion-MNIST, the data sets a model's figures are measured on.
pub const CLASSES: usize = 10;

/// Keys only a VAE's figures have: removed from a deterministic model's metadata.
const VARIATIONAL_KEYS: [&str; 5] = ["test_neg_elbo", "test_kl", "test_iw_bound", "iw_samples", "eval_seed"];

impl TestFigures {
    /// Measures `vae` on `images` with their `labels`, given their encoder means
    /// (`encode_means`, which the model file stores too), in the current rayon pool; the
    /// importance-weighted bound (a VAE's only) with `iw_samples` samples per image.
    pub fn measure(vae: &Vae, images: &[u8], labels: &[u8], means: &[f32], iw_samples: usize) -> Self {
        let arch = vae.arch();
        let elbo = evaluate_elbo(vae, images);
        let variational = arch.kind.is_variational().then(|| VariationalFigures {
            kl: elbo.kl,
            neg_elbo: elbo.bce + elbo.kl,
            iw_bound: iw_bound(vae, images, iw_samples),
            iw_samples,
        });
        TestFigures {
            kind: arch.kind,
            loss: arch.loss,
            reconstruction: elbo.bce,
            squared_error: elbo.squared_error,
            prior_coverage: prior_coverage(means, arch.latent),
            codes_in_prior: codes_in_prior(means, arch.latent),
            prior_share_by_class: {
                let share = prior_share_by_class(means, labels, arch.latent, CLASSES);
                std::array::from_fn(|c| share[c])
            },
            variational,
        }
    }

    /// The metadata entries, as (key, value).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut entries = vec![
            ("kind", self.kind.name().to_string()),
            ("loss", self.loss.name().to_string()),
            ("test_reconstruction", format!("{:.4}", self.reconstruction)),
            ("test_mse", format!("{:.4}", self.squared_error)),
            ("prior_coverage", format!("{:.3}", self.prior_coverage)),
            ("codes_in_prior", format!("{:.3}", self.codes_in_prior)),
            ("prior_share_by_class", format!("[{}]", self.prior_share_by_class.map(|v| format!("{v:.3}")).join(","))),
        ];
        if let Some(v) = &self.variational {
            entries.extend([
                ("test_neg_elbo", format!("{:.4}", v.neg_elbo)),
                ("test_kl", format!("{:.4}", v.kl)),
                ("test_iw_bound", format!("{:.4}", v.iw_bound)),
                ("iw_samples", v.iw_samples.to_string()),
                ("eval_seed", ELBO_SEED.to_string()),
            ]);
        }
        entries
    }

    /// Writes the figures into a model file's metadata, replacing any there (and removing a
    /// VAE's figures from a deterministic model's).
    pub fn record(&self, metadata: &mut BTreeMap<String, String>) {
        if self.variational.is_none() {
            VARIATIONAL_KEYS.iter().for_each(|k| _ = metadata.remove(*k));
        }
        metadata.extend(self.entries().into_iter().map(|(k, v)| (k.to_string(), v)));
    }
}

/// Runs `f` on consecutive chunks of `0..n` in the current rayon pool; results in order.
pub fn par_chunks<T: Send>(n: usize, chunk: usize, f: impl Fn(std::ops::Range<usize>) -> Vec<T> + Sync + Send) -> Vec<T> {
    use rayon::prelude::*;
    let chunks: Vec<std::ops::Range<usize>> = (0..n).step_by(chunk.max(1)).map(|s| s..(s + chunk).min(n)).collect();
    let parts: Vec<Vec<T>> = chunks.into_par_iter().map(f).collect();
    parts.into_iter().flatten().collect()
}

/// -ELBO on `images` (bytes, `n * input`), one sample per image from `ELBO_SEED`.
pub fn evaluate_elbo(vae: &Vae, images: &[u8]) -> ElboReport {
    let n_in = vae.arch().input;
    let n = images.len() / n_in;
    let terms = par_chunks(n, 256, |r| {
        let x = to_intensities(&images[r.start * n_in..r.end * n_in]);
        vae.loss_terms(&x, ELBO_SEED, r.start as u32).expect("input sized by the model")
    });
    let mut sums = ElboReport::default();
    for t in &terms {
        sums.reconstruction += t.reconstruction;
        sums.kl += t.kl;
        sums.bce += t.bce;
        sums.squared_error += t.squared_error;
    }
    let n = n.max(1) as f64;
    ElboReport {
        reconstruction: sums.reconstruction / n,
        kl: sums.kl / n,
        neg_elbo: (sums.reconstruction + sums.kl) / n,
        bce: sums.bce / n,
        squared_error: sums.squared_error / n,
    }
}

/// Mean importance-weighted lower bound on log p(x) with `k` samples per image (negative nats),
/// under the Bernoulli likelihood; a VAE's only (a deterministic encoder gives NaN).
pub fn iw_bound(vae: &Vae, images: &[u8], k: usize) -> f64 {
    let n_in = vae.arch().input;
    let d = vae.arch().latent;
    let n = images.len() / n_in;
    let k = k.max(1);
    let bounds = par_chunks(n, 8, |r| {
        let x = to_intensities(&images[r.start * n_in..r.end * n_in]);
        let Encoding { mu, logvar } = vae.encode(&x).expect("input sized by the model");
        let Some(logvar) = logvar else { return vec![f64::NAN; r.len()] };
        let index0 = (r.start * k) as u32;
        let (mut eps, mut z) = (vec![0.0; r.len() * k * d], vec![0.0; r.len() * k * d]);
        reparameterize_into(&mu, &logvar, d, k, IW_SEED, index0, &mut eps, &mut z);
        let logits = vae.decode_logits(&z).expect("latent sized by the model");
        (0..r.len())
            .map(|i| {
                let xi = &x[i * n_in..(i + 1) * n_in];
                let log_w: Vec<f64> = (0..k)
                    .map(|j| {
                        let s = i * k + j;
                        let mut log_w = -bce_with_logits(&logits[s * n_in..(s + 1) * n_in], xi);
                        for t in 0..d {
                            // log p(z) - log q(z|x); the 2*pi terms cancel.
                            let zt = z[s * d + t] as f64;
                            let e = eps[s * d + t] as f64;
                            log_w += -0.5 * zt * zt + 0.5 * e * e + 0.5 * logvar[i * d + t] as f64;
                        }
                        log_w
                    })
                    .collect();
                let max = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                max + (log_w.iter().map(|w| (w - max).exp()).sum::<f64>() / k as f64).ln()
            })
            .collect()
    });
    bounds.iter().sum::<f64>() / n.max(1) as f64
}

/// Encoder means of `images`, `n * latent`: the points of the latent plane.
pub fn encode_means(vae: &Vae, images: &[u8]) -> Vec<f32> {
    let n_in = vae.arch().input;
    let n = images.len() / n_in;
    par_chunks(n, 512, |r| {
        let x = to_intensities(&images[r.start * n_in..r.end * n_in]);
        vae.encode(&x).expect("input sized by the model").mu
    })
}
