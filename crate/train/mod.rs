//! The trainer: backprop, Adam, the plan of an epoch, evaluation, checkpoints and the loop.
//!
//! `adam`, `backprop`, `config` and `plan` are platform-free: the page trains with them too (see
//! `session`). The rest is native: threads, files, the CLI's loop.
//!
//! Files import each other in one direction only: `plan` uses `adam` and `config`; `state` uses
//! `config`; `step`, `checkpoint`, `observer` and `gpu_step` (which uses `observer`) use `state`
//! and `plan`; `trainer` uses all of them. `backprop`, `adam`, `evaluate` and `pca` use none of
//! these.

pub mod adam;
pub mod backprop;
pub mod config;
pub mod plan;

#[cfg(not(target_arch = "wasm32"))]
pub mod checkpoint;
#[cfg(not(target_arch = "wasm32"))]
pub mod evaluate;
#[cfg(not(target_arch = "wasm32"))]
pub mod gpu_step;
#[cfg(not(target_arch = "wasm32"))]
pub mod observer;
#[cfg(not(target_arch = "wasm32"))]
pub mod pca;
#[cfg(not(target_arch = "wasm32"))]
pub mod state;
#[cfg(not(target_arch = "wasm32"))]
pub mod step;
#[cfg(not(target_arch = "wasm32"))]
pub mod trainer;

pub use config::{LrSchedule, TrainConfig};
#[cfg(not(target_arch = "wasm32"))]
pub use observer::{Observer, Outcome, Quiet};
#[cfg(not(target_arch = "wasm32"))]
pub use state::{EpochRecord, TrainState};
#[cfg(not(target_arch = "wasm32"))]
pub use step::{StepReport, Stepper};
#[cfg(not(target_arch = "wasm32"))]
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
