//! The training loop: data-parallel minibatch steps, per-epoch evaluation, checkpoints, and
//! the final model file.
//!
//! Determinism: the shuffle of epoch `e` and every example's noise are pure functions of the
//! seed, the epoch and the example's position (see `rng`), and every value of a step is computed
//! the same way however the batch is split between threads (phase 1 splits rows, whose results do
//! not depend on their neighbours; phase 2 sums each gradient over the whole batch in one order).
//! So the weights are bit-identical for any thread count, and a resumed run (from any step)
//! continues exactly as the uninterrupted one would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::adam::{Adam, AdamStep};
use super::backprop::{shard_deltas, LossSums, Workspace};
use super::checkpoint;
use super::evaluate::{self, ElboReport};
use crate::architecture::Architecture;
use crate::dataset::Dataset;
use crate::error::ModelError;
use crate::fsutil::atomic_write;
use crate::model::{ParamLayout, Vae};
use crate::rng;
use crate::weights::{self, Embedding, StorageDtype};

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

/// What the CLI shows while training runs.
pub trait Observer {
    fn epoch_start(&mut self, _epoch: usize, _batches: usize, _done: usize) {}
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

/// Final figures, also written into the model's metadata.
#[derive(Clone, Debug)]
pub struct FinalReport {
    pub test: ElboReport,
    pub iw_bound: f64,
    pub train_seconds: f64,
    pub model_path: PathBuf,
}

pub struct Trainer<'a> {
    pub state: TrainState,
    data: &'a Dataset,
    pool: rayon::ThreadPool,
    /// Activations and deltas of the current batch.
    ws: Workspace,
    batch_x: Vec<f32>,
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
        let state = TrainState {
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
        };
        Self::from_state(state, data)
    }

    /// Continues a run from its state (read from a checkpoint).
    pub fn from_state(state: TrainState, data: &'a Dataset) -> Result<Self, ModelError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(state.config.threads.max(1))
            .build()
            .map_err(|e| ModelError::Io(format!("cannot start worker threads: {e}")))?;
        Ok(Trainer { state, data, pool, ws: Workspace::default(), batch_x: Vec::new() })
    }

    fn n_train(&self) -> usize {
        self.data.n_train()
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.n_train().div_ceil(self.state.config.batch_size)
    }

    /// One optimisation step on batch `b` of the current epoch, given that epoch's permutation.
    /// Returns the batch's loss sums, its size, and whether every parameter is still finite.
    fn step(&mut self, perm: &[u32]) -> (LossSums, usize, bool) {
        let cfg = &self.state.config;
        let px = self.data.pixels();
        let start = self.state.batch * cfg.batch_size;
        let idx = &perm[start..(start + cfg.batch_size).min(perm.len())];
        let rows = idx.len();
        self.batch_x.resize(rows * px, 0.0);
        for (dst, &i) in self.batch_x.chunks_exact_mut(px).zip(idx) {
            let src = &self.data.train_images[i as usize * px..(i as usize + 1) * px];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = s as f32 * (1.0 / 255.0);
            }
        }
        let eps_seed = rng::derive_seed(cfg.seed, 0x4000_0000 | self.state.epoch as u32);
        let beta = cfg.beta;
        let total_steps = (cfg.epochs as u64).saturating_mul(self.batches_per_epoch() as u64);
        let lr = cfg.schedule.at(cfg.lr, self.state.adam.t, total_steps);
        let shards = cfg.threads.min(rows).max(1);
        let bounds: Vec<usize> = (0..=shards).map(|t| t * rows / shards).collect();
        let Trainer { state, pool, ws, batch_x, .. } = self;
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
            (sums, rows, finite)
        })
    }

    /// Runs `n` optimisation steps with no evaluation or files, wrapping across epochs; returns
    /// the number of examples processed. For benchmarks.
    pub fn bench_steps(&mut self, n: usize) -> usize {
        let seed = self.state.config.seed;
        let mut perm = rng::permutation(rng::derive_seed(seed, self.state.epoch as u32), self.n_train());
        let mut examples = 0;
        for _ in 0..n {
            if self.state.batch >= self.batches_per_epoch() {
                self.state.batch = 0;
                self.state.epoch += 1;
                perm = rng::permutation(rng::derive_seed(seed, self.state.epoch as u32), self.n_train());
            }
            examples += self.step(&perm).1;
            self.state.batch += 1;
        }
        examples
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
            let perm = rng::permutation(rng::derive_seed(self.state.config.seed, epoch as u32), self.n_train());
            let batches = self.batches_per_epoch();
            observer.epoch_start(epoch, batches, self.state.batch);
            while self.state.batch < batches {
                if stop.load(Ordering::SeqCst) {
                    checkpoint::save(&ckpt, &self.state)?;
                    observer.message(&format!("interrupted: checkpoint written to {}", ckpt.display()));
                    return Ok(Outcome::Interrupted);
                }
                let t0 = Instant::now();
                let (sums, rows, finite) = self.step(&perm);
                let dt = t0.elapsed().as_secs_f64();
                let st = &mut self.state;
                let what = if !(sums.reconstruction.is_finite() && sums.kl.is_finite()) {
                    Some(format!("the loss is {}", sums.reconstruction + sums.kl))
                } else if !finite {
                    Some("a gradient or weight is no longer finite".to_string())
                } else {
                    None
                };
                if let Some(what) = what {
                    let lr = st.config.lr;
                    return Err(ModelError::Diverged { epoch: epoch + 1, step: st.batch + 1, what, lr, suggested_lr: lr / 10.0 });
                }
                st.batch += 1;
                st.epoch_sums += sums;
                st.epoch_examples += rows;
                st.epoch_seconds += dt;
                st.train_seconds += dt;
                let loss = (sums.reconstruction + sums.kl * st.config.beta as f64) / rows as f64;
                observer.step(st.batch, loss, st.epoch_examples as f64 / st.epoch_seconds.max(1e-9));
            }
            let test = self.pool.install(|| evaluate::evaluate_elbo(&self.state.vae, &self.data.test_images));
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

    /// Evaluates the trained model and writes the model file (atomically).
    pub fn finish(&self, out: &Path, dtype: StorageDtype) -> Result<FinalReport, ModelError> {
        let st = &self.state;
        let images = &self.data.test_images;
        let (test, iw, mu) = self.pool.install(|| {
            (
                evaluate::evaluate_elbo(&st.vae, images),
                evaluate::iw_bound(&st.vae, images, st.config.iw_samples),
                evaluate::encode_means(&st.vae, images),
            )
        });
        let embedding = Embedding { mu, labels: self.data.test_labels.clone() };
        let meta = self.metadata(&test, iw);
        let bytes = weights::to_bytes(&st.vae, Some(&embedding), &meta, dtype, Vec::new())?;
        atomic_write(out, &bytes).map_err(|e| ModelError::Io(format!("writing {}: {e}", out.display())))?;
        Ok(FinalReport { test, iw_bound: iw, train_seconds: st.train_seconds, model_path: out.to_path_buf() })
    }

    fn metadata(&self, test: &ElboReport, iw: f64) -> BTreeMap<String, String> {
        let st = &self.state;
        let c = &st.config;
        let dataset = self.data.metadata_json();
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("dataset", dataset.to_string());
        put("epochs", st.epoch.to_string());
        put("seed", c.seed.to_string());
        put("beta", c.beta.to_string());
        put("lr", c.lr.to_string());
        put("lr_schedule", serde_json::to_string(&c.schedule).expect("schedules serialise"));
        put("batch_size", c.batch_size.to_string());
        put("threads", c.threads.to_string());
        put("test_neg_elbo", format!("{:.4}", test.neg_elbo));
        put("test_reconstruction", format!("{:.4}", test.reconstruction));
        put("test_kl", format!("{:.4}", test.kl));
        put("test_iw_bound", format!("{iw:.4}"));
        put("iw_samples", c.iw_samples.to_string());
        put("eval_seed", evaluate::ELBO_SEED.to_string());
        put("train_seconds", format!("{:.1}", st.train_seconds));
        put("crate_version", env!("CARGO_PKG_VERSION").to_string());
        put("trainer", "latent-explorer train".to_string());
        m
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

fn append_line(path: &Path, line: &str) -> Result<(), ModelError> {
    use std::io::Write;
    let mut f =
        std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))?;
    f.write_all(line.as_bytes()).map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::backprop::loss_and_grad;

    /// `n_train` synthetic 4x5 images with no test set.
    fn synthetic(n_train: usize) -> Dataset {
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

    #[test]
    fn a_zero_batch_size_is_a_configuration_error_not_an_architecture_error() {
        let data = synthetic(8);
        let config = TrainConfig { arch: Architecture::mirrored(20, &[3], 2), batch_size: 0, ..TrainConfig::default() };
        let err = Trainer::new(config, &data).err().expect("a zero batch size is refused").to_string();
        assert_eq!(err, "invalid training configuration: the batch size and the thread count must be at least 1");
    }

    /// A trainer step (deltas by shard, gradients and Adam by row block) equals the
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
        let mut trainer = Trainer::new(config.clone(), &data).unwrap();
        assert!(trainer.state.vae.layout().layers.iter().any(|l| l.n_out > block_rows(l.n_in, l.n_out)), "blocks must split a layer");
        let (mut vae, mut adam) = (trainer.state.vae.clone(), trainer.state.adam.clone());
        let perm = rng::permutation(rng::derive_seed(config.seed, 0), n_train);
        for b in 0..2 {
            trainer.state.batch = b;
            assert!(trainer.step(&perm).2, "the step stays finite");
            let idx = &perm[b * 16..(b + 1) * 16];
            let x: Vec<f32> =
                idx.iter().flat_map(|&i| data.train_images[i as usize * px..][..px].iter().map(|&v| v as f32 * (1.0 / 255.0))).collect();
            let mut grad = vec![0.0; vae.params().len()];
            let eps_seed = rng::derive_seed(config.seed, 0x4000_0000);
            loss_and_grad(&vae, &x, 1.0, eps_seed, (b * 16) as u32, 1.0 / 16.0, &mut grad, &mut Workspace::default());
            assert!(adam.step(vae.params_mut(), &grad, 1));
            let differ = trainer.state.vae.params().iter().zip(vae.params()).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "step {b}: {differ} parameters differ");
            assert!(trainer.state.adam == adam, "step {b}: Adam state differs");
        }
    }
}
