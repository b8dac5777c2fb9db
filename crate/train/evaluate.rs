//! Test-set evaluation: -ELBO with one fixed-seed sample per image, the importance-weighted
//! bound on log p(x) (Burda et al. 2016), and the encoder means for the latent plane.
//!
//! Every image's noise is indexed by the image's position, and per-image results are summed in
//! order, so the numbers do not depend on the thread count. Work runs in the current rayon pool.

use crate::dataset::to_intensities;
use crate::model::{bce_with_logits, reparameterize_into, Vae};

/// Seeds of the evaluation noise: fixed, so a recorded figure can be reproduced.
pub const ELBO_SEED: u32 = 0x0000_E1B0;
pub const IW_SEED: u32 = 0x001_3A7;

/// Means over a data set, in nats per example.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ElboReport {
    pub reconstruction: f64,
    pub kl: f64,
    /// reconstruction + kl (the true bound, beta = 1).
    pub neg_elbo: f64,
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
    let (mut rec, mut kl) = (0.0, 0.0);
    for t in &terms {
        rec += t.reconstruction;
        kl += t.kl;
    }
    let n = n.max(1) as f64;
    ElboReport { reconstruction: rec / n, kl: kl / n, neg_elbo: (rec + kl) / n }
}

/// Mean importance-weighted lower bound on log p(x) with `k` samples per image (negative nats).
pub fn iw_bound(vae: &Vae, images: &[u8], k: usize) -> f64 {
    let n_in = vae.arch().input;
    let d = vae.arch().latent;
    let n = images.len() / n_in;
    let k = k.max(1);
    let bounds = par_chunks(n, 8, |r| {
        let x = to_intensities(&images[r.start * n_in..r.end * n_in]);
        let (mu, logvar) = vae.encode(&x).expect("input sized by the model");
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
        vae.encode(&x).expect("input sized by the model").0
    })
}

/// Rewrites a model file in another storage precision. The test figures in the metadata and the
/// test-set embedding are measured again on the converted weights (with the file's
/// `iw_samples`), so they stay true.
pub fn convert(
    bytes: &[u8],
    images: &[u8],
    dtype: crate::weights::StorageDtype,
) -> Result<(Vec<u8>, ElboReport, f64), crate::error::ModelError> {
    use crate::weights;
    let file = weights::from_bytes(bytes)?;
    // Round the parameters through the target precision first, then measure that model.
    let probe = weights::to_bytes(&file.vae, None, &Default::default(), dtype, Vec::new())?;
    let vae = weights::from_bytes(&probe)?.vae;
    let k = file.metadata.get("iw_samples").and_then(|v| v.parse().ok()).unwrap_or(100);
    let test = evaluate_elbo(&vae, images);
    let iw = iw_bound(&vae, images, k);
    let mut meta = file.metadata.clone();
    meta.insert("test_neg_elbo".into(), format!("{:.4}", test.neg_elbo));
    meta.insert("test_reconstruction".into(), format!("{:.4}", test.reconstruction));
    meta.insert("test_kl".into(), format!("{:.4}", test.kl));
    meta.insert("test_iw_bound".into(), format!("{iw:.4}"));
    meta.insert("iw_samples".into(), k.to_string());
    meta.insert("eval_seed".into(), ELBO_SEED.to_string());
    meta.insert("storage_dtype".into(), format!("{dtype:?}").to_lowercase());
    // The plane shows where this model puts the test set: encode it again with the new weights.
    let embedding = file.embedding.map(|e| {
        if e.labels.len() * vae.arch().input == images.len() {
            weights::Embedding { mu: encode_means(&vae, images), labels: e.labels }
        } else {
            e
        }
    });
    let out = weights::to_bytes(&vae, embedding.as_ref(), &meta, dtype, Vec::new())?;
    Ok((out, test, iw))
}
