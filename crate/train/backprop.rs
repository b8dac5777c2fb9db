//! Hand-written forward and backward pass of the VAE loss over a batch.
//!
//! The forward pass uses the reference model's own layer code (`Vae::affine`), so training and
//! inference cannot drift apart. Gradients are of
//! `scale * sum_i (rec_i + beta * kl_i)`, written into a parameter-shaped buffer (overwritten,
//! not accumulated), so data-parallel shards can be summed afterwards. Runs on the calling
//! thread: the trainer parallelises over shards of the batch, which scales better on CPUs
//! than splitting each (small) product.

use crate::gemm::{gemm, Op};
use crate::model::{bce_and_grad, kl_standard_normal, Vae};
use crate::rng;

/// Scratch buffers for one shard, reused across steps to keep allocation off the hot path.
#[derive(Default)]
pub struct Workspace {
    enc: Vec<Vec<f32>>,
    dec: Vec<Vec<f32>>,
    mu: Vec<f32>,
    logvar: Vec<f32>,
    eps: Vec<f32>,
    z: Vec<f32>,
    /// Logits, overwritten in place by their gradient.
    logits: Vec<f32>,
    dmu: Vec<f32>,
    dlogvar: Vec<f32>,
    row_loss: Vec<f32>,
    /// Ping-pong buffers for gradients flowing back through hidden layers.
    back: [Vec<f32>; 2],
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

fn size(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

/// Forward and backward over `x` (`rows * input` intensities). Example `i` draws its noise from
/// `normal(seed, index0 + i, d)`. Returns the loss sums; writes `grad` (same layout as params).
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
    let arch = vae.arch();
    let lay = vae.layout();
    let n = arch.input;
    let d = arch.latent;
    let rows = x.len() / n;
    assert_eq!(grad.len(), lay.len);

    // ---- forward: encoder trunk
    ws.enc.resize_with(lay.encoder.len(), Vec::new);
    for (j, &li) in lay.encoder.iter().enumerate() {
        let (done, rest) = ws.enc.split_at_mut(j);
        let input: &[f32] = if j == 0 { x } else { &done[j - 1] };
        size(&mut rest[0], rows * lay.layers[li].n_out);
        vae.affine_serial(li, input, rows, &mut rest[0]);
        relu(&mut rest[0]);
    }
    let h_enc: &[f32] = ws.enc.last().map(|v| &v[..]).unwrap_or(x);

    // ---- heads and the reparameterized sample
    size(&mut ws.mu, rows * d);
    size(&mut ws.logvar, rows * d);
    vae.affine_serial(lay.mu, h_enc, rows, &mut ws.mu);
    vae.affine_serial(lay.logvar, h_enc, rows, &mut ws.logvar);
    size(&mut ws.eps, rows * d);
    size(&mut ws.z, rows * d);
    for i in 0..rows {
        let index = index0.wrapping_add(i as u32);
        for k in 0..d {
            let e = rng::normal(seed, index, k as u32);
            let j = i * d + k;
            ws.eps[j] = e;
            ws.z[j] = ws.mu[j] + (0.5 * ws.logvar[j]).exp() * e;
        }
    }

    // ---- forward: decoder
    let (out_layer, dec_hidden) = lay.decoder.split_last().expect("decoder has an output layer");
    ws.dec.resize_with(dec_hidden.len(), Vec::new);
    for (j, &li) in dec_hidden.iter().enumerate() {
        let (done, rest) = ws.dec.split_at_mut(j);
        let input: &[f32] = if j == 0 { &ws.z } else { &done[j - 1] };
        size(&mut rest[0], rows * lay.layers[li].n_out);
        vae.affine_serial(li, input, rows, &mut rest[0]);
        relu(&mut rest[0]);
    }
    let h_dec: &[f32] = ws.dec.last().map(|v| &v[..]).unwrap_or(&ws.z);
    size(&mut ws.logits, rows * n);
    vae.affine_serial(*out_layer, h_dec, rows, &mut ws.logits);

    // ---- loss, and d(loss)/d(logits) = sigmoid(l) - x, in place
    let mut losses = std::mem::take(&mut ws.row_loss);
    losses.resize(n, 0.0);
    let mut reconstruction = 0.0f64;
    for (lrow, xrow) in ws.logits.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
        // A plain elementwise loop (vectorised), then a lane-wise sum.
        for ((l, &t), o) in lrow.iter_mut().zip(xrow).zip(losses.iter_mut()) {
            let (loss, g) = bce_and_grad(*l, t);
            *o = loss;
            *l = g * scale;
        }
        let mut acc = [0.0f32; 8];
        let mut chunks = losses.chunks_exact(8);
        for c in &mut chunks {
            for k in 0..8 {
                acc[k] += c[k];
            }
        }
        reconstruction += (chunks.remainder().iter().sum::<f32>() + acc.iter().sum::<f32>()) as f64;
    }
    ws.row_loss = losses;
    let mut sums = LossSums { reconstruction, kl: 0.0 };
    for i in 0..rows {
        sums.kl += kl_standard_normal(&ws.mu[i * d..(i + 1) * d], &ws.logvar[i * d..(i + 1) * d]);
    }

    // ---- backward: decoder output layer, then hidden layers down to z
    let dlogits = &ws.logits;
    let width = lay.layers.iter().map(|l| l.n_in.max(l.n_out)).max().unwrap_or(0);
    for b in ws.back.iter_mut() {
        size(b, rows * width);
    }
    let [back_a, back_b] = &mut ws.back;
    let (mut dcur, mut dnext) = (back_a, back_b);
    {
        let l = &lay.layers[*out_layer];
        let (gw, gb) = lay.split_mut(*out_layer, grad);
        weight_and_bias_grad(dlogits, h_dec, rows, l.n_in, l.n_out, gw, gb);
        let (_, w, _) = vae.layer(*out_layer);
        gemm(rows, l.n_out, l.n_in, dlogits, Op::N, w, Op::N, 0.0, &mut dcur[..rows * l.n_in]);
    }
    for (j, &li) in dec_hidden.iter().enumerate().rev() {
        let l = &lay.layers[li];
        let dact = &mut dcur[..rows * l.n_out];
        relu_backward(dact, &ws.dec[j]);
        let input: &[f32] = if j == 0 { &ws.z } else { &ws.dec[j - 1] };
        let (gw, gb) = lay.split_mut(li, grad);
        weight_and_bias_grad(dact, input, rows, l.n_in, l.n_out, gw, gb);
        let (_, w, _) = vae.layer(li);
        gemm(rows, l.n_out, l.n_in, dact, Op::N, w, Op::N, 0.0, &mut dnext[..rows * l.n_in]);
        std::mem::swap(&mut dcur, &mut dnext);
    }
    let dz = &dcur[..rows * d];

    // ---- through the sample: z = mu + exp(lv/2) eps; plus the KL's own gradient
    size(&mut ws.dmu, rows * d);
    size(&mut ws.dlogvar, rows * d);
    let kl_scale = beta * scale;
    for j in 0..rows * d {
        let (m, lv) = (ws.mu[j], ws.logvar[j]);
        let s = (0.5 * lv).exp();
        ws.dmu[j] = dz[j] + kl_scale * m;
        ws.dlogvar[j] = dz[j] * ws.eps[j] * 0.5 * s + kl_scale * 0.5 * (s * s - 1.0);
    }

    // ---- heads
    let h_width = lay.layers[lay.mu].n_in;
    for (li, dhead) in [(lay.mu, &ws.dmu), (lay.logvar, &ws.dlogvar)] {
        let (gw, gb) = lay.split_mut(li, grad);
        weight_and_bias_grad(dhead, h_enc, rows, h_width, d, gw, gb);
    }
    if lay.encoder.is_empty() {
        return sums; // no gradient needed with respect to the data
    }
    let dh = &mut dcur[..rows * h_width];
    gemm(rows, d, h_width, &ws.dmu, Op::N, vae.layer(lay.mu).1, Op::N, 0.0, dh);
    gemm(rows, d, h_width, &ws.dlogvar, Op::N, vae.layer(lay.logvar).1, Op::N, 1.0, dh);

    // ---- backward: encoder trunk (no gradient into the input images)
    for (j, &li) in lay.encoder.iter().enumerate().rev() {
        let l = &lay.layers[li];
        let dact = &mut dcur[..rows * l.n_out];
        relu_backward(dact, &ws.enc[j]);
        let input: &[f32] = if j == 0 { x } else { &ws.enc[j - 1] };
        let (gw, gb) = lay.split_mut(li, grad);
        weight_and_bias_grad(dact, input, rows, l.n_in, l.n_out, gw, gb);
        if j > 0 {
            let (_, w, _) = vae.layer(li);
            gemm(rows, l.n_out, l.n_in, dact, Op::N, w, Op::N, 0.0, &mut dnext[..rows * l.n_in]);
            std::mem::swap(&mut dcur, &mut dnext);
        }
    }
    sums
}

fn relu(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
}

/// Zeroes the gradient where the ReLU was inactive (its output is 0).
fn relu_backward(grad: &mut [f32], out: &[f32]) {
    for (g, &o) in grad.iter_mut().zip(out) {
        if o <= 0.0 {
            *g = 0.0;
        }
    }
}

/// `gw = dy^T x` ([out, in]) and `gb = column sums of dy`.
fn weight_and_bias_grad(dy: &[f32], x: &[f32], rows: usize, n_in: usize, n_out: usize, gw: &mut [f32], gb: &mut [f32]) {
    gemm(n_out, rows, n_in, &dy[..rows * n_out], Op::T, &x[..rows * n_in], Op::N, 0.0, gw);
    gb.iter_mut().for_each(|b| *b = 0.0);
    for row in dy[..rows * n_out].chunks_exact(n_out) {
        for (b, &g) in gb.iter_mut().zip(row) {
            *b += g;
        }
    }
}
