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
    let covered = (0..COVERAGE_DRAWS)
        .filter(|&j| {
            let z = draw(j, latent);
            points.iter().any(|p| p.iter().zip(&z).map(|(&v, zt)| (v as f64 - zt).powi(2)).sum::<f64>() <= r2)
        })
        .count();
    covered as f64 / COVERAGE_DRAWS as f64
}

/// The radius of the ball around 0 that holds 99% of the [`COVERAGE_DRAWS`] fixed draws: the
/// 990th smallest norm (about 3.03 for a 2-D latent, the chi distribution's 99th percentile).
pub fn prior_radius_99(latent: usize) -> f64 {
    let mut norms: Vec<f64> = (0..COVERAGE_DRAWS).map(|j| draw(j, latent).iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
    norms.sort_by(f64::total_cmp);
    norms[(COVERAGE_DRAWS as usize * 99).div_ceil(100) - 1]
}

/// The other side of [`prior_coverage`]: the share of the embedding's points (the test set's
/// codes) that lie inside the ball holding 99% of the prior's draws ([`prior_radius_99`]). A
/// VAE's KL term keeps its codes there; an autoencoder's codes may spread far past it, and the
/// prior's samples then reach only the digits near the origin. An empty embedding: 0.
pub fn codes_in_prior(embedding: &[f32], latent: usize) -> f64 {
    if latent == 0 || embedding.len() < latent {
        return 0.0;
    }
    let r2 = prior_radius_99(latent).powi(2);
    let points = embedding.chunks_exact(latent);
    let n = points.len();
    let inside = points.filter(|p| p.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() <= r2).count();
    inside as f64 / n as f64
}

/// How the prior's mass is shared between the classes: for each class `c < n_classes`, the share
/// of the [`COVERAGE_DRAWS`] fixed draws whose nearest embedding point has label `c` (the digit a
/// sample from the prior most likely decodes to). Near `1 / n_classes` each when the codes fill
/// the prior evenly; an autoencoder gives some digits almost none. `labels` has one label per
/// embedding point (labels past `n_classes` are not counted); an empty embedding: all 0.
pub fn prior_share_by_class(embedding: &[f32], labels: &[u8], latent: usize, n_classes: usize) -> Vec<f64> {
    let mut share = vec![0.0; n_classes];
    if latent == 0 || labels.is_empty() || embedding.len() != labels.len() * latent {
        return share;
    }
    for j in 0..COVERAGE_DRAWS {
        let z = draw(j, latent);
        let nearest = embedding
            .chunks_exact(latent)
            .map(|p| p.iter().zip(&z).map(|(&v, zt)| (v as f64 - zt).powi(2)).sum::<f64>())
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| labels[i] as usize);
        if let Some(c) = nearest.filter(|&c| c < n_classes) {
            share[c] += 1.0 / COVERAGE_DRAWS as f64;
        }
    }
    share
}

/// Fixed draw `j`: dimension `t` is `rng::normal(COVERAGE_SEED, j, t)`.
fn draw(j: u32, latent: usize) -> Vec<f64> {
    (0..latent).map(|t| rng::normal(COVERAGE_SEED, j, t as u32) as f64).collect()
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

    /// The 99% radius of 2-D draws against the chi distribution's closed form: P(|z| <= r) =
    /// 1 - exp(-r^2 / 2) = 0.99 at r = sqrt(2 ln 100) = 3.035; the empirical quantile of 1000
    /// draws has a standard error of sqrt(0.99 * 0.01 / 1000) / (r exp(-r^2 / 2)) = 0.10.
    #[test]
    fn the_prior_ball_holds_99_percent_of_the_draws() {
        let r = prior_radius_99(2);
        assert!((r - (2.0 * 100f64.ln()).sqrt()).abs() < 0.35, "radius {r}");
        let inside = draws().iter().filter(|z| (z[0] * z[0] + z[1] * z[1]).sqrt() <= r).count();
        assert_eq!(inside, 990);
    }

    /// Codes on two circles, one inside the ball and one twice as far: half are inside.
    #[test]
    fn codes_in_prior_counts_the_codes_inside_the_ball() {
        let r = prior_radius_99(2) as f32;
        let ring = |radius: f32| (0..50).flat_map(move |i| [radius * (i as f32 * 0.1).cos(), radius * (i as f32 * 0.1).sin()]);
        let codes: Vec<f32> = ring(0.9 * r).chain(ring(2.0 * r)).chain(ring(2.5 * r)).chain(ring(0.5 * r)).collect();
        assert_eq!(codes_in_prior(&codes, 2), 0.5);
        assert_eq!(codes_in_prior(&[], 2), 0.0);
    }

    /// Two classes split by the line z1 = 0 (a fine grid, label 1 on the right): each class's
    /// share is the share of draws on its side; a third class with no codes gets none.
    #[test]
    fn each_class_gets_the_draws_nearest_its_codes() {
        let k = 121;
        let (mut codes, mut labels) = (Vec::new(), Vec::new());
        for i in 0..k * k {
            let (x, y) = ((i / k) as f32 * 0.05 - 3.0, (i % k) as f32 * 0.05 - 3.0);
            codes.extend([x + 0.025, y]);
            labels.push(u8::from(x + 0.025 > 0.0));
        }
        let share = prior_share_by_class(&codes, &labels, 2, 3);
        let right = draws().iter().filter(|z| z[0] > 0.0).count() as f64 / COVERAGE_DRAWS as f64;
        assert!((share[1] - right).abs() < 0.0105, "{share:?} vs {right} of the draws right of 0");
        assert!((share[0] + share[1] - 1.0).abs() < 1e-9 && share[2] == 0.0, "{share:?}");
    }
}
