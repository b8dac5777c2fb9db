//! What the page's teaching panels need: corrupting an input (denoising and completion), the
//! ELBO of one picture, the principal axes of a larger latent, and the shipped test subset.
//! Translations only: the work is `crate::corrupt`, `crate::elbo`, `crate::projection` and
//! `crate::testset`.

use wasm_bindgen::prelude::*;

use crate::corrupt::{self, Rect};
use crate::projection::Projection;

use super::browser::js_err;

/// The seed of the page's noise: fixed, so one strength always gives the same corruption (the
/// browser tests recompute it independently).
pub const NOISE_SEED: u32 = 2024;

/// `pixels` with Gaussian noise of standard deviation `strength` (in [0, 1]) added and clamped to
/// [0, 1], drawn with [`NOISE_SEED`] (`crate::corrupt::add_noise`).
#[wasm_bindgen(js_name = addNoise)]
pub fn add_noise(pixels: Vec<f32>, strength: f32) -> Result<Vec<f32>, JsValue> {
    corrupt::add_noise(&pixels, strength, NOISE_SEED).map_err(js_err)
}

/// `pixels` (a `side * side` picture) with columns `x0..x1` of rows `y0..y1` set to 0; the
/// rectangle is clamped to the picture (`crate::corrupt::erase`).
#[wasm_bindgen(js_name = eraseRect)]
pub fn erase_rect(pixels: Vec<f32>, side: usize, x0: i32, y0: i32, x1: i32, y1: i32) -> Result<Vec<f32>, JsValue> {
    corrupt::erase(&pixels, side, Rect { x0, y0, x1, y1 }).map_err(js_err)
}

/// [`NOISE_SEED`], for the page's caption.
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
        Ok(PrincipalAxes { inner: Projection::fit(&points, d).map_err(js_err)? })
    }

    /// `z`'s coordinates along the axes, relative to the embedding's centroid.
    pub fn coords(&self, z: Vec<f32>) -> Result<Vec<f32>, JsValue> {
        self.inner.coords(&z).map_err(js_err)
    }

    /// The latent point with these coordinates (the inverse of `coords`).
    pub fn point(&self, coords: Vec<f32>) -> Result<Vec<f32>, JsValue> {
        self.inner.point(&coords).map_err(js_err)
    }
}
