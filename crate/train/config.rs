//! What determines a run: the configuration a checkpoint stores and a resumed run keeps, its
//! learning-rate schedule, and the bounds every configuration stays within.
//!
//! Its own file so that the loop (`trainer`), one step (`step`) and the checkpoint format
//! (`checkpoint`) can all share these types without importing each other.

use serde::{Deserialize, Serialize};

use crate::architecture::Architecture;

/// Bounds on what a configuration may ask for (threads started, samples drawn per test image).
/// `train` refuses larger values up front and a checkpoint asking for more is refused, so every
/// run it starts can be resumed.
pub const MAX_THREADS: usize = 4096;
pub const MAX_IW_SAMPLES: usize = 1 << 16;

/// Everything that determines a run's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub arch: Architecture,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub beta: f32,
    pub seed: u32,
    pub threads: usize,
    pub iw_samples: usize,
    /// Use only the first N training images.
    pub limit: Option<usize>,
    /// Learning-rate schedule over the whole run.
    #[serde(default)]
    pub schedule: LrSchedule,
}

/// How the learning rate moves over the run. A pure function of the step, so a resumed run
/// follows the same curve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    #[default]
    Constant,
    /// Half a cosine from `lr` down to `lr * floor` at the last step (Loshchilov & Hutter 2017).
    Cosine { floor: f32 },
}

impl LrSchedule {
    /// The learning rate for step `t` (0-based) of `total`.
    pub fn at(&self, lr: f32, t: u64, total: u64) -> f32 {
        match *self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine { floor } => {
                let progress = (t as f64 / total.max(1) as f64).min(1.0);
                let min = (lr * floor) as f64;
                (min + 0.5 * (lr as f64 - min) * (1.0 + (std::f64::consts::PI * progress).cos())) as f32
            }
        }
    }
}

impl TrainConfig {
    /// Batches in an epoch over `n_train` images (the last one may be short).
    pub fn batches_per_epoch(&self, n_train: usize) -> usize {
        n_train.div_ceil(self.batch_size)
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            arch: Architecture::default(),
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            beta: 1.0,
            seed: 0,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            iw_samples: 100,
            limit: None,
            schedule: LrSchedule::Constant,
        }
    }
}
