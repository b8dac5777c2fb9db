//! The native trainer: backprop, Adam, evaluation, checkpoints and the training loop.
//!
//! Files import each other in one direction only: `state` uses `config`; `step`, `checkpoint`,
//! `observer` and `gpu_step` (which uses `observer`) use `state`; `trainer` uses all of them. `backprop`, `adam`, `evaluate` and `pca` use none of these.

pub mod adam;
pub mod backprop;
pub mod checkpoint;
pub mod config;
pub mod evaluate;
pub mod gpu_step;
pub mod observer;
pub mod pca;
pub mod state;
pub mod step;
pub mod trainer;

pub use config::{LrSchedule, TrainConfig};
pub use observer::{Observer, Outcome, Quiet};
pub use state::{EpochRecord, TrainState};
pub use step::{StepReport, Stepper};
pub use trainer::{FinalReport, Trainer};

/// Data for the unit tests of the trainer's files.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::PathBuf;

    use crate::dataset::Dataset;

    /// `n_train` synthetic 4x5 images with no test set.
    pub fn synthetic(n_train: usize) -> Dataset {
        let (rows, cols) = (4, 5);
        Dataset {
            name: "custom".into(),
            dir: PathBuf::new(),
            rows,
            cols,
            train_images: (0..n_train * rows * cols).map(|i| ((i * 97 + 13) % 256) as u8).collect(),
            train_labels: vec![0; n_train],
            test_images: Vec::new(),
            test_labels: Vec::new(),
            files_sha256: Default::default(),
        }
    }
}
