//! latent-explorer: a variational autoencoder you can look inside.
//!
//! The CPU reference model ([`model`]) is the truth; the weights file ([`weights`]), the data
//! parsing ([`idx`]) and the random numbers ([`rng`]) are shared by the native trainer and the
//! browser build. Native-only parts (file system, downloads, the training CLI's loop) are behind
//! `cfg(not(target_arch = "wasm32"))`.
//!
//! Load a model, decode a latent point, encode a picture, and draw samples around it:
//!
//! ```
//! use latent_explorer::{model, weights};
//!
//! let bytes = std::fs::read("www/models/mnist-2d.safetensors")?;
//! let file = weights::from_bytes(&bytes)?; // checks every tensor; errors name the bad one
//! let vae = &file.vae;
//! let pixels = vae.decode(&[0.5, -1.0])?; // one 2-D latent point -> 784 pixel means in [0, 1]
//! assert_eq!(pixels.len(), 784);
//! let model::Encoding { mu, logvar } = vae.encode(&pixels)?; // q(z|x) of that picture
//! let logvar = logvar.expect("a VAE's encoder has a log-variance head"); // an autoencoder's has none
//! assert_eq!((mu.len(), logvar.len()), (2, 2));
//! let z = model::reparameterize(&mu, &logvar, 2, 16, 7, 0); // 16 draws of z = mu + sigma * eps
//! assert_eq!(vae.decode(&z)?.len(), 16 * 784);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod architecture;
pub mod backend;
pub mod classes;
pub mod corrupt;
pub mod coverage;
pub mod elbo;
pub mod error;
pub mod error_code;
pub mod gemm;
pub mod gpu;
pub mod idx;
pub mod kind;
pub mod loss;
pub mod model;
pub mod preprocess;
pub mod projection;
pub mod rng;
pub mod session;
pub mod testset;
pub mod train;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

#[cfg(not(target_arch = "wasm32"))]
pub mod dataset;
#[cfg(not(target_arch = "wasm32"))]
pub mod fsutil;

pub use architecture::{Activation, Architecture, ModelKind, ReconstructionLoss};
pub use error::{DataError, ModelError};
pub use loss::LossTerms;
pub use model::Vae;
