//! What the page's teaching panels need: corrupting an input (denoising and completion), the
//! ELBO of one picture, the principal axes of a larger latent, and the shipped test subset.
//! Translations only: the work is `crate::corrupt`, `crate::elbo`, `crate::projection` and
//! `crate::testset`.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::corrupt::{self, Rect};
use crate::elbo;
use crate::projection::Projection;
use crate::testset::{self, TestSet};

use super::browser::{coded_err, to_js};
use super::explorer::Explorer;

/// The seed of the page's noise: fixed, so one strength always gives the same corruption (the
/// browser tests recompute it independently).
pub const NOISE_SEED: u32 = 2024;

/// `pixels` with Gaussian noise of standard deviation `strength` (in [0, 1]) added and clamped to
/// [0, 1], drawn with `NOISE_SEED` (`crate::corrupt::add_noise`).
#[wasm_bindgen(js_name = addNoise)]
pub fn add_noise(pixels: Vec<f32>, strength: f32) -> Result<Vec<f32>, JsValue> {
    corrupt::add_noise(&pixels, strength, NOISE_SEED).map_err(|e| coded_err(&e))
}

/// `pixels` (a `side * side` picture) with columns `x0..x1` of rows `y0..y1` set to 0; the
/// rectangle is clamped to the picture (`crate::corrupt::erase`).
#[wasm_bindgen(js_name = eraseRect)]
pub fn erase_rect(pixels: Vec<f32>, side: usize, x0: i32, y0: i32, x1: i32, y1: i32) -> Result<Vec<f32>, JsValue> {
    corrupt::erase(&pixels, side, Rect { x0, y0, x1, y1 }).map_err(|e| coded_err(&e))
}

/// How many draws of q(z|x) the page's ELBO averages over, and their seed: fixed, so the same
/// drawing always shows the same figures (the browser tests recompute them independently).
pub const ELBO_SAMPLES: usize = 16;
pub const ELBO_SEED: u32 = 11;

/// One picture's ELBO terms as the page shows them.
#[derive(Serialize)]
struct Elbo {
    reconstruction: f64,
    /// What `reconstruction` scores, the model's loss: "bce" (nats) or "mse" (squared error).
    loss: &'static str,
    /// `None` for an encoder without a logvar (deterministic: no KL term).
    kl: Option<f64>,
    /// Each pixel's share of the reconstruction term.
    map: Vec<f32>,
    samples: usize,
    seed: u32,
}

#[wasm_bindgen]
impl Explorer {
    /// The ELBO terms of `pixels` (`side * side` intensities) on the CPU reference, averaged over
    /// `ELBO_SAMPLES` draws with `ELBO_SEED` (`crate::elbo`): `{reconstruction, loss, kl, map,
    /// samples, seed}` in nats, `kl` null when the encoder gives no logvar.
    pub fn elbo(&self, pixels: Vec<f32>) -> Result<JsValue, JsValue> {
        let terms = elbo::elbo(self.inner.backend.vae(), &pixels, ELBO_SAMPLES, ELBO_SEED).map_err(|e| coded_err(&e))?;
        to_js(&Elbo {
            reconstruction: terms.reconstruction,
            loss: terms.loss.name(),
            kl: terms.kl,
            map: terms.pixel_reconstruction,
            samples: ELBO_SAMPLES,
            seed: ELBO_SEED,
        })
    }
}

/// `NOISE_SEED`, for the page's caption.
#[wasm_bindgen(js_name = noiseSeed)]
pub fn noise_seed() -> u32 {
    NOISE_SEED
}

/// The principal axes of an embedding (`crate::projection`), for latents of more than two
/// dimensions: the plane shows the coordinates along the first two.
#[wasm_bindgen(js_name = Projection)]
pub struct PrincipalAxes {
    inner: Projection,
}

#[wasm_bindgen(js_class = Projection)]
impl PrincipalAxes {
    /// The axes of `points` (`n * d` values, row-major), by decreasing variance.
    #[wasm_bindgen(constructor)]
    pub fn new(points: Vec<f32>, d: usize) -> Result<PrincipalAxes, JsValue> {
        Ok(PrincipalAxes { inner: Projection::fit(&points, d).map_err(|e| coded_err(&e))? })
    }

    /// `z`'s coordinates along the axes, relative to the embedding's centroid.
    pub fn coords(&self, z: Vec<f32>) -> Result<Vec<f32>, JsValue> {
        self.inner.coords(&z).map_err(|e| coded_err(&e))
    }

    /// The latent point with these coordinates (the inverse of `coords`).
    pub fn point(&self, coords: Vec<f32>) -> Result<Vec<f32>, JsValue> {
        self.inner.point(&coords).map_err(|e| coded_err(&e))
    }
}

/// A shipped test subset (`crate::testset`), for the plane of a model without an embedding.
#[wasm_bindgen(js_name = Testset)]
pub struct ShippedTestSet {
    inner: TestSet,
}

#[wasm_bindgen(js_class = Testset)]
impl ShippedTestSet {
    /// Reads a test subset file's bytes; rejects with what is wrong with it.
    pub fn parse(bytes: Vec<u8>) -> Result<ShippedTestSet, JsValue> {
        Ok(ShippedTestSet { inner: testset::from_bytes(&bytes).map_err(|e| coded_err(&e))? })
    }

    /// How many images it holds.
    pub fn count(&self) -> usize {
        self.inner.len()
    }

    /// Image side in pixels.
    pub fn side(&self) -> usize {
        (testset::PIXELS as f64).sqrt() as usize
    }

    /// The images as intensities in [0, 1] (`len * side * side`), as the models take them.
    pub fn images(&self) -> Vec<f32> {
        self.inner.images.iter().map(|&v| v as f32 / 255.0).collect()
    }

    pub fn labels(&self) -> Vec<u8> {
        self.inner.labels.clone()
    }

    /// One name per label value.
    pub fn classes(&self) -> Vec<String> {
        self.inner.classes.clone()
    }
}
