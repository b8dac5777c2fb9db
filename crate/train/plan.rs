//! The plan of an epoch, shared by every way of training (the CPU's `step`, the GPU's step table,
//! the page's session): which images each step takes (the epoch's permutation), its noise seed,
//! its learning rate and Adam's constants. One place, so all of them take the same steps.
//!
//! Pure and platform-free: it builds for wasm32, where the page trains.

use super::adam::Adam;
use super::config::TrainConfig;
use crate::gpu::training::Step;
use crate::rng;

/// The order in which epoch `epoch` of a run seeded `seed` visits its `n_train` images.
pub fn permutation(seed: u32, epoch: usize, n_train: usize) -> Vec<u32> {
    rng::permutation(rng::derive_seed(seed, epoch as u32), n_train)
}

/// The seed of epoch `epoch`'s reparameterization noise (each example's draw also depends on
/// its position in the epoch).
pub fn noise_seed(seed: u32, epoch: usize) -> u32 {
    rng::derive_seed(seed, 0x4000_0000 | epoch as u32)
}

/// Writes the intensities in [0, 1] of images `idx` (of `px` bytes each in `images`) into `out`.
pub fn gather(images: &[u8], px: usize, idx: &[u32], out: &mut Vec<f32>) {
    out.resize(idx.len() * px, 0.0);
    for (dst, &i) in out.chunks_exact_mut(px).zip(idx) {
        let src = &images[i as usize * px..(i as usize + 1) * px];
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s as f32 * (1.0 / 255.0);
        }
    }
}

/// The step table of epoch `epoch` over `n_train` images, and each step's learning rate, for a
/// run that has taken `adam.t` Adam steps when it stands at batch `first` of that epoch: what
/// the CPU's step computes for each batch (steps before `first` are listed but not taken).
pub fn epoch_steps(cfg: &TrainConfig, adam: &Adam, epoch: usize, first: usize, n_train: usize) -> (Vec<Step>, Vec<f32>) {
    let batches = cfg.batches_per_epoch(n_train);
    let total_steps = (cfg.epochs as u64).saturating_mul(batches as u64);
    let eps_seed = noise_seed(cfg.seed, epoch);
    let mut steps = Vec::with_capacity(batches);
    let mut lrs = Vec::with_capacity(batches);
    for b in 0..batches {
        let start = b * cfg.batch_size;
        let rows = (n_train - start).min(cfg.batch_size);
        // Step b's number t (1-based) counts on from the steps already taken this run.
        let t = (adam.t + 1 + b as u64).saturating_sub(first as u64).max(1);
        let lr = cfg.schedule.at(cfg.lr, t - 1, total_steps);
        let a = adam.constants(lr, t);
        let scale = 1.0 / rows as f32;
        steps.push(Step {
            batch_start: start as u32,
            rows: rows as u32,
            slot: b as u32,
            eps_seed,
            scale,
            kl_scale: cfg.beta * scale,
            adam_step: a.step,
            adam_c2_sqrt: a.c2_sqrt,
            beta1: a.b1,
            beta2: a.b2,
            adam_eps: a.eps,
            pad: 0,
        });
        lrs.push(lr);
    }
    (steps, lrs)
}
