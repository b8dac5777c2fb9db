//! The JavaScript interface of the browser build: one `Explorer` object per loaded model.
//!
//! Only a translation: where the model runs, GPU or CPU, and why (the race of the two, recovery
//! from a lost device, the fall back to the CPU) is `crate::backend`, native Rust that `cargo
//! test` covers. What stays here is the browser's own: whether it has WebGPU at all, its clock,
//! the digit canvas's surface, and the conversions to JavaScript values.
//! Async methods return Promises; the state lives behind `Rc` so futures own what they use.
//!
//! One file per idea: `browser` (the browser's clock, marks, WebGPU detection, conversions to
//! JavaScript values), `surface` (the digit canvas's WebGPU surface), `explorer` (the `Explorer`
//! class), `inputs` (preprocessing exports and the constants the page shares with Rust), `teach`
//! (what the teaching panels need: corruption, the ELBO, principal axes, the test subset),
//! `training` (the Train panel's runs, on the CPU in its worker or on WebGPU).

mod browser;
mod explorer;
mod inputs;
mod surface;
mod teach;
mod training;

pub use browser::DIGIT_MARK;
pub use explorer::Explorer;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
