//! What the CLI (or a test) sees of a run while it trains, and how a run ended. Its own file so
//! that both step loops, the CPU's (`trainer`) and the GPU's (`gpu_step`), report through it.

use super::state::EpochRecord;

/// What the CLI shows while training runs.
pub trait Observer {
    fn epoch_start(&mut self, _epoch: usize, _batches: usize, _done: usize) {}
    /// After each step (the GPU backend reports its steps a group at a time).
    fn step(&mut self, _batch: usize, _neg_elbo: f64, _examples_per_second: f64) {}
    fn epoch_end(&mut self, _record: &EpochRecord) {}
    fn message(&mut self, _text: &str) {}
}

/// Observes nothing (tests, benchmarks).
pub struct Quiet;
impl Observer for Quiet {}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped by the stop flag; a checkpoint holds the state.
    Interrupted,
}
