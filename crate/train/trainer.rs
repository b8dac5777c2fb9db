//! The training loop: minibatch steps (`step`), per-epoch evaluation, checkpoints, and the
//! final model file.
//!
//! Determinism: the shuffle of epoch `e` is a pure function of the seed and the epoch, and each
//! step is bit-identical for any thread count (see `step`). So a resumed run (from any step)
//! continues exactly as the uninterrupted one would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::backprop::LossSums;
use super::checkpoint;
use super::config::TrainConfig;
use super::evaluate::{self, TestFigures};
use super::gpu_step::GpuStepper;
use super::observer::{Observer, Outcome};
use super::pca;
use super::plan;
use super::state::{EpochRecord, TrainState};
use super::step::{StepReport, Stepper};
use crate::architecture::ModelKind;
use crate::dataset::Dataset;
use crate::error::ModelError;
use crate::fsutil::atomic_write;
use crate::model::Vae;
use crate::weights::{self, Embedding, StorageDtype};

/// Final figures, also written into the model's metadata.
#[derive(Clone, Debug)]
pub struct FinalReport {
    pub figures: TestFigures,
    pub train_seconds: f64,
    pub model_path: PathBuf,
}

pub struct Trainer<'a> {
    pub state: TrainState,
    data: &'a Dataset,
    /// The CPU's steps, and the worker threads evaluation runs in on either backend.
    stepper: Stepper,
    /// The GPU's steps (`--backend gpu`), when it trains there.
    gpu: Option<GpuStepper>,
}

/// Refuses, before any training, outputs that cannot be written safely: the model file, its
/// checkpoint and its log must each be (or become) a regular file.
pub fn check_outputs(out: &Path) -> Result<(), ModelError> {
    for path in [out.to_path_buf(), sibling(out, ".ckpt"), sibling(out, ".train.jsonl")] {
        crate::fsutil::check_writable(&path).map_err(|e| ModelError::Io(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Where a run's checkpoint and JSON-lines log live, beside the model file.
pub fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    out.with_file_name(format!("{stem}{suffix}"))
}

impl<'a> Trainer<'a> {
    /// A fresh run.
    pub fn new(config: TrainConfig, data: &'a Dataset) -> Result<Self, ModelError> {
        Self::from_state(TrainState::new(config, data)?, data)
    }

    /// Continues a run from its state (read from a checkpoint).
    pub fn from_state(state: TrainState, data: &'a Dataset) -> Result<Self, ModelError> {
        let stepper = Stepper::new(state.config.threads)?;
        Ok(Trainer { state, data, stepper, gpu: None })
    }

    /// Continues a run from its state with its steps on the GPU.
    pub fn on_gpu(state: TrainState, data: &'a Dataset, options: crate::gpu::training::TrainerOptions) -> Result<Self, ModelError> {
        let gpu = GpuStepper::new(&state, data, options)?;
        let mut t = Self::from_state(state, data)?;
        t.gpu = Some(gpu);
        Ok(t)
    }

    /// The GPU adapter the steps run on (`None` on the CPU).
    pub fn gpu_adapter(&self) -> Option<String> {
        self.gpu.as_ref().map(GpuStepper::adapter_name)
    }

    fn n_train(&self) -> usize {
        self.data.n_train()
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.state.config.batches_per_epoch(self.n_train())
    }

    /// One optimisation step on the current batch of the current epoch, given that epoch's
    /// permutation.
    fn step(&mut self, perm: &[u32]) -> StepReport {
        self.stepper.step(&mut self.state, self.data, perm)
    }

    /// Runs `n` optimisation steps with no evaluation or files, wrapping across epochs; returns
    /// the number of examples processed. For benchmarks (on the GPU, it waits for the last step).
    pub fn bench_steps(&mut self, n: usize) -> Result<usize, ModelError> {
        let seed = self.state.config.seed;
        let mut perm = plan::permutation(seed, self.state.epoch, self.n_train());
        let mut examples = 0;
        let mut done = 0;
        let per_epoch = self.batches_per_epoch();
        while done < n {
            if self.state.batch >= per_epoch {
                self.state.batch = 0;
                self.state.epoch += 1;
                perm = plan::permutation(seed, self.state.epoch, self.n_train());
            }
            if let Some(gpu) = &mut self.gpu {
                gpu.begin_epoch(&self.state, &perm)?;
                let batches = self.state.batch..(self.state.batch + n - done).min(per_epoch);
                let submitted = gpu.submit(batches.clone())?;
                gpu.losses(submitted)?;
                for b in batches {
                    examples += gpu.count_step(&mut self.state, b);
                    self.state.batch += 1;
                    done += 1;
                }
                continue;
            }
            examples += self.step(&perm).rows;
            self.state.batch += 1;
            done += 1;
        }
        if let Some(gpu) = &self.gpu {
            gpu.sync(&mut self.state)?;
        }
        Ok(examples)
    }

    /// Trains until `config.epochs` epochs are complete or `stop` is set, writing a checkpoint
    /// after every epoch (and on stop) and a JSON-lines log line per epoch.
    ///
    /// A non-finite loss or parameter stops the run with [`ModelError::Diverged`] before
    /// anything more is written: the last checkpoint (from the last good epoch) stays.
    pub fn run(&mut self, out: &Path, observer: &mut dyn Observer, stop: &AtomicBool) -> Result<Outcome, ModelError> {
        check_outputs(out)?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| ModelError::Io(format!("{}: {e}", dir.display())))?;
        }
        let ckpt = sibling(out, ".ckpt");
        let log = sibling(out, ".train.jsonl");
        // A fresh run replaces the log with its first epoch's line (so a run that stops
        // earlier leaves an earlier run's log with its model); a resumed run appends.
        let mut fresh_log = self.state.epoch == 0 && self.state.batch == 0;
        while self.state.epoch < self.state.config.epochs {
            let epoch = self.state.epoch;
            let perm = plan::permutation(self.state.config.seed, epoch, self.n_train());
            let batches = self.batches_per_epoch();
            observer.epoch_start(epoch, batches, self.state.batch);
            let outcome = match &mut self.gpu {
                Some(gpu) => super::gpu_step::run_epoch(gpu, &mut self.state, &perm, observer, stop)?,
                None => self.run_epoch_cpu(&perm, observer, stop)?,
            };
            if outcome == Outcome::Interrupted {
                checkpoint::save(&ckpt, &self.state)?;
                observer.message(&format!("interrupted: checkpoint written to {}", ckpt.display()));
                return Ok(Outcome::Interrupted);
            }
            let test = self.stepper.pool().install(|| evaluate::evaluate_elbo(&self.state.vae, &self.data.test_images));
            let st = &mut self.state;
            let n = st.epoch_examples.max(1) as f64;
            let record = EpochRecord {
                epoch: epoch + 1,
                train_neg_elbo: (st.epoch_sums.reconstruction + st.epoch_sums.kl) / n,
                train_reconstruction: st.epoch_sums.reconstruction / n,
                train_kl: st.epoch_sums.kl / n,
                test_neg_elbo: test.neg_elbo,
                test_reconstruction: test.reconstruction,
                test_kl: test.kl,
                seconds: st.epoch_seconds,
                examples_per_second: n / st.epoch_seconds.max(1e-9),
            };
            st.history.push(record.clone());
            st.epoch += 1;
            st.batch = 0;
            st.epoch_sums = LossSums::default();
            st.epoch_examples = 0;
            st.epoch_seconds = 0.0;
            let line = serde_json::to_string(&record).expect("records serialise") + "\n";
            if std::mem::take(&mut fresh_log) {
                atomic_write(&log, line.as_bytes()).map_err(|e| ModelError::Io(format!("{}: {e}", log.display())))?;
            } else {
                append_line(&log, &line)?;
            }
            checkpoint::save(&ckpt, &self.state)?;
            observer.epoch_end(&record);
        }
        Ok(Outcome::Finished)
    }

    /// The rest of the current epoch on the CPU, step by step, until it ends or `stop` is set.
    fn run_epoch_cpu(&mut self, perm: &[u32], observer: &mut dyn Observer, stop: &AtomicBool) -> Result<Outcome, ModelError> {
        while self.state.batch < self.batches_per_epoch() {
            if stop.load(Ordering::SeqCst) {
                return Ok(Outcome::Interrupted);
            }
            let t0 = Instant::now();
            let StepReport { sums, rows, finite } = self.step(perm);
            self.state.check_step(sums, finite)?;
            let loss = self.state.account(sums, rows, t0.elapsed().as_secs_f64());
            let st = &self.state;
            observer.step(st.batch, loss, st.epoch_examples as f64 / st.epoch_seconds.max(1e-9));
        }
        Ok(Outcome::Finished)
    }

    /// Evaluates the trained model and writes the model file (atomically).
    pub fn finish(&self, out: &Path, dtype: StorageDtype) -> Result<FinalReport, ModelError> {
        let st = &self.state;
        let run = Run { config: &st.config, data: self.data, epochs: st.epoch, train_seconds: st.train_seconds };
        self.stepper.pool().install(|| write_model(&st.vae, &run, out, dtype))
    }
}

/// What the model file's metadata says about the run that made it.
struct Run<'a> {
    config: &'a TrainConfig,
    data: &'a Dataset,
    epochs: usize,
    train_seconds: f64,
}

/// Measures `vae` on the test set and writes it, its embedding and the run's metadata to `out`
/// (atomically), in the current rayon pool: every kind's model file is written here.
fn write_model(vae: &Vae, run: &Run, out: &Path, dtype: StorageDtype) -> Result<FinalReport, ModelError> {
    let images = &run.data.test_images;
    let mu = evaluate::encode_means(vae, images);
    let figures = TestFigures::measure(vae, images, &run.data.test_labels, &mu, run.config.iw_samples);
    let embedding = Embedding { mu, labels: run.data.test_labels.clone() };
    let meta = metadata(run, &figures);
    let bytes = weights::to_bytes(vae, Some(&embedding), &meta, dtype, Vec::new())?;
    atomic_write(out, &bytes).map_err(|e| ModelError::Io(format!("writing {}: {e}", out.display())))?;
    Ok(FinalReport { figures, train_seconds: run.train_seconds, model_path: out.to_path_buf() })
}

/// The model file's metadata: the run's settings and the test figures (a PCA has no optimiser
/// settings, and only a VAE a beta).
fn metadata(run: &Run, figures: &TestFigures) -> BTreeMap<String, String> {
    let c = run.config;
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("dataset", run.data.metadata_json().to_string());
    put("threads", c.threads.to_string());
    put("train_seconds", format!("{:.1}", run.train_seconds));
    put("crate_version", env!("CARGO_PKG_VERSION").to_string());
    put("trainer", "latent-explorer train".to_string());
    if c.arch.kind != ModelKind::Pca {
        put("epochs", run.epochs.to_string());
        put("seed", c.seed.to_string());
        put("lr", c.lr.to_string());
        put("lr_schedule", serde_json::to_string(&c.schedule).expect("schedules serialise"));
        put("batch_size", c.batch_size.to_string());
    }
    if c.arch.kind.is_variational() {
        put("beta", c.beta.to_string());
    }
    figures.record(&mut m);
    m
}

/// `train --kind pca`: fits the principal components of the training images (`pca`), writes the
/// model file like any run's and a one-line log (fit seconds, explained variances) beside it.
pub fn fit_pca(config: &TrainConfig, data: &Dataset, out: &Path, dtype: StorageDtype) -> Result<FinalReport, ModelError> {
    check_outputs(out)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ModelError::Io(format!("{}: {e}", dir.display())))?;
    }
    let pool = Stepper::new(config.threads)?;
    let t0 = Instant::now();
    let pca = pool.pool().install(|| pca::fit(&data.train_images, data.pixels(), config.arch.latent))?;
    let vae = pca.to_model()?;
    let fit_seconds = t0.elapsed().as_secs_f64();
    let log = sibling(out, ".train.jsonl");
    let line = serde_json::to_string(&pca.record(fit_seconds)).expect("records serialise") + "\n";
    atomic_write(&log, line.as_bytes()).map_err(|e| ModelError::Io(format!("{}: {e}", log.display())))?;
    let run = Run { config, data, epochs: 0, train_seconds: fit_seconds };
    pool.pool().install(|| write_model(&vae, &run, out, dtype))
}

fn append_line(path: &Path, line: &str) -> Result<(), ModelError> {
    use std::io::Write;
    let mut f =
        std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))?;
    f.write_all(line.as_bytes()).map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::Architecture;
    use crate::train::testing::synthetic;

    #[test]
    fn a_zero_batch_size_is_a_configuration_error_not_an_architecture_error() {
        let data = synthetic(8);
        let config = TrainConfig { arch: Architecture::mirrored(20, &[3], 2), batch_size: 0, ..TrainConfig::default() };
        let err = Trainer::new(config, &data).err().expect("a zero batch size is refused").to_string();
        assert_eq!(err, "invalid training configuration: the batch size and the thread count must be at least 1");
    }
}
