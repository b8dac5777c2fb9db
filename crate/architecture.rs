//! The shape of an MLP VAE, and the names and shapes of its parameter tensors.
//!
//! Everything that needs to know "which tensors exist" (the weights file, the optimiser, the GPU
//! engine) derives it from here, so the layout is written down exactly once.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
pub use crate::kind::{ModelKind, ReconstructionLoss};

/// Pixels per MNIST image: the input and output size of every model this crate ships.
pub const IMAGE_SIDE: usize = 28;
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Layer sizes and activations. Stored as JSON in the weights file's `architecture` metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// Input (and output) size: 784 for 28x28 images.
    pub input: usize,
    /// Encoder hidden layers, input side first (e.g. [512, 256]).
    pub encoder_hidden: Vec<usize>,
    /// Latent dimension (2 for the explorer's plane).
    pub latent: usize,
    /// Decoder hidden layers, latent side first (the mirror of the encoder by default).
    pub decoder_hidden: Vec<usize>,
    /// Activation after every hidden layer.
    pub hidden_activation: Activation,
    /// Activation of the decoder output: pixel means of the Bernoulli likelihood.
    pub output_activation: Activation,
    /// What the encoder is: a VAE's Gaussian q(z|x), or a deterministic map. Files written
    /// before kinds existed have none and are VAEs.
    #[serde(default)]
    pub kind: ModelKind,
    /// What the reconstruction term scores (files without it used BCE).
    #[serde(default)]
    pub loss: ReconstructionLoss,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Sigmoid,
    Identity,
}

/// One dense layer: `y = act(x W^T + b)`, with `W` stored as [out, in] like PyTorch `nn.Linear`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// Tensor name prefix, e.g. `encoder.0` (tensors are `encoder.0.weight` and `encoder.0.bias`).
    pub name: String,
    pub n_in: usize,
    pub n_out: usize,
    pub activation: Activation,
}

impl LayerSpec {
    pub fn weight_name(&self) -> String {
        format!("{}.weight", self.name)
    }
    pub fn bias_name(&self) -> String {
        format!("{}.bias", self.name)
    }
    pub fn n_params(&self) -> usize {
        self.n_in * self.n_out + self.n_out
    }
}

impl Default for Architecture {
    fn default() -> Self {
        Architecture::mirrored(IMAGE_PIXELS, &[512, 256], 2)
    }
}

impl Architecture {
    /// Encoder `input -> hidden... -> latent`, decoder the mirror image.
    pub fn mirrored(input: usize, hidden: &[usize], latent: usize) -> Self {
        Architecture {
            input,
            encoder_hidden: hidden.to_vec(),
            latent,
            decoder_hidden: hidden.iter().rev().copied().collect(),
            hidden_activation: Activation::Relu,
            output_activation: Activation::Sigmoid,
            kind: ModelKind::Vae,
            loss: ReconstructionLoss::Bce,
        }
    }

    /// PCA with `latent` components of `input` values: no hidden layers, identity output,
    /// scored by squared error (what PCA minimises).
    pub fn pca(input: usize, latent: usize) -> Self {
        Architecture {
            output_activation: Activation::Identity,
            kind: ModelKind::Pca,
            loss: ReconstructionLoss::Mse,
            ..Architecture::mirrored(input, &[], latent)
        }
    }

    /// Rejects shapes no model can have, so later code can index without checks.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |what: String| Err(ModelError::Architecture(what));
        if self.input == 0 {
            return bad("input size is 0".into());
        }
        if self.latent == 0 {
            return bad("latent size is 0".into());
        }
        if let Some(i) = self.encoder_hidden.iter().position(|&h| h == 0) {
            return bad(format!("encoder hidden layer {i} has size 0"));
        }
        if let Some(i) = self.decoder_hidden.iter().position(|&h| h == 0) {
            return bad(format!("decoder hidden layer {i} has size 0"));
        }
        if self.hidden_activation == Activation::Sigmoid {
            return bad("hidden activation must be relu or identity".into());
        }
        match self.kind {
            ModelKind::Vae | ModelKind::Ae if self.output_activation != Activation::Sigmoid => {
                return bad(format!("a {}'s output activation must be sigmoid (pixel means in [0, 1])", self.kind.name()));
            }
            ModelKind::Pca if !(self.encoder_hidden.is_empty() && self.decoder_hidden.is_empty()) => {
                return bad("a pca has no hidden layers".into());
            }
            ModelKind::Pca if self.output_activation != Activation::Identity => {
                return bad("a pca's output activation must be identity".into())
            }
            ModelKind::Pca if self.latent > self.input => {
                return bad(format!("a pca has at most as many components as inputs ({} > {})", self.latent, self.input));
            }
            _ => {}
        }
        // A guard against absurd metadata: ~1 G parameters would not fit in a browser anyway.
        if self.n_params() > 1 << 30 {
            return bad(format!("{} parameters is more than this crate supports", self.n_params()));
        }
        Ok(())
    }

    /// Encoder trunk layers (`encoder.0`, `encoder.1`, ...), without the two heads.
    pub fn encoder_layers(&self) -> Vec<LayerSpec> {
        chain("encoder", self.input, &self.encoder_hidden, self.hidden_activation)
    }

    /// The heads fed by the last encoder layer: the mean, then (a VAE only) the log-variance.
    /// Deterministic kinds have no `encoder.logvar` tensors.
    pub fn head_layers(&self) -> Vec<LayerSpec> {
        let n_in = self.encoder_hidden.last().copied().unwrap_or(self.input);
        let head = |name: &str| LayerSpec { name: format!("encoder.{name}"), n_in, n_out: self.latent, activation: Activation::Identity };
        let names: &[&str] = if self.kind.is_variational() { &["mu", "logvar"] } else { &["mu"] };
        names.iter().map(|n| head(n)).collect()
    }

    /// Decoder hidden layers then `decoder.out`, whose activation is the output activation.
    pub fn decoder_layers(&self) -> Vec<LayerSpec> {
        let mut layers = chain("decoder", self.latent, &self.decoder_hidden, self.hidden_activation);
        let n_in = self.decoder_hidden.last().copied().unwrap_or(self.latent);
        layers.push(LayerSpec { name: "decoder.out".into(), n_in, n_out: self.input, activation: self.output_activation });
        layers
    }

    /// Every layer in parameter order: encoder trunk, mu head, logvar head (VAE), decoder.
    pub fn all_layers(&self) -> Vec<LayerSpec> {
        let mut layers = self.encoder_layers();
        layers.extend(self.head_layers());
        layers.extend(self.decoder_layers());
        layers
    }

    pub fn n_params(&self) -> usize {
        self.all_layers().iter().map(LayerSpec::n_params).sum()
    }

    /// Parameter tensors as (name, shape), in the order of the flat parameter vector.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.all_layers().into_iter().flat_map(|l| [(l.weight_name(), vec![l.n_out, l.n_in]), (l.bias_name(), vec![l.n_out])]).collect()
    }

    /// Human-readable summary, e.g. `784-512-256-(2) / 2-256-512-784`.
    pub fn describe(&self) -> String {
        let join = |v: &[usize]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("-");
        let mut enc = vec![self.input];
        enc.extend(&self.encoder_hidden);
        let mut dec = vec![self.latent];
        dec.extend(&self.decoder_hidden);
        dec.push(self.input);
        let kind = if self.kind.is_variational() { String::new() } else { format!("{} ", self.kind.name()) };
        format!("{kind}{}-({}) / {}", join(&enc), self.latent, join(&dec))
    }
}

fn chain(prefix: &str, input: usize, hidden: &[usize], activation: Activation) -> Vec<LayerSpec> {
    let mut n_in = input;
    hidden
        .iter()
        .enumerate()
        .map(|(i, &n_out)| {
            let layer = LayerSpec { name: format!("{prefix}.{i}"), n_in, n_out, activation };
            n_in = n_out;
            layer
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_architecture_has_the_documented_tensors() {
        let arch = Architecture::default();
        let names: Vec<String> = arch.tensor_shapes().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "encoder.0.weight",
                "encoder.0.bias",
                "encoder.1.weight",
                "encoder.1.bias",
                "encoder.mu.weight",
                "encoder.mu.bias",
                "encoder.logvar.weight",
                "encoder.logvar.bias",
                "decoder.0.weight",
                "decoder.0.bias",
                "decoder.1.weight",
                "decoder.1.bias",
                "decoder.out.weight",
                "decoder.out.bias",
            ]
        );
        // 784*512+512 + 512*256+256 + 2*(256*2+2) + 2*256+256 + 256*512+512 + 512*784+784
        assert_eq!(arch.n_params(), 1_068_820);
        assert_eq!(arch.describe(), "784-512-256-(2) / 2-256-512-784");
    }

    #[test]
    fn no_hidden_layers_connects_heads_to_input() {
        let arch = Architecture::mirrored(10, &[], 3);
        arch.validate().unwrap();
        assert_eq!(arch.head_layers()[0].n_in, 10);
        assert_eq!(arch.decoder_layers()[0].n_in, 3);
    }

    #[test]
    fn deterministic_kinds_have_no_logvar_head_and_pca_is_checked() {
        let ae = Architecture { kind: ModelKind::Ae, ..Architecture::mirrored(10, &[4], 2) };
        ae.validate().unwrap();
        assert!(ae.tensor_shapes().iter().all(|(n, _)| !n.contains("logvar")));
        assert_eq!(ae.n_params(), Architecture::mirrored(10, &[4], 2).n_params() - (4 * 2 + 2));
        Architecture::pca(10, 3).validate().unwrap();
        assert!(Architecture::pca(10, 11).validate().is_err());
        assert!(Architecture { encoder_hidden: vec![4], ..Architecture::pca(10, 3) }.validate().is_err());
        assert!(Architecture { output_activation: Activation::Sigmoid, ..Architecture::pca(10, 3) }.validate().is_err());
        assert!(Architecture { output_activation: Activation::Identity, ..ae }.validate().is_err());
    }

    #[test]
    fn a_description_without_kind_or_loss_is_a_bce_vae() {
        let json =
            r#"{"input":6,"encoder_hidden":[4],"latent":2,"decoder_hidden":[4],"hidden_activation":"relu","output_activation":"sigmoid"}"#;
        let arch: Architecture = serde_json::from_str(json).unwrap();
        assert_eq!((arch.kind, arch.loss), (ModelKind::Vae, ReconstructionLoss::Bce));
        let pca: Architecture = serde_json::from_str(&serde_json::to_string(&Architecture::pca(6, 2)).unwrap()).unwrap();
        assert_eq!(pca, Architecture::pca(6, 2));
    }

    #[test]
    fn zero_sizes_are_rejected() {
        assert!(Architecture::mirrored(784, &[512, 0], 2).validate().is_err());
        assert!(Architecture::mirrored(784, &[512], 0).validate().is_err());
    }
}
