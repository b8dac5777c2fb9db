//! The native trainer: backprop, Adam, evaluation, checkpoints and the training loop.

pub mod adam;
pub mod backprop;
pub mod checkpoint;
pub mod evaluate;
pub mod trainer;

pub use trainer::{EpochRecord, FinalReport, LrSchedule, Observer, Outcome, Quiet, TrainConfig, TrainState, Trainer};
