//! One optimisation step: the batch's forward pass, loss and deltas sharded over the worker
//! threads, then every layer's gradient and its Adam update in cache-sized row blocks.
//!
//! Its own file so that the step can be run (and benchmarked) without the loop around it, and so
//! that the loop (`trainer`) is only the loop.
//!
//! Determinism: every example's noise is a pure function of the seed, the epoch and the
//! example's position (see `rng`), and every value of a step is computed the same way however
//! the batch is split between threads (phase 1 splits rows, whose results do not depend on their
//! neighbours; phase 2 sums each gradient over the whole batch in one order). So the weights
//! are bit-identical for any thread count.

use super::adam::{Adam, AdamStep};
use super::backprop::{shard_deltas, LossSums, Workspace};
use super::plan;
use super::state::TrainState;
use crate::dataset::Dataset;
use crate::error::ModelError;
use crate::model::ParamLayout;

/// What one step did.
#[derive(Clone, Copy, Debug)]
pub struct StepReport {
    /// The batch's loss sums (not means).
    pub sums: LossSums,
    /// The batch's size (the last batch of an epoch may be short).
    pub rows: usize,
    /// Whether every parameter is still finite after the update.
    pub finite: bool,
}

/// Runs steps: the worker threads and the buffers each step reuses.
pub struct Stepper {
    pool: rayon::ThreadPool,
    /// Activations and deltas of the current batch.
    ws: Workspace,
    /// The current batch's intensities.
    batch_x: Vec<f32>,
}

impl Stepper {
    /// Starts `threads` worker threads (at least one).
    pub fn new(threads: usize) -> Result<Self, ModelError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| ModelError::Io(format!("cannot start worker threads: {e}")))?;
        Ok(Stepper { pool, ws: Workspace::default(), batch_x: Vec::new() })
    }

    /// The worker threads, for other work of the run (evaluation) to run in.
    pub fn pool(&self) -> &rayon::ThreadPool {
        &self.pool
    }

    /// One optimisation step on batch `state.batch` of epoch `state.epoch`, given that epoch's
    /// permutation of the training images. Updates the weights and Adam's state; the caller
    /// advances `state.batch` and accounts for the loss.
    pub fn step(&mut self, state: &mut TrainState, data: &Dataset, perm: &[u32]) -> StepReport {
        let cfg = &state.config;
        let px = data.pixels();
        let start = state.batch * cfg.batch_size;
        let idx = &perm[start..(start + cfg.batch_size).min(perm.len())];
        let rows = idx.len();
        plan::gather(&data.train_images, px, idx, &mut self.batch_x);
        let eps_seed = plan::noise_seed(cfg.seed, state.epoch);
        let beta = cfg.beta;
        let total_steps = (cfg.epochs as u64).saturating_mul(cfg.batches_per_epoch(data.n_train()) as u64);
        let lr = cfg.schedule.at(cfg.lr, state.adam.t, total_steps);
        let shards = cfg.threads.min(rows).max(1);
        let bounds: Vec<usize> = (0..=shards).map(|t| t * rows / shards).collect();
        let Stepper { pool, ws, batch_x } = self;
        ws.resize(&state.vae, rows);
        let x = &batch_x[..];
        pool.install(|| {
            use rayon::prelude::*;
            // Phase 1: forward, loss and deltas, one shard of rows per thread.
            let vae = &state.vae;
            let parts: Vec<LossSums> = ws
                .shards(&bounds)
                .into_par_iter()
                .enumerate()
                .map(|(t, shard)| {
                    let (lo, hi) = (bounds[t], bounds[t + 1]);
                    shard_deltas(vae, &x[lo * px..hi * px], beta, eps_seed, (start + lo) as u32, 1.0 / rows as f32, shard)
                })
                .collect();
            // Phase 2: each block's gradient over the whole batch, and its Adam update while
            // the gradient is still in cache.
            state.adam.lr = lr;
            let adam = state.adam.begin_step();
            let lay = state.vae.layout().clone();
            let ws = &*ws;
            let Adam { m, v, .. } = &mut state.adam;
            // `reduce`, not `all`: every block is updated even after one reports a non-finite value.
            let finite = row_blocks(&lay, state.vae.params_mut(), m, v)
                .into_par_iter()
                .map_init(Vec::new, |g, b| b.update(&lay, ws, x, &adam, g))
                .reduce(|| true, |a, b| a && b);
            let sums = parts.into_iter().fold(LossSums::default(), |mut a, b| {
                a += b;
                a
            });
            StepReport { sums, rows, finite }
        })
    }
}

/// Parameters per block of phase 2: small enough that a block's gradient stays in cache for
/// its Adam update, large enough that repacking the layer's input per block stays cheap.
const BLOCK_PARAMS: usize = 128 * 1024;

/// A block of one layer's output rows, with its weights, bias and their Adam moments.
struct RowBlock<'a> {
    layer: usize,
    rows: std::ops::Range<usize>,
    /// (weight rows, bias entries) of the parameters, first and second moments.
    p: (&'a mut [f32], &'a mut [f32]),
    m: (&'a mut [f32], &'a mut [f32]),
    v: (&'a mut [f32], &'a mut [f32]),
}

impl RowBlock<'_> {
    /// Returns whether every updated parameter is finite.
    fn update(self, lay: &ParamLayout, ws: &Workspace, x: &[f32], adam: &AdamStep, g: &mut Vec<f32>) -> bool {
        let n_in = lay.layers[self.layer].n_in;
        let (nw, nb) = (self.p.0.len(), self.p.1.len());
        g.resize(nw + nb, 0.0);
        let (gw, gb) = g.split_at_mut(nw);
        ws.layer_grad(lay, self.layer, self.rows.clone(), x, gw, gb);
        debug_assert_eq!(nw, self.rows.len() * n_in);
        let weights_finite = adam.apply(self.p.0, self.m.0, self.v.0, gw);
        adam.apply(self.p.1, self.m.1, self.v.1, gb) && weights_finite
    }
}

/// Output rows per block of a layer with `n_in` inputs and `n_out` outputs.
fn block_rows(n_in: usize, n_out: usize) -> usize {
    (BLOCK_PARAMS / n_in.max(1)).clamp(1, n_out.max(1))
}

/// Splits parameter-shaped buffers into the row blocks of every layer (layers are stored
/// back to back in index order, each as its weight then its bias).
fn row_blocks<'a>(lay: &ParamLayout, mut p: &'a mut [f32], mut m: &'a mut [f32], mut v: &'a mut [f32]) -> Vec<RowBlock<'a>> {
    /// Takes the next layer off `buf`: its (weight rows, bias entries) in blocks of `per` rows.
    fn layer_blocks<'b>(
        buf: &mut &'b mut [f32],
        n_in: usize,
        n_out: usize,
        per: usize,
    ) -> impl Iterator<Item = (&'b mut [f32], &'b mut [f32])> {
        let (layer, rest) = std::mem::take(buf).split_at_mut(n_in * n_out + n_out);
        *buf = rest;
        let (w, b) = layer.split_at_mut(n_in * n_out);
        w.chunks_mut(per * n_in).zip(b.chunks_mut(per))
    }
    let mut blocks = Vec::new();
    for (i, l) in lay.layers.iter().enumerate() {
        assert_eq!(lay.ranges(i).0.start + p.len(), lay.len, "layers are stored back to back");
        let per = block_rows(l.n_in, l.n_out);
        let (pb, mb, vb) = (
            layer_blocks(&mut p, l.n_in, l.n_out, per),
            layer_blocks(&mut m, l.n_in, l.n_out, per),
            layer_blocks(&mut v, l.n_in, l.n_out, per),
        );
        for (((r0, p), m), v) in (0..l.n_out).step_by(per).zip(pb).zip(mb).zip(vb) {
            blocks.push(RowBlock { layer: i, rows: r0..(r0 + per).min(l.n_out), p, m, v });
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::Architecture;
    use crate::rng;
    use crate::train::backprop::loss_and_grad;
    use crate::train::config::TrainConfig;
    use crate::train::testing::synthetic;

    /// A step (deltas by shard, gradients and Adam by row block) equals the
    /// gradient-checked single-pass `loss_and_grad` followed by a plain Adam step.
    #[test]
    fn a_blocked_step_equals_whole_batch_gradient_then_adam() {
        let n_train = 40;
        let data = synthetic(n_train);
        let px = data.pixels();
        // The first hidden layer (20 inputs) splits into 5 whole row blocks and a partial one.
        let config = TrainConfig {
            arch: Architecture::mirrored(px, &[BLOCK_PARAMS / px * 5 + 3, 7], 3),
            batch_size: 16,
            threads: 3,
            epochs: 2,
            ..TrainConfig::default()
        };
        let mut state = TrainState::new(config.clone(), &data).unwrap();
        let mut stepper = Stepper::new(config.threads).unwrap();
        assert!(state.vae.layout().layers.iter().any(|l| l.n_out > block_rows(l.n_in, l.n_out)), "blocks must split a layer");
        let (mut vae, mut adam) = (state.vae.clone(), state.adam.clone());
        let perm = rng::permutation(rng::derive_seed(config.seed, 0), n_train);
        for b in 0..2 {
            state.batch = b;
            assert!(stepper.step(&mut state, &data, &perm).finite, "the step stays finite");
            let idx = &perm[b * 16..(b + 1) * 16];
            let x: Vec<f32> =
                idx.iter().flat_map(|&i| data.train_images[i as usize * px..][..px].iter().map(|&v| v as f32 * (1.0 / 255.0))).collect();
            let mut grad = vec![0.0; vae.params().len()];
            let eps_seed = rng::derive_seed(config.seed, 0x4000_0000);
            loss_and_grad(&vae, &x, 1.0, eps_seed, (b * 16) as u32, 1.0 / 16.0, &mut grad, &mut Workspace::default());
            assert!(adam.step(vae.params_mut(), &grad, 1));
            let differ = state.vae.params().iter().zip(vae.params()).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "step {b}: {differ} parameters differ");
            assert!(state.adam == adam, "step {b}: Adam state differs");
        }
    }
}
