//! `train --kind pca`: the exact top-`latent` principal components of the training images,
//! stored as a linear model the rest of the crate runs like any other (CPU reference, GPU, page).
//!
//! The pixel covariance (`input x input`) is formed with the crate's GEMM, chunk by chunk over
//! the centred images, and decomposed in f64 with `nalgebra`'s `SymmetricEigen`. The model is
//! an encoder `z = W (x - mean)` (`encoder.mu.weight` = W, the components as rows `[k, input]`,
//! bias = -W mean) and a decoder `x = W^T z + mean` (`decoder.out.weight` = W^T, bias = mean),
//! identity activations: the least-squares reconstruction from `k` dimensions.
//!
//! Signs: an eigenvector is defined up to its sign, so each component is flipped to make its
//! largest-magnitude entry positive (the first such entry on a tie), and the same data always
//! gives the same file.

use nalgebra::{DMatrix, SymmetricEigen};
use serde::Serialize;

use crate::architecture::Architecture;
use crate::error::ModelError;
use crate::gemm::{gemm_par, Op};
use crate::model::Vae;

/// Images per GEMM when forming the covariance: bounds the centred copy's memory.
const CHUNK_ROWS: usize = 4096;

/// A fitted PCA.
#[derive(Clone, Debug)]
pub struct Pca {
    /// Pixel means, `input`.
    pub mean: Vec<f64>,
    /// The components as rows, `latent * input`, largest variance first, unit length.
    pub components: Vec<f64>,
    /// The variance along each component (its covariance eigenvalue).
    pub variances: Vec<f64>,
    /// The total pixel variance (the covariance's trace).
    pub total_variance: f64,
}

/// The one line of a PCA run's `.train.jsonl` log.
#[derive(Clone, Debug, Serialize)]
pub struct PcaRecord {
    pub fit_seconds: f64,
    /// Variance along each component.
    pub explained_variance: Vec<f64>,
    /// Each component's share of the total pixel variance.
    pub explained_variance_ratio: Vec<f64>,
}

/// The population covariance (divided by `n`) of `images` (bytes, `n * input`, scaled to
/// [0, 1]), row-major `input * input`, and the pixel means. Runs in the current rayon pool.
pub fn covariance(images: &[u8], input: usize) -> (Vec<f64>, Vec<f64>) {
    let n = images.len() / input.max(1);
    let mut mean = vec![0.0f64; input];
    for row in images.chunks_exact(input) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= 255.0 * n.max(1) as f64);
    let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let mut cov = vec![0.0f32; input * input];
    let mut centred = Vec::with_capacity(CHUNK_ROWS.min(n) * input);
    for chunk in images.chunks(CHUNK_ROWS * input) {
        centred.clear();
        centred.extend(chunk.iter().zip(mean32.iter().cycle()).map(|(&v, &m)| v as f32 / 255.0 - m));
        let rows = chunk.len() / input;
        // cov += centred^T centred
        gemm_par(input, rows, input, &centred, Op::T, &centred, Op::N, 1.0, &mut cov);
    }
    (cov.iter().map(|&c| c as f64 / n.max(1) as f64).collect(), mean)
}

/// Fits the top `latent` principal components of `images` (`n * input` bytes).
pub fn fit(images: &[u8], input: usize, latent: usize) -> Result<Pca, ModelError> {
    let n = images.len() / input.max(1);
    if latent == 0 || latent > input || n < 2 {
        return Err(ModelError::Config(format!(
            "PCA of {latent} components needs 1..={input} components and at least 2 images ({n} given)"
        )));
    }
    let (cov, mean) = covariance(images, input);
    let eigen = SymmetricEigen::new(DMatrix::from_row_slice(input, input, &cov));
    let mut order: Vec<usize> = (0..input).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let mut components = Vec::with_capacity(latent * input);
    for &j in &order[..latent] {
        let v = eigen.eigenvectors.column(j);
        let largest = (0..input).fold(0, |best, i| if v[i].abs() > v[best].abs() { i } else { best });
        let sign = if v[largest] < 0.0 { -1.0 } else { 1.0 };
        components.extend(v.iter().map(|&x| sign * x));
    }
    let variances = order[..latent].iter().map(|&j| eigen.eigenvalues[j].max(0.0)).collect();
    let total_variance = (0..input).map(|i| cov[i * input + i]).sum();
    Ok(Pca { mean, components, variances, total_variance })
}

impl Pca {
    /// The linear model: encoder `W (x - mean)`, decoder `W^T z + mean` (see the module doc).
    pub fn to_model(&self) -> Result<Vae, ModelError> {
        let input = self.mean.len();
        let latent = self.components.len() / input.max(1);
        let arch = Architecture::pca(input, latent);
        let w = &self.components;
        let mut params = Vec::with_capacity(arch.n_params());
        // encoder.mu: weight [k, input], bias -W mean
        params.extend(w.iter().map(|&v| v as f32));
        params.extend(w.chunks_exact(input).map(|row| -row.iter().zip(&self.mean).map(|(a, b)| a * b).sum::<f64>() as f32));
        // decoder.out: weight W^T [input, k], bias mean
        params.extend((0..input).flat_map(|i| (0..latent).map(move |c| w[c * input + i] as f32)));
        params.extend(self.mean.iter().map(|&m| m as f32));
        Vae::new(arch, params)
    }

    /// The log line, given the fit's duration.
    pub fn record(&self, fit_seconds: f64) -> PcaRecord {
        PcaRecord {
            fit_seconds,
            explained_variance: self.variances.clone(),
            explained_variance_ratio: self.variances.iter().map(|v| v / self.total_variance.max(f64::MIN_POSITIVE)).collect(),
        }
    }
}
