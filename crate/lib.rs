//! latent-explorer: a variational autoencoder you can look inside.
//!
//! The CPU reference model ([`model`]) is the truth; the weights file ([`weights`]), the data
//! parsing ([`idx`]) and the random numbers ([`rng`]) are shared by the native trainer and the
//! browser build. Native-only parts (file system, downloads, training) are behind
//! `cfg(not(target_arch = "wasm32"))`.

pub mod architecture;
pub mod digit_view;
pub mod error;
pub mod gemm;
pub mod gpu;
pub mod idx;
pub mod model;
pub mod preprocess;
pub mod rng;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

#[cfg(not(target_arch = "wasm32"))]
pub mod dataset;
#[cfg(not(target_arch = "wasm32"))]
pub mod fsutil;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;

pub use architecture::{Activation, Architecture};
pub use error::{DataError, ModelError};
pub use model::{LossTerms, Vae};
