//! The ELBO of one image, term by term, on the CPU reference: what the page shows live while a
//! learner draws. With `(mu, logvar) = encode(x)` and K samples `z_j = mu + exp(logvar / 2) eps_j`
//! (`eps_j = normal(seed, j, d)`: `model::reparameterize(mu, logvar, latent, K, seed, 0)`, the
//! very noise the GPU sampler's `sample_and_decode(mu, logvar, K, seed)` draws):
//!
//! - reconstruction = (1/K) sum_j BCE(x, sigmoid(decoder logits(z_j))), summed over pixels, in nats
//!   (from logits, as `loss::bce_with_logits`), a Monte Carlo estimate of E_q[-log p(x|z)];
//! - KL = KL(q(z|x) || N(0, I)) in closed form (`loss::kl_standard_normal`);
//! - their sum, -ELBO (beta 1), and a per-pixel map of the reconstruction term.
//!
//! A deterministic encoder (an autoencoder, PCA) has z = mu (one "sample"), no KL and no -ELBO,
//! and its reconstruction term is the error of its own loss. The term is always the model's own
//! loss (`architecture.loss`): BCE as above, or squared error summed over pixels.

use thiserror::Error;

use crate::error::ModelError;
use crate::kind::ReconstructionLoss;
use crate::loss::{kl_standard_normal, pixel_errors};
use crate::model::{reparameterize, Vae};

/// One image's ELBO terms, in nats.
#[derive(Clone, Debug, PartialEq)]
pub struct ElboTerms {
    /// E_q[-log p(x|z)], averaged over the K samples (a deterministic encoder: at z = mu), in
    /// the model's own loss.
    pub reconstruction: f64,
    /// What `reconstruction` scores: the model's loss.
    pub loss: ReconstructionLoss,
    /// KL(q(z|x) || N(0, I)); `None` for a deterministic encoder.
    pub kl: Option<f64>,
    /// reconstruction + kl: -ELBO, an upper bound on -log p(x); `None` without a KL.
    pub neg_elbo: Option<f64>,
    /// Each pixel's share of `reconstruction` (its BCE averaged over the samples), row-major;
    /// the pixels sum to `reconstruction`.
    pub pixel_reconstruction: Vec<f32>,
    /// q(z|x): mean and log-variance, `latent` values each (no log-variance: deterministic).
    pub mu: Vec<f32>,
    pub logvar: Option<Vec<f32>>,
    /// The K samples, `K * latent` values (a deterministic encoder: mu alone).
    pub z: Vec<f32>,
}

/// Why the ELBO of an input cannot be computed.
#[derive(Debug, Error)]
pub enum ElboError {
    #[error("the image has {found} values, expected {expected}")]
    ImageSize { expected: usize, found: usize },
    #[error("at least one sample is needed (K = 0)")]
    NoSamples,
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The ELBO terms of image `x` (intensities in [0, 1]) with `k` samples drawn with `seed`.
pub fn elbo(vae: &Vae, x: &[f32], k: usize, seed: u32) -> Result<ElboTerms, ElboError> {
    let n = vae.arch().input;
    if x.len() != n {
        return Err(ElboError::ImageSize { expected: n, found: x.len() });
    }
    if k == 0 {
        return Err(ElboError::NoSamples);
    }
    let enc = vae.encode(x)?;
    let latent = vae.arch().latent;
    let z = match &enc.logvar {
        Some(logvar) => reparameterize(&enc.mu, logvar, latent, k, seed, 0),
        None => enc.mu.clone(),
    };
    let logits = vae.decode_logits(&z)?;
    let (act, loss) = (vae.arch().output_activation, vae.arch().loss);
    let samples = z.len() / latent;
    let mut pixels = vec![0.0f64; n];
    for sample in logits.chunks_exact(n) {
        for ((p, &l), &t) in pixels.iter_mut().zip(sample).zip(x) {
            let (bce, squared) = pixel_errors(act, l, t);
            *p += match loss {
                ReconstructionLoss::Bce => bce,
                ReconstructionLoss::Mse => squared,
            };
        }
    }
    pixels.iter_mut().for_each(|p| *p /= samples as f64);
    let reconstruction: f64 = pixels.iter().sum();
    let kl = enc.logvar.as_ref().map(|logvar| kl_standard_normal(&enc.mu, logvar));
    Ok(ElboTerms {
        reconstruction,
        loss,
        kl,
        neg_elbo: kl.map(|kl| reconstruction + kl),
        pixel_reconstruction: pixels.iter().map(|&p| p as f32).collect(),
        mu: enc.mu,
        logvar: enc.logvar,
        z,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::{Activation, Architecture};
    use crate::rng;

    /// The whole computation by hand in f64 with plain loops: encoder, sampling, decoder, BCE
    /// as -(x ln p + (1 - x) ln(1 - p)), Gaussian KL.
    fn by_hand(vae: &Vae, x: &[f32], k: usize, seed: u32) -> (f64, f64, Vec<f64>) {
        let dense = |i: usize, h: &[f64]| -> Vec<f64> {
            let (l, w, b) = vae.layer(i);
            (0..l.n_out)
                .map(|o| {
                    let s = b[o] as f64 + (0..l.n_in).map(|j| w[o * l.n_in + j] as f64 * h[j]).sum::<f64>();
                    match l.activation {
                        Activation::Relu => s.max(0.0),
                        Activation::Sigmoid => 1.0 / (1.0 + (-s).exp()),
                        Activation::Identity => s,
                    }
                })
                .collect()
        };
        let layout = vae.layout();
        let mut h: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for &i in &layout.encoder {
            h = dense(i, &h);
        }
        let (mu, logvar) = (dense(layout.mu, &h), dense(layout.logvar.expect("a VAE"), &h));
        let kl: f64 = mu.iter().zip(&logvar).map(|(m, lv)| -0.5 * (1.0 + lv - m * m - lv.exp())).sum();
        let mut pixels = vec![0.0f64; x.len()];
        for j in 0..k {
            let mut h: Vec<f64> =
                (0..mu.len()).map(|d| mu[d] + (logvar[d] / 2.0).exp() * rng::normal(seed, j as u32, d as u32) as f64).collect();
            for &i in &layout.decoder {
                h = dense(i, &h);
            }
            for (p, (&q, &t)) in pixels.iter_mut().zip(h.iter().zip(x)) {
                let (q, t) = (q.clamp(1e-300, 1.0 - 1e-16), t as f64);
                *p += -(t * q.ln() + (1.0 - t) * (1.0 - q).ln()) / k as f64;
            }
        }
        (pixels.iter().sum(), kl, pixels)
    }

    #[test]
    fn terms_match_a_hand_written_evaluation() {
        let vae = Vae::init(Architecture::mirrored(784, &[32], 3), 4).unwrap();
        let x: Vec<f32> = (0..784).map(|i| ((i * 37 % 101) as f32 / 100.0).min(1.0)).collect();
        for (k, seed) in [(1, 0), (8, 5), (16, 77)] {
            let e = elbo(&vae, &x, k, seed).unwrap();
            let (rec, kl, pixels) = by_hand(&vae, &x, k, seed);
            assert!((e.reconstruction - rec).abs() < 1e-4, "K {k}: reconstruction {} vs {rec}", e.reconstruction);
            let e_kl = e.kl.expect("a VAE has a KL term");
            assert!((e_kl - kl).abs() < 1e-4, "K {k}: KL {e_kl} vs {kl}");
            assert!((e.neg_elbo.expect("and a -ELBO") - (rec + kl)).abs() < 1e-4);
            let worst = e.pixel_reconstruction.iter().zip(&pixels).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-4, "K {k}: per-pixel map off by {worst}");
            assert_eq!((e.z.len(), e.mu.len(), e.logvar.as_ref().map(Vec::len)), (3 * k, 3, Some(3)));
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let vae = Vae::init(Architecture::mirrored(784, &[8], 2), 1).unwrap();
        assert!(matches!(elbo(&vae, &[0.0; 783], 4, 1), Err(ElboError::ImageSize { expected: 784, found: 783 })));
        assert!(matches!(elbo(&vae, &[0.0; 784], 0, 1), Err(ElboError::NoSamples)));
    }

    /// A deterministic encoder: z = mu, no KL, and the model's own loss, by hand in f64.
    #[test]
    fn deterministic_models_score_their_own_loss_at_the_mean() {
        use crate::kind::{ModelKind, ReconstructionLoss};
        let x: Vec<f32> = (0..20).map(|i| (i % 7) as f32 / 6.0).collect();
        for (kind, loss, hidden, out) in [
            (ModelKind::Ae, ReconstructionLoss::Bce, vec![6], Activation::Sigmoid),
            (ModelKind::Ae, ReconstructionLoss::Mse, vec![6], Activation::Sigmoid),
            (ModelKind::Pca, ReconstructionLoss::Mse, vec![], Activation::Identity),
        ] {
            let mut arch = Architecture::mirrored(20, &hidden, 2);
            (arch.kind, arch.loss, arch.output_activation) = (kind, loss, out);
            let vae = Vae::init(arch, 3).unwrap();
            let e = elbo(&vae, &x, 16, 5).unwrap();
            assert_eq!((e.kl, e.neg_elbo, e.logvar.as_ref(), e.loss), (None, None, None, loss));
            assert_eq!(e.z, e.mu, "{kind:?}: z is the mean");
            let p = vae.decode(&e.mu).unwrap();
            let want: f64 = p
                .iter()
                .zip(&x)
                .map(|(&p, &t)| {
                    let (p, t) = (p as f64, t as f64);
                    match loss {
                        ReconstructionLoss::Bce => -(t * p.ln() + (1.0 - t) * (1.0 - p).ln()),
                        ReconstructionLoss::Mse => (t - p).powi(2),
                    }
                })
                .sum();
            assert!((e.reconstruction - want).abs() < 1e-4, "{kind:?} {loss:?}: {} vs {want}", e.reconstruction);
        }
    }
}
