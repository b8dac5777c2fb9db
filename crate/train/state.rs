//! The state of a run: everything a checkpoint stores, and the per-epoch records of its log.
//!
//! Its own file so that the loop (`trainer`), one step (`step`) and the checkpoint format
//! (`checkpoint`) can all share it without importing each other.

use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::backprop::LossSums;
use super::config::TrainConfig;
use crate::dataset::Dataset;
use crate::error::ModelError;
use crate::model::Vae;

/// One epoch's summary: a line of the JSON-lines log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_neg_elbo: f64,
    pub train_reconstruction: f64,
    pub train_kl: f64,
    pub test_neg_elbo: f64,
    pub test_reconstruction: f64,
    pub test_kl: f64,
    pub seconds: f64,
    pub examples_per_second: f64,
}

/// The complete state of a run; a checkpoint stores all of it.
#[derive(Clone, Debug)]
pub struct TrainState {
    pub config: TrainConfig,
    pub vae: Vae,
    pub adam: Adam,
    /// Epochs completed.
    pub epoch: usize,
    /// Batches of the current epoch completed.
    pub batch: usize,
    /// Loss sums and example count of the current epoch so far.
    pub epoch_sums: LossSums,
    pub epoch_examples: usize,
    pub epoch_seconds: f64,
    pub train_seconds: f64,
    pub history: Vec<EpochRecord>,
    /// sha256 of the training images, to refuse resuming on other data.
    pub dataset_sha256: String,
}

impl TrainState {
    /// The state of a fresh run of `config` on `data`: initial weights, no steps taken.
    pub fn new(config: TrainConfig, data: &Dataset) -> Result<Self, ModelError> {
        if config.arch.input != data.pixels() {
            return Err(ModelError::Architecture(format!(
                "the model takes {} inputs but the images have {} pixels",
                config.arch.input,
                data.pixels()
            )));
        }
        if config.batch_size == 0 || config.threads == 0 {
            return Err(ModelError::Config("the batch size and the thread count must be at least 1".into()));
        }
        let vae = Vae::init(config.arch.clone(), config.seed)?;
        let adam = Adam::new(vae.params().len(), config.lr);
        Ok(TrainState {
            config,
            vae,
            adam,
            epoch: 0,
            batch: 0,
            epoch_sums: LossSums::default(),
            epoch_examples: 0,
            epoch_seconds: 0.0,
            train_seconds: 0.0,
            history: Vec::new(),
            dataset_sha256: data.train_images_sha256().to_string(),
        })
    }

    /// The error a step's results mean, if any: a non-finite loss or parameter stops the run.
    pub fn check_step(&self, sums: LossSums, finite: bool) -> Result<(), ModelError> {
        let what = if !(sums.reconstruction.is_finite() && sums.kl.is_finite()) {
            format!("the loss is {}", sums.reconstruction + sums.kl)
        } else if !finite {
            "a gradient or weight is no longer finite".to_string()
        } else {
            return Ok(());
        };
        let lr = self.config.lr;
        Err(ModelError::Diverged { epoch: self.epoch + 1, step: self.batch + 1, what, lr, suggested_lr: lr / 10.0 })
    }

    /// Counts a finished step of `rows` examples that took `seconds`; returns its loss per example.
    pub fn account(&mut self, sums: LossSums, rows: usize, seconds: f64) -> f64 {
        self.batch += 1;
        self.epoch_sums += sums;
        self.epoch_examples += rows;
        self.epoch_seconds += seconds;
        self.train_seconds += seconds;
        (sums.reconstruction + sums.kl * self.config.beta as f64) / rows as f64
    }
}
