//! What a model is (`vae`, `ae`, `pca`) and what its reconstruction term scores (`bce`, `mse`):
//! the two fields of an `Architecture` that older files lack (serde defaults: a BCE VAE).

use serde::{Deserialize, Serialize};

/// The kind of model: which encoder heads exist and how it is trained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Variational autoencoder: mean and log-variance heads, z sampled, ELBO with KL.
    #[default]
    Vae,
    /// Plain autoencoder: the mean head only, z = mu, reconstruction loss only.
    Ae,
    /// Principal component analysis: one linear layer each way, fitted in closed form.
    Pca,
}

impl ModelKind {
    /// Whether the encoder is a Gaussian with a log-variance head (else z = mu).
    pub fn is_variational(self) -> bool {
        self == ModelKind::Vae
    }
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Vae => "vae",
            ModelKind::Ae => "ae",
            ModelKind::Pca => "pca",
        }
    }
}

/// The reconstruction term per image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReconstructionLoss {
    /// Binary cross-entropy, summed over pixels: -log p(x|z) of a Bernoulli decoder.
    #[default]
    Bce,
    /// Squared error, summed over pixels.
    Mse,
}

impl ReconstructionLoss {
    pub fn name(self) -> &'static str {
        match self {
            ReconstructionLoss::Bce => "bce",
            ReconstructionLoss::Mse => "mse",
        }
    }
}
