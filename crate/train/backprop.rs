//! Hand-written forward and backward pass of the VAE loss over a batch, in two phases.
//!
//! Phase 1 ([`shard_deltas`]) runs on a shard of the batch's rows: the forward pass (the
//! reference model's own layer code and sampler, `Vae::dense_serial` and
//! `model::reparameterize_into`, walking the same layer list with each layer's own activation,
//! so training and inference cannot drift apart), the loss, and each layer's *delta*, the
//! gradient with respect to its pre-activation (through `model::activate_backward`). Phase 2
//! ([`Workspace::layer_grad`]) turns the deltas of the whole batch into weight and bias
//! gradients, any block of a layer's output rows at a time. The trainer applies
//! Adam to each block while it is still in cache, and each product runs with the whole batch as
//! its inner dimension instead of once per shard.
//!
//! Gradients are of `scale * sum_i (rec_i + beta * kl_i)`, the reconstruction being BCE or
//! squared error per the architecture's loss. A deterministic kind (autoencoder) has no
//! log-variance head, no noise and no KL: z is the mean. Every value is computed the same way
//! whatever the shard and block split, so training is bit-identical for any thread count.

use std::ops::Range;

use crate::architecture::{Activation, ReconstructionLoss};
use crate::gemm::{gemm, gemm_at, Op};
use crate::loss::{bce_rows_and_grad, kl_standard_normal, mse_rows_and_grad};
use crate::model::{activate_backward, reparameterize_into, ParamLayout, Vae};

/// Activations and deltas of a whole batch, row-major, reused across steps.
#[derive(Default)]
pub struct Workspace {
    rows: usize,
    /// Activated outputs of the encoder's and decoder's hidden layers.
    enc: Vec<Vec<f32>>,
    dec: Vec<Vec<f32>>,
    mu: Vec<f32>,
    logvar: Vec<f32>,
    eps: Vec<f32>,
    z: Vec<f32>,
    /// Logits, overwritten in place by their gradient: the output layer's delta.
    logits: Vec<f32>,
    /// Deltas of the hidden layers and the heads, and the gradient with respect to z.
    d_enc: Vec<Vec<f32>>,
    d_dec: Vec<Vec<f32>>,
    dmu: Vec<f32>,
    dlogvar: Vec<f32>,
    dz: Vec<f32>,
}

/// One shard's rows of every buffer of a [`Workspace`].
pub struct Shard<'a> {
    enc: Vec<&'a mut [f32]>,
    dec: Vec<&'a mut [f32]>,
    mu: &'a mut [f32],
    logvar: &'a mut [f32],
    eps: &'a mut [f32],
    z: &'a mut [f32],
    logits: &'a mut [f32],
    d_enc: Vec<&'a mut [f32]>,
    d_dec: Vec<&'a mut [f32]>,
    dmu: &'a mut [f32],
    dlogvar: &'a mut [f32],
    dz: &'a mut [f32],
}

/// Sums of the per-example loss terms over a shard.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossSums {
    pub reconstruction: f64,
    pub kl: f64,
}

impl std::ops::AddAssign for LossSums {
    fn add_assign(&mut self, o: Self) {
        self.reconstruction += o.reconstruction;
        self.kl += o.kl;
    }
}

fn next<'a>(parts: &mut std::vec::IntoIter<&'a mut [f32]>) -> &'a mut [f32] {
    parts.next().expect("one part per shard")
}

/// Splits a [rows, width] buffer at the row `bounds` (first 0, last rows).
fn split_one<'a>(buf: &'a mut [f32], bounds: &[usize], rows: usize) -> std::vec::IntoIter<&'a mut [f32]> {
    let width = buf.len() / rows.max(1);
    let mut parts = Vec::with_capacity(bounds.len().saturating_sub(1));
    let mut rest = buf;
    for w in bounds.windows(2) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut((w[1] - w[0]) * width);
        parts.push(head);
        rest = tail;
    }
    parts.into_iter()
}

fn split_each<'a>(bufs: &'a mut [Vec<f32>], bounds: &[usize], rows: usize) -> Vec<std::vec::IntoIter<&'a mut [f32]>> {
    bufs.iter_mut().map(|b| split_one(b, bounds, rows)).collect()
}

impl Workspace {
    /// Sizes every buffer for `rows` examples of `vae`.
    pub fn resize(&mut self, vae: &Vae, rows: usize) {
        let lay = vae.layout();
        let d = vae.arch().latent;
        let widths = |ids: &[usize]| -> Vec<usize> { ids.iter().map(|&i| lay.layers[i].n_out).collect() };
        let enc_w = widths(&lay.encoder);
        let dec_w = widths(&lay.decoder[..lay.decoder.len() - 1]);
        let fit = |bufs: &mut Vec<Vec<f32>>, widths: &[usize]| {
            bufs.resize_with(widths.len(), Vec::new);
            for (b, w) in bufs.iter_mut().zip(widths) {
                b.resize(rows * w, 0.0);
            }
        };
        fit(&mut self.enc, &enc_w);
        fit(&mut self.d_enc, &enc_w);
        fit(&mut self.dec, &dec_w);
        fit(&mut self.d_dec, &dec_w);
        for v in [&mut self.mu, &mut self.logvar, &mut self.eps, &mut self.z, &mut self.dmu, &mut self.dlogvar, &mut self.dz] {
            v.resize(rows * d, 0.0);
        }
        self.logits.resize(rows * vae.arch().input, 0.0);
        self.rows = rows;
    }

    /// Disjoint views of the rows `bounds[t]..bounds[t + 1]` for each shard `t`.
    pub fn shards(&mut self, bounds: &[usize]) -> Vec<Shard<'_>> {
        let rows = self.rows;
        assert!(bounds.first() == Some(&0) && bounds.last() == Some(&rows), "shard bounds must cover the batch");
        let mut enc = split_each(&mut self.enc, bounds, rows);
        let mut dec = split_each(&mut self.dec, bounds, rows);
        let mut d_enc = split_each(&mut self.d_enc, bounds, rows);
        let mut d_dec = split_each(&mut self.d_dec, bounds, rows);
        let (mut mu, mut logvar) = (split_one(&mut self.mu, bounds, rows), split_one(&mut self.logvar, bounds, rows));
        let (mut eps, mut z) = (split_one(&mut self.eps, bounds, rows), split_one(&mut self.z, bounds, rows));
        let (mut logits, mut dz) = (split_one(&mut self.logits, bounds, rows), split_one(&mut self.dz, bounds, rows));
        let (mut dmu, mut dlogvar) = (split_one(&mut self.dmu, bounds, rows), split_one(&mut self.dlogvar, bounds, rows));
        (1..bounds.len())
            .map(|_| Shard {
                enc: enc.iter_mut().map(next).collect(),
                dec: dec.iter_mut().map(next).collect(),
                d_enc: d_enc.iter_mut().map(next).collect(),
                d_dec: d_dec.iter_mut().map(next).collect(),
                mu: next(&mut mu),
                logvar: next(&mut logvar),
                eps: next(&mut eps),
                z: next(&mut z),
                logits: next(&mut logits),
                dmu: next(&mut dmu),
                dlogvar: next(&mut dlogvar),
                dz: next(&mut dz),
            })
            .collect()
    }

    /// Delta and input of layer `li` for the whole batch (`x` is the batch's images).
    fn layer_io<'a>(&'a self, lay: &ParamLayout, li: usize, x: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        let h_enc: &[f32] = self.enc.last().map(|v| &v[..]).unwrap_or(x);
        if li == lay.mu {
            return (&self.dmu, h_enc);
        }
        if Some(li) == lay.logvar {
            return (&self.dlogvar, h_enc);
        }
        if let Some(j) = lay.encoder.iter().position(|&e| e == li) {
            return (&self.d_enc[j], if j == 0 { x } else { &self.enc[j - 1] });
        }
        let k = lay.decoder.iter().position(|&e| e == li).expect("every layer is in the layout");
        let delta: &[f32] = if k + 1 == lay.decoder.len() { &self.logits } else { &self.d_dec[k] };
        (delta, if k == 0 { &self.z } else { &self.dec[k - 1] })
    }

    /// Gradient of output rows `r` of layer `li` over the whole batch, after phase 1 ran on
    /// every row: `gw = delta[:, r]^T input` ([r.len(), in]) and `gb = column sums of delta[:, r]`.
    pub fn layer_grad(&self, lay: &ParamLayout, li: usize, r: Range<usize>, x: &[f32], gw: &mut [f32], gb: &mut [f32]) {
        let l = &lay.layers[li];
        let rows = self.rows;
        let (delta, input) = self.layer_io(lay, li, x);
        assert!(r.end <= l.n_out && gw.len() == r.len() * l.n_in && gb.len() == r.len());
        // delta[:, r]^T: element (i, p) is delta[p * n_out + r.start + i].
        gemm_at(r.len(), rows, l.n_in, &delta[r.start..], (1, l.n_out), &input[..rows * l.n_in], 0.0, gw);
        gb.iter_mut().for_each(|b| *b = 0.0);
        for row in delta[..rows * l.n_out].chunks_exact(l.n_out) {
            for (b, &g) in gb.iter_mut().zip(&row[r.clone()]) {
                *b += g;
            }
        }
    }
}

/// Phase 1 on one shard: forward, loss and every layer's delta for the rows of `x`
/// (`rows * input` intensities). Example `i` draws its noise from `normal(seed, index0 + i, d)`.
#[allow(clippy::too_many_arguments)]
pub fn shard_deltas(vae: &Vae, x: &[f32], beta: f32, seed: u32, index0: u32, scale: f32, s: Shard<'_>) -> LossSums {
    let arch = vae.arch();
    let lay = vae.layout();
    let n = arch.input;
    let d = arch.latent;
    let rows = x.len() / n;
    let Shard { mut enc, mut dec, mu, logvar, eps, z, logits, mut d_enc, mut d_dec, dmu, dlogvar, dz } = s;
    assert_eq!(mu.len(), rows * d, "shard views must match the shard's rows");

    let act = |li: usize| lay.layers[li].activation;

    // ---- forward: encoder trunk
    for (j, &li) in lay.encoder.iter().enumerate() {
        let (done, rest) = enc.split_at_mut(j);
        let input: &[f32] = if j == 0 { x } else { done[j - 1] };
        vae.dense_serial(li, input, rows, rest[0]);
    }
    let h_enc: &[f32] = enc.last().map(|v| &**v).unwrap_or(x);

    // ---- heads and the reparameterized sample
    vae.dense_serial(lay.mu, h_enc, rows, mu);
    if let Some(lv) = lay.logvar {
        vae.dense_serial(lv, h_enc, rows, logvar);
        reparameterize_into(mu, logvar, d, 1, seed, index0, eps, z);
    } else {
        z.copy_from_slice(mu);
    }

    // ---- forward: decoder. The output layer stops at its logits: the loss below is the
    // activation and the loss in one, stable step (BCE's gradient is sigmoid(l) - x).
    let (&out_layer, dec_hidden) = lay.decoder.split_last().expect("decoder has an output layer");
    match arch.loss {
        ReconstructionLoss::Bce => assert_eq!(act(out_layer), Activation::Sigmoid, "BCE is Bernoulli on sigmoid outputs"),
        ReconstructionLoss::Mse => assert_ne!(act(out_layer), Activation::Relu, "squared error through a sigmoid or identity output"),
    }
    for (j, &li) in dec_hidden.iter().enumerate() {
        let (done, rest) = dec.split_at_mut(j);
        let input: &[f32] = if j == 0 { z } else { done[j - 1] };
        vae.dense_serial(li, input, rows, rest[0]);
    }
    let h_dec: &[f32] = dec.last().map(|v| &**v).unwrap_or(z);
    vae.affine_serial(out_layer, h_dec, rows, logits);

    // ---- loss, and d(loss)/d(logits) in place
    let reconstruction = match arch.loss {
        ReconstructionLoss::Bce => bce_rows_and_grad(logits, x, n, scale),
        ReconstructionLoss::Mse => mse_rows_and_grad(logits, x, act(out_layer), scale),
    };
    let mut sums = LossSums { reconstruction, kl: 0.0 };
    if lay.logvar.is_some() {
        for i in 0..rows {
            sums.kl += kl_standard_normal(&mu[i * d..(i + 1) * d], &logvar[i * d..(i + 1) * d]);
        }
    }

    // ---- backward through the decoder: each layer's delta times its weights, through the
    // backward of the activation below, is the delta of the layer below; down to d(loss)/dz.
    for k in (0..lay.decoder.len()).rev() {
        let li = lay.decoder[k];
        let l = &lay.layers[li];
        let (below, at) = d_dec.split_at_mut(k);
        let delta: &[f32] = if li == out_layer { logits } else { at[0] };
        let target: &mut [f32] = if k == 0 { dz } else { below[k - 1] };
        gemm(rows, l.n_out, l.n_in, delta, Op::N, vae.layer(li).1, Op::N, 0.0, target);
        if k > 0 {
            activate_backward(act(lay.decoder[k - 1]), target, dec[k - 1]);
        }
    }

    // ---- back through the sample z = mu + exp(lv/2) eps (`reparameterize_into`), plus the
    // KL's own gradient; a deterministic encoder's z is mu
    let kl_scale = beta * scale;
    if let Some(lv_layer) = lay.logvar {
        for j in 0..rows * d {
            let (m, lv) = (mu[j], logvar[j]);
            let s = (0.5 * lv).exp();
            dmu[j] = dz[j] + kl_scale * m;
            dlogvar[j] = dz[j] * eps[j] * 0.5 * s + kl_scale * 0.5 * (s * s - 1.0);
        }
        activate_backward(act(lv_layer), dlogvar, logvar);
    } else {
        dmu.copy_from_slice(dz);
    }
    activate_backward(act(lay.mu), dmu, mu);

    // ---- heads, then the encoder trunk (no gradient into the input images)
    let Some(last) = lay.encoder.len().checked_sub(1) else {
        return sums;
    };
    let h_width = lay.layers[lay.mu].n_in;
    let dh = &mut d_enc[last][..];
    gemm(rows, d, h_width, dmu, Op::N, vae.layer(lay.mu).1, Op::N, 0.0, dh);
    if let Some(lv_layer) = lay.logvar {
        gemm(rows, d, h_width, dlogvar, Op::N, vae.layer(lv_layer).1, Op::N, 1.0, dh);
    }
    activate_backward(act(lay.encoder[last]), dh, enc[last]);
    for j in (1..lay.encoder.len()).rev() {
        let li = lay.encoder[j];
        let l = &lay.layers[li];
        let (below, at) = d_enc.split_at_mut(j);
        gemm(rows, l.n_out, l.n_in, at[0], Op::N, vae.layer(li).1, Op::N, 0.0, below[j - 1]);
        activate_backward(act(lay.encoder[j - 1]), below[j - 1], enc[j - 1]);
    }
    sums
}

/// Both phases on the calling thread: the loss sums, and the gradient written into `grad`
/// (parameter-shaped, overwritten). The trainer runs the same two phases in parallel.
#[allow(clippy::too_many_arguments)]
pub fn loss_and_grad(
    vae: &Vae,
    x: &[f32],
    beta: f32,
    seed: u32,
    index0: u32,
    scale: f32,
    grad: &mut [f32],
    ws: &mut Workspace,
) -> LossSums {
    let lay = vae.layout();
    assert_eq!(grad.len(), lay.len);
    let rows = x.len() / vae.arch().input;
    ws.resize(vae, rows);
    let shard = ws.shards(&[0, rows]).pop().expect("one shard");
    let sums = shard_deltas(vae, x, beta, seed, index0, scale, shard);
    for li in 0..lay.layers.len() {
        let (gw, gb) = lay.split_mut(li, grad);
        ws.layer_grad(lay, li, 0..lay.layers[li].n_out, x, gw, gb);
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::Architecture;

    /// The backprop walks each layer's own activation, so a network whose hidden layers mix
    /// ReLU, identity and sigmoid (more than `Architecture` can describe) gets the gradient of
    /// the reference model's loss: every tensor against central differences of `loss_terms`.
    #[test]
    fn gradients_match_finite_differences_with_mixed_hidden_activations() {
        let arch = Architecture::mirrored(10, &[7, 6, 5], 2);
        let mut vae = Vae::init(arch.clone(), 3).unwrap();
        let lay = vae.layout().clone();
        let acts = [Activation::Relu, Activation::Identity, Activation::Sigmoid];
        for (k, &li) in lay.encoder.iter().enumerate() {
            vae.set_activation(li, acts[k % 3]);
        }
        for (k, &li) in lay.decoder[..lay.decoder.len() - 1].iter().enumerate() {
            vae.set_activation(li, acts[(k + 2) % 3]);
        }
        // Larger-than-default weights so every layer's gradient is far from zero (the orders
        // above keep any tensor's gradient from being too small for finite differences in f32).
        vae.params_mut().iter_mut().for_each(|p| *p *= 2.0);
        let (rows, beta, seed) = (16, 1.5f32, 4);
        let x: Vec<f32> = (0..rows * arch.input).map(|i| (i * 29 % 53) as f32 / 52.0).collect();
        let loss = |vae: &Vae| -> f64 {
            let terms = vae.loss_terms(&x, seed, 0).unwrap();
            terms.iter().map(|t| t.neg_elbo(beta as f64)).sum::<f64>() / rows as f64
        };
        let mut grad = vec![0.0; lay.len];
        let sums = loss_and_grad(&vae, &x, beta, seed, 0, 1.0 / rows as f32, &mut grad, &mut Workspace::default());
        let (base, trained) = (loss(&vae), (sums.reconstruction + beta as f64 * sums.kl) / rows as f64);
        assert!((base - trained).abs() < 1e-5 * base, "backprop loss {trained} vs reference {base}");
        let h = 2e-3f32;
        for li in 0..lay.layers.len() {
            let (w, b) = lay.ranges(li);
            for (what, range) in [("weight", w), ("bias", b)] {
                let (mut diff2, mut norm_a, mut norm_n) = (0.0f64, 0.0f64, 0.0f64);
                for j in range {
                    let orig = vae.params()[j];
                    vae.params_mut()[j] = orig + h;
                    let up = loss(&vae);
                    vae.params_mut()[j] = orig - h;
                    let down = loss(&vae);
                    vae.params_mut()[j] = orig;
                    let numeric = (up - down) / (2.0 * h as f64);
                    diff2 += (numeric - grad[j] as f64).powi(2);
                    norm_a += (grad[j] as f64).powi(2);
                    norm_n += numeric * numeric;
                }
                let l = &vae.layout().layers[li];
                let norm = norm_a.max(norm_n).sqrt();
                let rel = diff2.sqrt() / norm.max(1e-12);
                eprintln!("{:?} {}.{what}: relative error {rel:.2e}", l.activation, l.name);
                assert!(norm_a > 1e-10, "{}.{what}: gradient is zero, the check would be vacuous", l.name);
                assert!(rel < 1e-3, "{}.{what} ({:?}): relative error {rel:.2e}", l.name, l.activation);
            }
        }
    }
}
