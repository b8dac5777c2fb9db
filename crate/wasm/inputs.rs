//! Preprocessing for the page's inputs (drawings, uploads), and the constants it shares with it.

use wasm_bindgen::prelude::*;

use crate::preprocess;

use super::browser::coded_err;

/// RGBA pixels of any picture to an MNIST-like input (784 intensities), as the model expects.
#[wasm_bindgen(js_name = preprocessRgba)]
pub fn preprocess_rgba(rgba: Vec<u8>, width: usize, height: usize) -> Result<Vec<f32>, JsValue> {
    preprocess::rgba_to_mnist(&rgba, width, height).map_err(|e| coded_err(&e))
}

// ---- Constants the page shares with the Rust side, exported so that www/ need not repeat them.

/// The largest picture `preprocessRgba` accepts, in pixels (width times height): the page
/// refuses a bigger upload with its own message before drawing it onto a canvas.
#[wasm_bindgen(js_name = maxUploadPixels)]
pub fn max_upload_pixels() -> usize {
    crate::preprocess::MAX_PIXELS
}
