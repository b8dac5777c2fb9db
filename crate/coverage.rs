//! Prior coverage: how much of the prior N(0, I) the test set's embedding reaches, so that
//! sampling z from the prior lands near codes the decoder was trained on. A VAE's KL term pulls
//! its codes over the prior; an autoencoder's may lie anywhere, at any scale (a PCA's are centred
//! with the data's variances: on MNIST they are wider than the prior and cover it). Pure and
//! shared by native and wasm, so the trainer records it and the page can recompute it from a
//! file's embedding.

use crate::rng;

/// Draws from the prior, each `z ~ N(0, I)` with dim `t` of draw `j` = `rng::normal(COVERAGE_SEED, j, t)`.
pub const COVERAGE_DRAWS: u32 = 1000;
/// Seed of the draws: fixed, so a recorded figure can be reproduced anywhere.
pub const COVERAGE_SEED: u32 = 0x00C0_7E12;
/// The radius in units of the embedding's per-dimension RMS spread.
pub const COVERAGE_RADIUS: f64 = 0.05;

/// The share of [`COVERAGE_DRAWS`] fixed draws z ~ N(0, I) whose nearest embedding point lies
/// within `r = COVERAGE_RADIUS * s` of them, where `s = sqrt(mean_i |e_i - c|^2 / latent)` is the
/// per-dimension RMS spread of the embedding points `e_i` around their centroid `c`.
///
/// `embedding` holds `n * latent` values (the encoder means of the whole test set, all latent
/// dimensions). Because `r` scales with the embedding's own spread, the figure measures where
/// the points lie relative to the prior, not how many there are: an embedding that fills the
/// prior's bulk densely scores near 1, one off to the side or shrunk to a small region scores
/// near 0. An empty embedding, or one whose points all coincide, covers nothing: 0.
pub fn prior_coverage(embedding: &[f32], latent: usize) -> f64 {
    if latent == 0 || embedding.len() < latent {
        return 0.0;
    }
    let points: Vec<&[f32]> = embedding.chunks_exact(latent).collect();
    let n = points.len() as f64;
    let mut centroid = vec![0.0f64; latent];
    for p in &points {
        for (c, &v) in centroid.iter_mut().zip(p.iter()) {
            *c += v as f64 / n;
        }
    }
    let mean_sq: f64 = points.iter().map(|p| p.iter().zip(&centroid).map(|(&v, c)| (v as f64 - c).powi(2)).sum::<f64>()).sum::<f64>() / n;
    let spread = (mean_sq / latent as f64).sqrt();
    let r2 = (COVERAGE_RADIUS * spread).powi(2);
    let mut z = vec![0.0f64; latent];
    let covered = (0..COVERAGE_DRAWS)
        .filter(|&j| {
            for (t, zt) in z.iter_mut().enumerate() {
                *zt = rng::normal(COVERAGE_SEED, j, t as u32) as f64;
            }
            points.iter().any(|p| p.iter().zip(&z).map(|(&v, zt)| (v as f64 - zt).powi(2)).sum::<f64>() <= r2)
        })
        .count();
    covered as f64 / COVERAGE_DRAWS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draws themselves, as the doc comment defines them.
    fn draws() -> Vec<[f64; 2]> {
        (0..COVERAGE_DRAWS).map(|j| [rng::normal(COVERAGE_SEED, j, 0) as f64, rng::normal(COVERAGE_SEED, j, 1) as f64]).collect()
    }

    /// A dense grid over the box [-1, 1]^2 (spacing 0.01): its spread is that of the uniform
    /// distribution on the box, s = 1/sqrt(3) (to 1%), so r = 0.05 s = 0.029, while a draw
    /// inside the box is at most 0.0071 from a grid point. So every draw inside the box is
    /// covered, and no draw farther than r outside it: the coverage lies between the shares of
    /// draws in the box and in the box grown by r on each side, and about P(|z| <= 1)^2 = 0.466.
    #[test]
    fn a_dense_grid_over_a_box_covers_the_draws_in_the_box() {
        let k = 201;
        let embedding: Vec<f32> = (0..k * k).flat_map(|i| [(i / k) as f32 / 100.0 - 1.0, (i % k) as f32 / 100.0 - 1.0]).collect();
        let coverage = prior_coverage(&embedding, 2);
        let share = |half: f64| draws().iter().filter(|z| z[0].abs() <= half && z[1].abs() <= half).count() as f64 / COVERAGE_DRAWS as f64;
        let r = COVERAGE_RADIUS / 3f64.sqrt();
        let (inside, grown) = (share(1.0), share(1.0 + 1.01 * r));
        assert!(inside <= coverage && coverage <= grown, "coverage {coverage}, box {inside}, grown box {grown}");
        // And against the closed form: erf(1/sqrt 2)^2 = 0.4661, within 3 binomial sd of 1000 draws.
        assert!((inside - 0.4661).abs() < 0.05, "{inside} of the draws fall in the box");
    }

    /// An embedding far from the origin covers none of the prior; one point alone covers
    /// nothing either (its spread is 0).
    #[test]
    fn an_embedding_far_from_the_prior_or_a_single_point_covers_nothing() {
        let far: Vec<f32> = (0..400).flat_map(|i| [50.0 + (i % 20) as f32 * 0.1, 50.0 + (i / 20) as f32 * 0.1, 0.0]).collect();
        assert_eq!(prior_coverage(&far, 3), 0.0);
        assert_eq!(prior_coverage(&[0.0, 0.0], 2), 0.0);
        assert_eq!(prior_coverage(&[], 2), 0.0);
    }
}
