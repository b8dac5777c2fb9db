//! One training step as a list of prepared dispatches, and the buffers they work in. The walk over
//! the layers is `backprop::shard_deltas` and `Workspace::layer_grad` on the GPU: the same layers
//! in the same order, each with its own activation, so training on either backend trains the
//! reference model.

use crate::architecture::{Activation, Architecture, ReconstructionLoss};
use crate::gpu::device::{Gpu, WORKGROUP};
use crate::gpu::dispatch::{bind_whole, bind_with, Dispatch};
use crate::gpu::matmul::{act_code, Matmul, Product, Strided};
use crate::model::ParamLayout;

use super::kernels::{AdamParams, Columns, Gather, Kernels, LatentParams, LossParams, LOSS_BCE};

/// Every buffer a step reads or writes. Row buffers hold `max_rows` rows; a shorter batch uses
/// their first rows.
pub(super) struct Buffers {
    pub params: wgpu::Buffer,
    pub grad: wgpu::Buffer,
    pub m: wgpu::Buffer,
    pub v: wgpu::Buffer,
    /// The training images, bytes packed four to a u32.
    pub images: wgpu::Buffer,
    pub perm: wgpu::Buffer,
    pub steps: wgpu::Buffer,
    pub cursor: wgpu::Buffer,
    /// Per step of the epoch: (reconstruction, KL) sums, and the non-finite flag.
    pub step_loss: wgpu::Buffer,
    pub bad: wgpu::Buffer,
    x: wgpu::Buffer,
    enc: Vec<wgpu::Buffer>,
    d_enc: Vec<wgpu::Buffer>,
    mu: wgpu::Buffer,
    logvar: wgpu::Buffer,
    eps: wgpu::Buffer,
    z: wgpu::Buffer,
    dmu: wgpu::Buffer,
    dlogvar: wgpu::Buffer,
    dz: wgpu::Buffer,
    dec: Vec<wgpu::Buffer>,
    d_dec: Vec<wgpu::Buffer>,
    /// The output layer's logits, overwritten by their gradient (its delta).
    logits: wgpu::Buffer,
    row_loss: wgpu::Buffer,
    row_kl: wgpu::Buffer,
}

impl Buffers {
    /// Makes every buffer for `lay`'s model, batches of up to `max_rows`, epochs of up to
    /// `max_steps` steps, with `params`, `m`, `v` and the packed `images` uploaded.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        lay: &ParamLayout,
        arch: &Architecture,
        params: &[f32],
        m: &[f32],
        v: &[f32],
        images: &[u32],
        n_train: usize,
        max_rows: usize,
        max_steps: usize,
    ) -> Self {
        use wgpu::BufferUsages as U;
        let rows = |w: usize| gpu.storage("train.rows", max_rows * w, U::empty());
        let widths = |ids: &[usize]| ids.iter().map(|&i| lay.layers[i].n_out).collect::<Vec<_>>();
        let enc_w = widths(&lay.encoder);
        let dec_w = widths(&lay.decoder[..lay.decoder.len() - 1]);
        let d = arch.latent;
        let words: &[f32] = bytemuck::cast_slice(images);
        Buffers {
            params: gpu.upload("train.params", params, U::COPY_SRC | U::COPY_DST),
            grad: gpu.storage("train.grad", lay.len, U::COPY_SRC),
            m: gpu.upload("train.adam.m", m, U::COPY_SRC | U::COPY_DST),
            v: gpu.upload("train.adam.v", v, U::COPY_SRC | U::COPY_DST),
            images: gpu.upload("train.images", words, U::empty()),
            perm: gpu.storage("train.perm", n_train, U::COPY_DST),
            steps: gpu.storage("train.steps", max_steps * std::mem::size_of::<super::kernels::Step>() / 4, U::COPY_DST | U::COPY_SRC),
            cursor: gpu.storage("train.cursor", 1, U::COPY_DST | U::COPY_SRC),
            step_loss: gpu.storage("train.step_loss", 2 * max_steps, U::COPY_SRC),
            bad: gpu.storage("train.bad", max_steps, U::COPY_SRC | U::COPY_DST),
            x: rows(arch.input),
            enc: enc_w.iter().map(|&w| rows(w)).collect(),
            d_enc: enc_w.iter().map(|&w| rows(w)).collect(),
            mu: rows(d),
            logvar: rows(d),
            eps: rows(d),
            z: rows(d),
            dmu: rows(d),
            dlogvar: rows(d),
            dz: rows(d),
            dec: dec_w.iter().map(|&w| rows(w)).collect(),
            d_dec: dec_w.iter().map(|&w| rows(w)).collect(),
            logits: rows(arch.input),
            row_loss: rows(1),
            row_kl: rows(1),
        }
    }
}

/// A 1-D grid of `n` invocations as (x, y) workgroups within the device's per-dimension limit,
/// and the invocations per grid row.
fn grid(gpu: &Gpu, n: usize) -> ([u32; 3], u32) {
    let groups = n.div_ceil(WORKGROUP as usize).max(1);
    let gx = groups.min(gpu.max_workgroups as usize);
    ([gx as u32, groups.div_ceil(gx) as u32, 1], gx as u32 * WORKGROUP)
}

/// The dispatches of one optimisation step over a batch of `rows` examples.
pub(super) fn step_program(
    gpu: &Gpu,
    k: &Kernels,
    mm: &Matmul,
    lay: &ParamLayout,
    arch: &Architecture,
    b: &Buffers,
    rows: usize,
) -> Vec<Dispatch> {
    let dev = &gpu.device;
    let mut out = Vec::new();
    let act = |li: usize| lay.layers[li].activation;
    let w_off = |li: usize| lay.offsets[li];
    let b_off = |li: usize| lay.offsets[li] + lay.layers[li].n_in * lay.layers[li].n_out;
    let d = arch.latent;
    let px = arch.input;

    // ---- the batch
    let (groups, row_width) = grid(gpu, rows * px);
    let u = gpu.uniform("train.gather", &Gather { pixels: px as u32, row_width, pad: [0; 2] });
    out.push(Dispatch {
        pipeline: k.gather.clone(),
        bind: bind_whole(dev, "gather", &k.gather, &[&b.steps, &b.cursor, &u, &b.images, &b.perm, &b.x]),
        groups,
    });

    // ---- forward: y = act(x W^T + b) for layer li from `input` into `output`
    let forward = |out: &mut Vec<Dispatch>, li: usize, input: &wgpu::Buffer, output: &wgpu::Buffer, a: Activation| {
        let l = &lay.layers[li];
        out.push(mm.prepare(
            gpu,
            &Product {
                m: rows,
                n: l.n_out,
                k: l.n_in,
                a: Strided::rows(input, 0, l.n_in),
                b: Strided::cols(&b.params, w_off(li), l.n_in),
                c: Strided::rows(output, 0, l.n_out),
                accumulate: false,
                bias: Some((&b.params, b_off(li))),
                act: a,
                act_back: None,
            },
        ));
    };
    for (j, &li) in lay.encoder.iter().enumerate() {
        let input = if j == 0 { &b.x } else { &b.enc[j - 1] };
        forward(&mut out, li, input, &b.enc[j], act(li));
    }
    let h_enc = b.enc.last().unwrap_or(&b.x);
    forward(&mut out, lay.mu, h_enc, &b.mu, act(lay.mu));
    if let Some(lv) = lay.logvar {
        forward(&mut out, lv, h_enc, &b.logvar, act(lv));
    }
    let latent = LatentParams {
        latent: d as u32,
        variational: u32::from(lay.logvar.is_some()),
        mu_act: act_code(act(lay.mu)),
        logvar_act: act_code(lay.logvar.map(act).unwrap_or(Activation::Identity)),
        rows: rows as u32,
        pad: [0; 3],
    };
    let lu = gpu.uniform("train.latent", &latent);
    let reparameterize = &k.reparameterize;
    out.push(Dispatch {
        pipeline: reparameterize.clone(),
        bind: bind_whole(dev, "reparameterize", reparameterize, &[&b.steps, &b.cursor, &lu, &b.mu, &b.logvar, &b.eps, &b.z, &b.row_kl]),
        groups: [rows.div_ceil(WORKGROUP as usize) as u32, 1, 1],
    });
    let (&out_layer, dec_hidden) = lay.decoder.split_last().expect("a decoder has an output layer");
    for (j, &li) in dec_hidden.iter().enumerate() {
        let input = if j == 0 { &b.z } else { &b.dec[j - 1] };
        forward(&mut out, li, input, &b.dec[j], act(li));
    }
    forward(&mut out, out_layer, b.dec.last().unwrap_or(&b.z), &b.logits, Activation::Identity);

    // ---- the loss and its gradient at the logits, then the step's sums
    let loss = LossParams {
        pixels: px as u32,
        loss: if arch.loss == ReconstructionLoss::Bce { LOSS_BCE } else { 0 },
        out_act: act_code(act(out_layer)),
        rows: rows as u32,
    };
    let pu = gpu.uniform("train.loss", &loss);
    out.push(Dispatch {
        pipeline: k.reconstruction.clone(),
        bind: bind_whole(dev, "reconstruction", &k.reconstruction, &[&b.steps, &b.cursor, &pu, &b.x, &b.logits, &b.row_loss]),
        groups: [rows as u32, 1, 1],
    });
    out.push(Dispatch {
        pipeline: k.step_sums.clone(),
        bind: bind_with(
            dev,
            "step_sums",
            &k.step_sums,
            &[(0, &b.steps), (1, &b.cursor), (2, &pu), (5, &b.row_loss), (6, &b.row_kl), (7, &b.step_loss)],
        ),
        groups: [1, 1, 1],
    });

    // ---- a layer's gradients from its delta and input: dW = delta^T input, db = column sums
    let gradients = |out: &mut Vec<Dispatch>, li: usize, delta: &wgpu::Buffer, input: &wgpu::Buffer| {
        let l = &lay.layers[li];
        out.push(mm.prepare(
            gpu,
            &Product {
                m: l.n_out,
                n: l.n_in,
                k: rows,
                a: Strided::cols(delta, 0, l.n_out),
                b: Strided::rows(input, 0, l.n_in),
                c: Strided::rows(&b.grad, w_off(li), l.n_in),
                accumulate: false,
                bias: None,
                act: Activation::Identity,
                act_back: None,
            },
        ));
        let cu = gpu.uniform("train.columns", &Columns { rows: rows as u32, cols: l.n_out as u32, src_off: 0, dst_off: b_off(li) as u32 });
        out.push(Dispatch {
            pipeline: k.column_sums.clone(),
            bind: bind_whole(dev, "column_sums", &k.column_sums, &[&cu, delta, &b.grad]),
            groups: [l.n_out.div_ceil(WORKGROUP as usize) as u32, 1, 1],
        });
    };
    // ---- the delta of the layer below: (delta W) times the slope of the activation below
    let backward = |out: &mut Vec<Dispatch>,
                    li: usize,
                    delta: &wgpu::Buffer,
                    target: &wgpu::Buffer,
                    accumulate: bool,
                    below: Option<(Activation, &wgpu::Buffer)>| {
        let l = &lay.layers[li];
        out.push(mm.prepare(
            gpu,
            &Product {
                m: rows,
                n: l.n_in,
                k: l.n_out,
                a: Strided::rows(delta, 0, l.n_out),
                b: Strided::rows(&b.params, w_off(li), l.n_in),
                c: Strided::rows(target, 0, l.n_in),
                accumulate,
                bias: None,
                act: Activation::Identity,
                act_back: below.map(|(a, aux)| (a, Strided::rows(aux, 0, l.n_in))),
            },
        ));
    };

    // ---- backward through the decoder, down to d(loss)/dz
    for kk in (0..lay.decoder.len()).rev() {
        let li = lay.decoder[kk];
        let delta = if li == out_layer { &b.logits } else { &b.d_dec[kk] };
        let input = if kk == 0 { &b.z } else { &b.dec[kk - 1] };
        gradients(&mut out, li, delta, input);
        if kk == 0 {
            backward(&mut out, li, delta, &b.dz, false, None);
        } else {
            backward(&mut out, li, delta, &b.d_dec[kk - 1], false, Some((act(lay.decoder[kk - 1]), &b.dec[kk - 1])));
        }
    }
    // ---- back through the sample and the KL, to the heads' deltas
    let (groups, _) = grid(gpu, rows * d);
    let rb = &k.reparameterize_backward;
    out.push(Dispatch {
        pipeline: rb.clone(),
        bind: bind_with(
            dev,
            "reparameterize_backward",
            rb,
            &[(0, &b.steps), (1, &b.cursor), (2, &lu), (3, &b.mu), (4, &b.logvar), (5, &b.eps), (8, &b.dz), (9, &b.dmu), (10, &b.dlogvar)],
        ),
        groups,
    });
    gradients(&mut out, lay.mu, &b.dmu, h_enc);
    if let Some(lv) = lay.logvar {
        gradients(&mut out, lv, &b.dlogvar, h_enc);
    }
    // ---- the encoder trunk (no gradient into the images)
    if let Some(last) = lay.encoder.len().checked_sub(1) {
        let below = (act(lay.encoder[last]), &b.enc[last]);
        match lay.logvar {
            Some(lv) => {
                backward(&mut out, lay.mu, &b.dmu, &b.d_enc[last], false, None);
                backward(&mut out, lv, &b.dlogvar, &b.d_enc[last], true, Some(below));
            }
            None => backward(&mut out, lay.mu, &b.dmu, &b.d_enc[last], false, Some(below)),
        }
        for j in (0..lay.encoder.len()).rev() {
            let li = lay.encoder[j];
            gradients(&mut out, li, &b.d_enc[j], if j == 0 { &b.x } else { &b.enc[j - 1] });
            if j > 0 {
                backward(&mut out, li, &b.d_enc[j], &b.d_enc[j - 1], false, Some((act(lay.encoder[j - 1]), &b.enc[j - 1])));
            }
        }
    }

    // ---- Adam over every parameter, then on to the next step
    let (groups, row_width) = grid(gpu, lay.len);
    let au = gpu.uniform("train.adam", &AdamParams { n: lay.len as u32, row_width, pad: [0; 2] });
    out.push(Dispatch {
        pipeline: k.adam.clone(),
        bind: bind_whole(dev, "adam", &k.adam, &[&b.steps, &b.cursor, &au, &b.grad, &b.params, &b.m, &b.v, &b.bad]),
        groups,
    });
    out.push(Dispatch { pipeline: k.advance.clone(), bind: bind_whole(dev, "advance", &k.advance, &[&b.cursor]), groups: [1, 1, 1] });
    out
}
