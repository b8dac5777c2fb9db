//! A training run held in memory and stepped by its caller: the page's Train panel. The same
//! steps as `train` (the epoch's [`plan`](crate::train::plan), `backprop` and Adam on the CPU; the GPU trainer's
//! step table on the GPU), with a constant learning rate, no files and no end: the caller steps
//! it, reads its weights, and may change beta between steps.
//!
//! [`CpuSession`] runs on the calling thread (the page's Web Worker); [`GpuSession`] queues
//! steps on a device of its own and reads their losses a group later, so it never waits for the
//! GPU between groups. Both build for wasm32 and natively, where `cargo test` checks them
//! against the native trainer. A [`Snapshot`] carries a run from one to the other.

use std::collections::BTreeMap;

use crate::architecture::{Architecture, ModelKind};
use crate::error::ModelError;
use crate::model::Vae;
use crate::testset::{TestSet, PIXELS};
use crate::train::adam::Adam;
use crate::train::config::{LrSchedule, TrainConfig};
use crate::weights::{self, StorageDtype};

mod cpu;
mod gpu;

pub use cpu::CpuSession;
pub use gpu::GpuSession;

/// The largest batch a session takes.
pub const MAX_BATCH: usize = 4096;

/// The hidden layer sizes the Train panel offers, by name: `small` learns a layout in seconds,
/// `default` is the shipped models' (`train`'s default).
pub const HIDDEN_PRESETS: [(&str, &[usize]); 2] = [("small", &[128, 64]), ("default", &[512, 256])];

/// What the Train panel (or the `session` CLI) asks for: a 2-D model of 784 inputs.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// `vae` or `ae`.
    pub kind: String,
    /// A name of [`HIDDEN_PRESETS`].
    pub hidden: String,
    pub lr: f32,
    pub batch_size: usize,
    pub beta: f32,
    pub seed: u32,
}

impl Settings {
    /// The run these settings describe (a constant learning rate; `epochs` only names the
    /// schedule's length, which a constant one ignores), or what is wrong with them.
    pub fn config(&self) -> Result<TrainConfig, ModelError> {
        let kind = match self.kind.as_str() {
            "vae" => ModelKind::Vae,
            "ae" => ModelKind::Ae,
            other => return Err(ModelError::Config(format!("the model kind must be vae or ae, not {other:?}"))),
        };
        let Some((_, hidden)) = HIDDEN_PRESETS.iter().find(|(name, _)| *name == self.hidden) else {
            return Err(ModelError::Config(format!("the hidden sizes must be small or default, not {:?}", self.hidden)));
        };
        Ok(TrainConfig {
            arch: Architecture { kind, ..Architecture::mirrored(PIXELS, hidden, 2) },
            epochs: 1,
            batch_size: self.batch_size,
            lr: self.lr,
            beta: self.beta,
            seed: self.seed,
            threads: 1,
            iw_samples: 1,
            limit: None,
            schedule: LrSchedule::Constant,
        })
    }
}

/// One finished step: its loss terms per example and the beta it used.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct StepResult {
    pub reconstruction: f64,
    pub kl: f64,
    pub rows: usize,
    pub beta: f32,
}

impl StepResult {
    /// -ELBO per example (with beta on the KL term, as the step minimises it).
    pub fn loss(&self) -> f64 {
        self.reconstruction + self.beta as f64 * self.kl
    }
}

/// Where a run stands: enough to continue it anywhere (after a lost GPU device, on the CPU).
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub config: TrainConfig,
    pub vae: Vae,
    pub adam: Adam,
    /// Epochs completed, and steps of the current epoch completed.
    pub epoch: usize,
    pub batch: usize,
}

impl Snapshot {
    /// A fresh run of `config`: initial weights from its seed, no steps taken.
    pub fn start(config: TrainConfig) -> Result<Self, ModelError> {
        let vae = Vae::init(config.arch.clone(), config.seed)?;
        let adam = Adam::new(vae.params().len(), config.lr);
        Ok(Snapshot { config, vae, adam, epoch: 0, batch: 0 })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.adam.t
    }
}

/// Refuses a configuration the session cannot train on `data`, with the reason.
pub fn check(config: &TrainConfig, data: &TestSet) -> Result<(), ModelError> {
    config.arch.validate()?;
    if config.arch.input != PIXELS {
        return Err(ModelError::Architecture(format!("the model takes {} inputs, the training images have {PIXELS}", config.arch.input)));
    }
    if config.arch.kind == ModelKind::Pca {
        return Err(ModelError::Config("PCA is fitted in one go (train --kind pca), not trained step by step".into()));
    }
    if config.batch_size == 0 || config.batch_size > MAX_BATCH.min(data.len()) {
        return Err(ModelError::Config(format!(
            "the batch size must be between 1 and {} (the training images), not {}",
            MAX_BATCH.min(data.len()),
            config.batch_size
        )));
    }
    let ok = |v: f32| v.is_finite() && v >= 0.0;
    if !(ok(config.lr) && config.lr > 0.0 && ok(config.beta)) {
        return Err(ModelError::Config(format!(
            "the learning rate must be above 0 and beta at least 0 (got {} and {})",
            config.lr, config.beta
        )));
    }
    Ok(())
}

/// The error a finished step's results mean, if any: the CLI's divergence error, with the
/// position of the step (epoch and step 1-based).
fn check_step(config: &TrainConfig, epoch: usize, batch: usize, reconstruction: f64, kl: f64, finite: bool) -> Result<(), ModelError> {
    let what = if !(reconstruction.is_finite() && kl.is_finite()) {
        format!("the loss is {}", reconstruction + kl)
    } else if !finite {
        "a gradient or weight is no longer finite".to_string()
    } else {
        return Ok(());
    };
    Err(ModelError::Diverged { epoch: epoch + 1, step: batch + 1, what, lr: config.lr, suggested_lr: config.lr / 10.0 })
}

/// The model file of a session's weights, in the project's format (full precision, so it holds
/// the page's weights bit for bit), with metadata saying how it was trained.
pub fn model_bytes(s: &Snapshot, data: &TestSet, trained_on: &str) -> Result<Vec<u8>, ModelError> {
    let c = &s.config;
    let dataset = serde_json::json!({
        "name": data.dataset,
        "classes": data.classes,
        "train_examples": data.len(),
        "selection": data.selection,
        "sha256": data.source_sha256.iter().cloned().collect::<BTreeMap<String, String>>(),
    });
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("dataset", dataset.to_string());
    put("kind", c.arch.kind.name().to_string());
    put("loss", c.arch.loss.name().to_string());
    put("trainer", format!("latent-explorer page ({trained_on})"));
    put("crate_version", env!("CARGO_PKG_VERSION").to_string());
    put("steps", s.adam.t.to_string());
    put("epochs", format!("{:.3}", s.epoch as f64 + s.batch as f64 / c.batches_per_epoch(data.len()) as f64));
    put("seed", c.seed.to_string());
    put("lr", c.lr.to_string());
    put("batch_size", c.batch_size.to_string());
    if c.arch.kind.is_variational() {
        put("beta", c.beta.to_string());
    }
    weights::to_bytes(&s.vae, None, &m, StorageDtype::F32, Vec::new())
}
