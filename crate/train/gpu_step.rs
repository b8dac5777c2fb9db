//! `train --backend gpu`: the native trainer's steps on the GPU ([`crate::gpu::training`]),
//! driven with pollster. This file turns the run's state into the GPU's step table (the same
//! batches, noise seeds, learning rates and Adam constants as the CPU's `step`) and the GPU's
//! parameters and moments back into the run's state, so checkpoints are shared by both backends.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::backprop::LossSums;
use super::observer::{Observer, Outcome};
use super::plan;
use super::state::TrainState;
use crate::dataset::Dataset;
use crate::error::ModelError;
use crate::gpu::training::{GpuTrainer, Step, StepLoss, Submitted, TrainerOptions, TrainerStart};
use crate::gpu::GpuError;

/// What the CLI adds to a GPU error: the way out.
const SUGGESTION: &str = "train on the CPU with --backend cpu";

fn gpu_error(e: GpuError) -> ModelError {
    ModelError::Gpu(format!("{e}; {SUGGESTION}"))
}

/// The GPU trainer for a run, and the step table of its current epoch.
pub struct GpuStepper {
    gpu: GpuTrainer,
    steps: Vec<Step>,
    /// The learning rate of each step of the epoch (the schedule's value).
    lrs: Vec<f32>,
}

impl GpuStepper {
    /// Uploads the run's model, Adam's moments and the training images.
    pub fn new(state: &TrainState, data: &Dataset, options: TrainerOptions) -> Result<Self, ModelError> {
        let max_steps = state.config.batches_per_epoch(data.n_train());
        let start = TrainerStart {
            vae: &state.vae,
            m: &state.adam.m,
            v: &state.adam.v,
            images: &data.train_images,
            max_rows: state.config.batch_size,
            max_steps,
        };
        let gpu = pollster::block_on(GpuTrainer::new(start, options)).map_err(gpu_error)?;
        Ok(GpuStepper { gpu, steps: Vec::new(), lrs: Vec::new() })
    }

    pub fn adapter_name(&self) -> String {
        self.gpu.adapter_name()
    }

    pub fn trainer(&self) -> &GpuTrainer {
        &self.gpu
    }

    /// Starts epoch `state.epoch` at batch `state.batch`, given that epoch's permutation.
    pub fn begin_epoch(&mut self, state: &TrainState, perm: &[u32]) -> Result<(), ModelError> {
        let (steps, lrs) = epoch_steps(state, perm.len());
        self.steps = steps;
        self.lrs = lrs;
        self.gpu.begin_epoch(perm, &self.steps, state.batch).map_err(gpu_error)
    }

    /// Submits batches `batches` of the current epoch (from where the last submit stopped).
    pub fn submit(&mut self, batches: Range<usize>) -> Result<Submitted, ModelError> {
        self.gpu.submit(&self.steps, batches).map_err(gpu_error)
    }

    /// The submitted steps' loss sums (waits for the GPU to run them).
    pub fn losses(&self, s: Submitted) -> Result<Vec<StepLoss>, ModelError> {
        pollster::block_on(self.gpu.losses(s)).map_err(gpu_error)
    }

    /// Counts batch `b` as an Adam step in `state` (its step number and learning rate, as the
    /// CPU's `Adam::begin_step` does); returns its rows.
    pub fn count_step(&self, state: &mut TrainState, b: usize) -> usize {
        state.adam.t += 1;
        state.adam.lr = self.lrs[b];
        self.steps[b].rows as usize
    }

    /// Copies the GPU's parameters and Adam moments into `state` (whose step count and
    /// learning rate the caller keeps).
    pub fn sync(&self, state: &mut TrainState) -> Result<(), ModelError> {
        let (p, m, v) = pollster::block_on(self.gpu.read_state()).map_err(gpu_error)?;
        state.vae.params_mut().copy_from_slice(&p);
        state.adam.m = m;
        state.adam.v = v;
        Ok(())
    }
}

/// The step table of epoch `state.epoch` over `n_train` images, and each step's learning rate
/// (the epoch's [`plan`], from where the run stands).
pub fn epoch_steps(state: &TrainState, n_train: usize) -> (Vec<Step>, Vec<f32>) {
    plan::epoch_steps(&state.config, &state.adam, state.epoch, state.batch, n_train)
}

/// Steps per command buffer: enough to keep the GPU busy between the loss reads (each read
/// waits for the group before the one just queued), few enough that progress shows often.
const GROUP: usize = 16;

/// The rest of the current epoch on the GPU, a group of steps at a time: each group is queued
/// before the previous group's loss sums are read, so the GPU never waits for the CPU. Stops
/// early when `stop` is set (after accounting every submitted step, with the state synced for a
/// checkpoint); a non-finite loss or parameter stops the run with the CPU trainer's error,
/// before anything is written. At the end the state holds the GPU's weights.
pub fn run_epoch(
    gpu: &mut GpuStepper,
    state: &mut TrainState,
    perm: &[u32],
    observer: &mut dyn Observer,
    stop: &AtomicBool,
) -> Result<Outcome, ModelError> {
    let batches = state.config.batches_per_epoch(perm.len());
    gpu.begin_epoch(state, perm)?;
    let mut next = state.batch;
    let mut pending: Option<(Submitted, Range<usize>)> = None;
    let mut outcome = Outcome::Finished;
    let mut clock = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) && outcome == Outcome::Finished {
            outcome = Outcome::Interrupted;
        }
        let queued = if next < batches && outcome == Outcome::Finished {
            let r = next..(next + GROUP).min(batches);
            next = r.end;
            Some((gpu.submit(r.clone())?, r))
        } else {
            None
        };
        if let Some((s, r)) = pending.take() {
            let losses = gpu.losses(s)?;
            let seconds = clock.elapsed().as_secs_f64() / r.len() as f64;
            clock = Instant::now();
            for (b, l) in r.zip(losses) {
                let sums = LossSums { reconstruction: l.reconstruction, kl: l.kl };
                state.check_step(sums, l.finite)?;
                let rows = gpu.count_step(state, b);
                let loss = state.account(sums, rows, seconds);
                observer.step(state.batch, loss, state.epoch_examples as f64 / state.epoch_seconds.max(1e-9));
            }
        }
        pending = queued;
        if pending.is_none() {
            break;
        }
    }
    gpu.sync(state)?;
    Ok(outcome)
}
