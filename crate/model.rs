//! The CPU reference of the VAE: the truth every other path (GPU shaders, the trainer's
//! forward pass, the page's fallback) is checked against.
//!
//! Parameters live in one flat `Vec<f32>` in the order of [`Architecture::tensor_shapes`], so the
//! optimiser, gradient reduction and checkpoints treat them as one slice.

use crate::architecture::{Activation, Architecture, LayerSpec, ReconstructionLoss};
use crate::error::ModelError;
#[cfg(target_arch = "wasm32")]
use crate::gemm::gemm;
use crate::loss::{kl_standard_normal, reconstruction_errors, LossTerms};
// Natively, products split over the current rayon pool (bit-identical to the serial product).
#[cfg(not(target_arch = "wasm32"))]
use crate::gemm::gemm_par as gemm;
use crate::gemm::Op;
use crate::rng;

type GemmFn = fn(usize, usize, usize, &[f32], Op, &[f32], Op, f32, &mut [f32]);

/// Where each layer's weight and bias live inside the flat parameter vector.
#[derive(Clone, Debug)]
pub struct ParamLayout {
    pub layers: Vec<LayerSpec>,
    /// Offset of each layer's weight (`[out, in]`); its bias (`[out]`) follows directly.
    pub offsets: Vec<usize>,
    pub len: usize,
    /// Indices into `layers`.
    pub encoder: Vec<usize>,
    pub mu: usize,
    /// The log-variance head: a VAE's only (deterministic kinds have none).
    pub logvar: Option<usize>,
    pub decoder: Vec<usize>,
}

impl ParamLayout {
    pub fn new(arch: &Architecture) -> Self {
        let layers = arch.all_layers();
        let mut offsets = Vec::with_capacity(layers.len());
        let mut len = 0;
        for l in &layers {
            offsets.push(len);
            len += l.n_params();
        }
        let ne = arch.encoder_hidden.len();
        let logvar = arch.kind.is_variational().then_some(ne + 1);
        let first_decoder = ne + 1 + usize::from(logvar.is_some());
        ParamLayout { encoder: (0..ne).collect(), mu: ne, logvar, decoder: (first_decoder..layers.len()).collect(), layers, offsets, len }
    }

    /// (weight, bias) ranges of layer `i`.
    pub fn ranges(&self, i: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let l = &self.layers[i];
        let w = self.offsets[i]..self.offsets[i] + l.n_in * l.n_out;
        let b = w.end..w.end + l.n_out;
        (w, b)
    }

    /// Mutable (weight, bias) slices of layer `i` inside a parameter-shaped buffer.
    pub fn split_mut<'a>(&self, i: usize, buf: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
        let (w, b) = self.ranges(i);
        buf[w.start..b.end].split_at_mut(w.len())
    }
}

/// The encoder's output for `n` images: the means, and for a VAE the log-variances of q(z|x)
/// (`None` for a deterministic encoder, where z is the mean), each `n * latent`.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoding {
    pub mu: Vec<f32>,
    pub logvar: Option<Vec<f32>>,
}

/// A model (VAE, autoencoder or PCA, per its architecture's kind) with its parameters: encode,
/// decode, sample, and the loss terms.
#[derive(Clone, Debug)]
pub struct Vae {
    arch: Architecture,
    layout: ParamLayout,
    params: Vec<f32>,
}

impl Vae {
    /// Wraps existing parameters; their length must match the architecture.
    pub fn new(arch: Architecture, params: Vec<f32>) -> Result<Self, ModelError> {
        arch.validate()?;
        let layout = ParamLayout::new(&arch);
        if params.len() != layout.len {
            return Err(ModelError::Architecture(format!("{} parameters given, {} expects {}", params.len(), arch.describe(), layout.len)));
        }
        Ok(Vae { arch, layout, params })
    }

    /// PyTorch's `nn.Linear` default initialisation (uniform in +-1/sqrt(fan_in) for weights and
    /// biases), drawn from the counter-based generator so it is reproducible from the seed.
    pub fn init(arch: Architecture, seed: u32) -> Result<Self, ModelError> {
        arch.validate()?;
        let layout = ParamLayout::new(&arch);
        let mut params = vec![0.0f32; layout.len];
        let key = rng::derive_seed(seed, 0x1417);
        for (i, l) in layout.layers.iter().enumerate() {
            let bound = 1.0 / (l.n_in as f32).sqrt();
            let (w, b) = layout.ranges(i);
            for (j, p) in params.iter_mut().enumerate().take(b.end).skip(w.start) {
                let h = rng::pcg3d(key, j as u32, 0)[0];
                let u = (h >> 8) as f32 * (1.0 / 16_777_216.0);
                *p = (2.0 * u - 1.0) * bound;
            }
        }
        Ok(Vae { arch, layout, params })
    }

    pub fn arch(&self) -> &Architecture {
        &self.arch
    }
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// (spec, weight `[out, in]`, bias `[out]`) of layer `i`.
    pub fn layer(&self, i: usize) -> (&LayerSpec, &[f32], &[f32]) {
        let (w, b) = self.layout.ranges(i);
        (&self.layout.layers[i], &self.params[w], &self.params[b])
    }

    /// `y = x W^T + b` for `rows` inputs, without the activation. Natively the product is
    /// split over the current rayon pool.
    pub fn affine(&self, i: usize, x: &[f32], rows: usize, y: &mut [f32]) {
        self.affine_with(gemm, i, x, rows, y)
    }

    /// [`Vae::affine`] on the calling thread only, for callers that parallelise over batches.
    pub fn affine_serial(&self, i: usize, x: &[f32], rows: usize, y: &mut [f32]) {
        self.affine_with(crate::gemm::gemm, i, x, rows, y)
    }

    fn affine_with(&self, product: GemmFn, i: usize, x: &[f32], rows: usize, y: &mut [f32]) {
        let (l, w, b) = self.layer(i);
        debug_assert_eq!(x.len(), rows * l.n_in);
        let y = &mut y[..rows * l.n_out];
        for row in y.chunks_exact_mut(l.n_out) {
            row.copy_from_slice(b);
        }
        product(rows, l.n_in, l.n_out, x, Op::N, w, Op::T, 1.0, y);
    }

    /// A full dense layer: affine then the layer's activation.
    pub fn dense(&self, i: usize, x: &[f32], rows: usize, y: &mut [f32]) {
        self.affine(i, x, rows, y);
        let l = &self.layout.layers[i];
        activate(l.activation, &mut y[..rows * l.n_out]);
    }

    /// [`Vae::dense`] on the calling thread only: the trainer's forward pass runs each layer
    /// through this, so it evaluates the very function that inference evaluates.
    pub fn dense_serial(&self, i: usize, x: &[f32], rows: usize, y: &mut [f32]) {
        self.affine_serial(i, x, rows, y);
        let l = &self.layout.layers[i];
        activate(l.activation, &mut y[..rows * l.n_out]);
    }

    /// Test hook: gives layer `i` another activation, for networks [`Architecture`] cannot
    /// describe (mixed hidden activations), so every path's per-layer walk can be checked.
    #[cfg(test)]
    pub(crate) fn set_activation(&mut self, i: usize, act: Activation) {
        self.layout.layers[i].activation = act;
    }

    /// Runs a chain of layers, ping-ponging between two scratch buffers; returns the index of
    /// the buffer holding the output. `input` is `rows * n_in` of the first layer. Layer `k`
    /// writes buffer `(k + 1) % 2`.
    fn chain(&self, layers: &[usize], input: &[f32], rows: usize, bufs: &mut [Vec<f32>; 2]) -> usize {
        let width = layers.iter().map(|&i| self.layout.layers[i].n_out).max().unwrap_or(0);
        for b in bufs.iter_mut() {
            b.resize(rows * width, 0.0);
        }
        let mut cur = 0;
        for (k, &i) in layers.iter().enumerate() {
            let (a, b) = bufs.split_at_mut(1);
            let (src, dst) = if cur == 0 { (&a[0], &mut b[0]) } else { (&b[0], &mut a[0]) };
            let n_in = self.layout.layers[i].n_in;
            let x = if k == 0 { input } else { &src[..rows * n_in] };
            self.dense(i, x, rows, dst);
            cur = 1 - cur; // the output just written is now the current buffer
        }
        cur
    }

    fn check_input(&self, x: &[f32], per_item: usize, what: &'static str) -> Result<usize, ModelError> {
        if !x.len().is_multiple_of(per_item) {
            return Err(ModelError::InputSize { what, per_item, found: x.len() });
        }
        Ok(x.len() / per_item)
    }

    /// Encodes images (`n * input` intensities in [0, 1]) to their means and, for a VAE, their
    /// log-variances, each `n * latent`.
    pub fn encode(&self, x: &[f32]) -> Result<Encoding, ModelError> {
        let rows = self.check_input(x, self.arch.input, "images")?;
        let l = &self.layout;
        let mut bufs = [Vec::new(), Vec::new()];
        let h: &[f32] = if l.encoder.is_empty() {
            x
        } else {
            let out = self.chain(&l.encoder, x, rows, &mut bufs);
            let width = l.layers[*l.encoder.last().unwrap_or(&0)].n_out;
            &bufs[out][..rows * width]
        };
        let head = |i: usize| {
            let mut out = vec![0.0; rows * self.arch.latent];
            self.dense(i, h, rows, &mut out);
            out
        };
        Ok(Encoding { mu: head(l.mu), logvar: l.logvar.map(head) })
    }

    /// Decodes latent points (`n * latent`) to pixel means (`n * input`, in [0, 1]).
    pub fn decode(&self, z: &[f32]) -> Result<Vec<f32>, ModelError> {
        let rows = self.check_input(z, self.arch.latent, "latent points")?;
        let mut bufs = [Vec::new(), Vec::new()];
        let out = self.chain(&self.layout.decoder, z, rows, &mut bufs);
        let mut pixels = std::mem::take(&mut bufs[out]);
        pixels.truncate(rows * self.arch.input);
        Ok(pixels)
    }

    /// The decoder output before its activation (logits before the sigmoid), the numerically
    /// stable input of the loss.
    pub fn decode_logits(&self, z: &[f32]) -> Result<Vec<f32>, ModelError> {
        let rows = self.check_input(z, self.arch.latent, "latent points")?;
        let dec = &self.layout.decoder;
        let (last, hidden) = dec.split_last().expect("a decoder has an output layer");
        let mut bufs = [Vec::new(), Vec::new()];
        let h: &[f32] = if hidden.is_empty() {
            z
        } else {
            let out = self.chain(hidden, z, rows, &mut bufs);
            &bufs[out][..rows * self.layout.layers[*last].n_in]
        };
        let mut logits = vec![0.0; rows * self.arch.input];
        self.affine(*last, h, rows, &mut logits);
        Ok(logits)
    }

    /// Per-example loss terms: a VAE's with one reparameterized sample each (example `i` uses
    /// the noise `normal(seed, index0 + i, d)`, so results do not depend on how a data set is
    /// chunked); a deterministic kind decodes z = mu and has no KL. The reconstruction is the
    /// architecture's loss; both BCE and squared error are reported.
    pub fn loss_terms(&self, x: &[f32], seed: u32, index0: u32) -> Result<Vec<LossTerms>, ModelError> {
        let rows = self.check_input(x, self.arch.input, "images")?;
        let Encoding { mu, logvar } = self.encode(x)?;
        let z = match &logvar {
            Some(lv) => reparameterize(&mu, lv, self.arch.latent, 1, seed, index0),
            None => mu.clone(),
        };
        let pre = self.decode_logits(&z)?;
        let n = self.arch.input;
        let d = self.arch.latent;
        Ok((0..rows)
            .map(|i| {
                let (bce, squared_error) =
                    reconstruction_errors(self.arch.output_activation, &pre[i * n..(i + 1) * n], &x[i * n..(i + 1) * n]);
                let kl = logvar.as_ref().map_or(0.0, |lv| kl_standard_normal(&mu[i * d..(i + 1) * d], &lv[i * d..(i + 1) * d]));
                let reconstruction = match self.arch.loss {
                    ReconstructionLoss::Bce => bce,
                    ReconstructionLoss::Mse => squared_error,
                };
                LossTerms { reconstruction, kl, bce, squared_error }
            })
            .collect())
    }
}

/// Applies an activation in place.
#[inline]
pub fn activate(act: Activation, y: &mut [f32]) {
    match act {
        Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Sigmoid => y.iter_mut().for_each(|v| *v = sigmoid(*v)),
        Activation::Identity => {}
    }
}

/// The backward of [`activate`]: turns `grad`, the gradient with respect to the activation's
/// output `out`, into the gradient with respect to its input, in place. Written in terms of the
/// output so the trainer need not keep pre-activations. Branch-free loops, so they vectorise.
#[inline]
pub fn activate_backward(act: Activation, grad: &mut [f32], out: &[f32]) {
    debug_assert_eq!(grad.len(), out.len());
    match act {
        // Zero where the ReLU was inactive (its output is 0).
        Activation::Relu => grad.iter_mut().zip(out).for_each(|(g, &o)| *g = if o > 0.0 { *g } else { 0.0 }),
        Activation::Sigmoid => grad.iter_mut().zip(out).for_each(|(g, &o)| *g *= o * (1.0 - o)),
        Activation::Identity => {}
    }
}

#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The reparameterization trick, the CPU's only copy of it (the trainer, the evaluation and
/// the page all sample through here): `k` samples `z = mu + exp(logvar / 2) * eps` for each of
/// the `n` rows of (mu, logvar), with the noise written to `eps` beside them (the trainer's
/// backward and the importance weights need it). Sample `j` of row `i` uses
/// `eps = normal(seed, index0 + i*k + j, d)`; the GPU sampler draws the very same numbers.
/// `eps` and `z` hold `n * k * latent` values each.
#[allow(clippy::too_many_arguments)]
pub fn reparameterize_into(mu: &[f32], logvar: &[f32], latent: usize, k: usize, seed: u32, index0: u32, eps: &mut [f32], z: &mut [f32]) {
    let n = mu.len() / latent;
    assert!(logvar.len() == n * latent && eps.len() == n * k * latent && z.len() == n * k * latent);
    for i in 0..n {
        for j in 0..k {
            let s = i * k + j;
            let index = index0.wrapping_add(s as u32);
            for d in 0..latent {
                let (m, lv) = (mu[i * latent + d], logvar[i * latent + d]);
                let e = rng::normal(seed, index, d as u32);
                eps[s * latent + d] = e;
                z[s * latent + d] = m + (0.5 * lv).exp() * e;
            }
        }
    }
}

/// [`reparameterize_into`] for callers that need only z.
pub fn reparameterize(mu: &[f32], logvar: &[f32], latent: usize, k: usize, seed: u32, index0: u32) -> Vec<f32> {
    let len = mu.len() / latent * k * latent;
    let (mut eps, mut z) = (vec![0.0; len], vec![0.0; len]);
    reparameterize_into(mu, logvar, latent, k, seed, index0, &mut eps, &mut z);
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Vae {
        Vae::init(Architecture::mirrored(6, &[5, 4], 2), 1).unwrap()
    }

    /// A dense network written out with plain loops, independent of the GEMM path.
    fn naive_dense(w: &[f32], b: &[f32], x: &[f32], n_in: usize, n_out: usize, act: Activation) -> Vec<f32> {
        (0..n_out)
            .map(|o| {
                let s: f32 = b[o] + (0..n_in).map(|i| w[o * n_in + i] * x[i]).sum::<f32>();
                match act {
                    Activation::Relu => s.max(0.0),
                    Activation::Sigmoid => 1.0 / (1.0 + (-s).exp()),
                    Activation::Identity => s,
                }
            })
            .collect()
    }

    #[test]
    fn decode_matches_a_loop_by_loop_evaluation() {
        let vae = tiny();
        let z = [0.3f32, -1.2, 2.0, 0.5];
        let got = vae.decode(&z).unwrap();
        for (r, zr) in z.chunks(2).enumerate() {
            let mut h = zr.to_vec();
            for &i in &vae.layout().decoder {
                let (l, w, b) = vae.layer(i);
                h = naive_dense(w, b, &h, l.n_in, l.n_out, l.activation);
            }
            for (a, b) in got[r * 6..(r + 1) * 6].iter().zip(&h) {
                assert!((a - b).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn wrong_input_sizes_are_errors() {
        let vae = tiny();
        assert!(matches!(vae.decode(&[1.0, 2.0, 3.0]), Err(ModelError::InputSize { .. })));
        assert!(matches!(vae.encode(&[0.0; 7]), Err(ModelError::InputSize { .. })));
    }

    #[test]
    fn reparameterize_is_deterministic_and_centred_on_mu() {
        let z1 = reparameterize(&[1.0, -2.0], &[-20.0, -20.0], 2, 3, 9, 0);
        let z2 = reparameterize(&[1.0, -2.0], &[-20.0, -20.0], 2, 3, 9, 0);
        assert_eq!(z1, z2);
        for p in z1.chunks(2) {
            assert!((p[0] - 1.0).abs() < 1e-3 && (p[1] + 2.0).abs() < 1e-3);
        }
    }
}
