//! The session on a GPU device of its own: the GPU trainer (`gpu::training`) takes the steps,
//! from the step table of the epoch's [`plan`], and an engine on the same device encodes and
//! decodes with the weights read back at each [`GpuSession::sync`]. Steps are queued a group at
//! a time and each group's losses read while the next one runs, so nothing waits per step
//! (Firefox resolves GPU promises on a timer of about 100 ms).

use std::ops::Range;

use super::{check, check_step, Snapshot, StepResult};
use crate::error::ModelError;
use crate::gpu::training::{GpuTrainer, Step, Submitted, TrainerOptions, TrainerStart};
use crate::gpu::{EngineOptions, GpuEngine, GpuError};
use crate::testset::TestSet;
use crate::train::plan;

fn gpu_error(e: GpuError) -> ModelError {
    ModelError::Gpu(e.to_string())
}

/// Steps queued and not yet read: which, of which epoch, and the betas they were queued with.
struct Queued {
    submitted: Submitted,
    epoch: usize,
    batches: Range<usize>,
    betas: Vec<f32>,
}

/// A run on the GPU. See the module documentation.
pub struct GpuSession {
    engine: GpuEngine,
    trainer: GpuTrainer,
    /// The run up to the steps queued (its weights and moments as of the last sync).
    s: Snapshot,
    /// The last synced state with no step queued: where a CPU session continues from.
    synced: Snapshot,
    n_train: usize,
    steps: Vec<Step>,
    queued: Vec<Queued>,
    diverged: Option<String>,
}

impl GpuSession {
    /// Opens a device, uploads `snapshot`'s model, Adam's moments and `data`'s images.
    pub async fn new(snapshot: Snapshot, data: &TestSet) -> Result<Self, ModelError> {
        check(&snapshot.config, data)?;
        let cfg = &snapshot.config;
        let engine = GpuEngine::new(&snapshot.vae, EngineOptions::default()).await.map_err(gpu_error)?;
        let start = TrainerStart {
            vae: &snapshot.vae,
            m: &snapshot.adam.m,
            v: &snapshot.adam.v,
            images: &data.images,
            max_rows: cfg.batch_size,
            max_steps: cfg.batches_per_epoch(data.len()),
        };
        let trainer = GpuTrainer::on_engine(&engine, start, TrainerOptions::default()).await.map_err(gpu_error)?;
        let mut session = GpuSession {
            engine,
            trainer,
            synced: snapshot.clone(),
            s: snapshot,
            n_train: data.len(),
            steps: Vec::new(),
            queued: Vec::new(),
            diverged: None,
        };
        session.begin_epoch()?;
        Ok(session)
    }

    /// The adapter, e.g. "SwiftShader Device (Subzero) (Vulkan, software)".
    pub fn adapter_name(&self) -> String {
        self.trainer.adapter_name()
    }

    /// Whether the adapter is a software one, where the CPU trains faster.
    pub fn is_software(&self) -> bool {
        self.trainer.is_software()
    }

    /// Writes the current epoch's permutation and step table, from where the run stands.
    fn begin_epoch(&mut self) -> Result<(), ModelError> {
        let s = &self.s;
        let perm = plan::permutation(s.config.seed, s.epoch, self.n_train);
        self.steps = plan::epoch_steps(&s.config, &s.adam, s.epoch, s.batch, self.n_train).0;
        self.trainer.begin_epoch(&perm, &self.steps, s.batch).map_err(gpu_error)
    }

    /// Starts the next epoch if the current one has no step left to queue.
    fn roll_epoch(&mut self) -> Result<(), ModelError> {
        if self.s.batch == self.s.config.batches_per_epoch(self.n_train) {
            self.s.epoch += 1;
            self.s.batch = 0;
            self.begin_epoch()?;
        }
        Ok(())
    }

    /// Queues `n` steps (across epochs, a command buffer per epoch), then waits for the steps
    /// the previous call queued: their results, in order (none on the first call).
    pub async fn advance(&mut self, n: usize) -> Result<Vec<StepResult>, ModelError> {
        if let Some(why) = &self.diverged {
            return Err(ModelError::RunDiverged(why.clone()));
        }
        let mut queued = Vec::new();
        let mut left = n;
        while left > 0 {
            self.roll_epoch()?;
            let range = self.s.batch..(self.s.batch + left).min(self.steps.len());
            let submitted = self.trainer.submit(&self.steps, range.clone()).map_err(gpu_error)?;
            // set_beta rewrites the table from the first step not queued, so these use the current beta.
            let betas = vec![self.s.config.beta; range.len()];
            self.s.adam.t += range.len() as u64;
            self.s.batch = range.end;
            left -= range.len();
            queued.push(Queued { submitted, epoch: self.s.epoch, batches: range, betas });
        }
        let previous = std::mem::replace(&mut self.queued, queued);
        self.read(previous).await
    }

    /// Waits for every queued step: their results.
    pub async fn flush(&mut self) -> Result<Vec<StepResult>, ModelError> {
        let queued = std::mem::take(&mut self.queued);
        self.read(queued).await
    }

    async fn read(&mut self, queued: Vec<Queued>) -> Result<Vec<StepResult>, ModelError> {
        let mut out = Vec::new();
        for q in queued {
            let rows: Vec<usize> = q.batches.clone().map(|b| self.rows(b)).collect();
            let losses = self.trainer.losses(q.submitted).await.map_err(gpu_error)?;
            for (((b, l), beta), rows) in q.batches.zip(losses).zip(q.betas).zip(rows) {
                if let Err(e) = check_step(&self.s.config, q.epoch, b, l.reconstruction, l.kl, l.finite) {
                    self.diverged = Some(e.to_string());
                    return Err(e);
                }
                let r = rows as f64;
                out.push(StepResult { reconstruction: l.reconstruction / r, kl: l.kl / r, rows, beta });
            }
        }
        Ok(out)
    }

    /// The rows of batch `b` of an epoch (the last one may be short).
    fn rows(&self, b: usize) -> usize {
        let bs = self.s.config.batch_size;
        (self.n_train - b * bs).min(bs)
    }

    /// Flushes, then reads the weights and Adam's moments back: the run as it stands, which
    /// [`GpuSession::embed`] and [`GpuSession::decode`] then use. Returns the flushed steps.
    pub async fn sync(&mut self) -> Result<Vec<StepResult>, ModelError> {
        let done = self.flush().await?;
        let (p, m, v) = self.trainer.read_state().await.map_err(gpu_error)?;
        self.s.vae.params_mut().copy_from_slice(&p);
        self.s.adam.m = m;
        self.s.adam.v = v;
        self.s.adam.lr = self.s.config.lr;
        self.engine.set_weights(&self.s.vae).map_err(gpu_error)?;
        self.synced = self.s.clone();
        Ok(done)
    }

    /// The run as of the last [`GpuSession::sync`].
    pub fn snapshot(&self) -> &Snapshot {
        &self.synced
    }

    /// Encoder means of `images` (`n * 784` intensities) with the synced weights, on the GPU.
    pub async fn embed(&self, images: &[f32]) -> Result<Vec<f32>, ModelError> {
        Ok(self.engine.encode(images).await.map_err(gpu_error)?.mu)
    }

    /// Decodes latent points with the synced weights, on the GPU.
    pub async fn decode(&self, z: &[f32]) -> Result<Vec<f32>, ModelError> {
        self.engine.decode(z).await.map_err(gpu_error)
    }

    /// The weight on the KL term from the next step not yet queued on.
    pub fn set_beta(&mut self, beta: f32) -> Result<(), ModelError> {
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(ModelError::Beta(beta));
        }
        self.s.config.beta = beta;
        self.roll_epoch()?;
        self.steps = plan::epoch_steps(&self.s.config, &self.s.adam, self.s.epoch, self.s.batch, self.n_train).0;
        self.trainer.update_steps(&self.steps, self.s.batch).map_err(gpu_error)
    }

    /// The KL weight of the next step as the device holds it, read back from its step table
    /// (`kl_scale / scale`, so within rounding of the beta set).
    pub async fn device_beta(&self) -> Result<f32, ModelError> {
        // After a change of beta the epoch has a step left (`roll_epoch`); before any, the last
        // step's entry holds the same beta.
        let slot = self.s.batch.min(self.steps.len().saturating_sub(1));
        let step = self.trainer.read_step(slot).await.map_err(gpu_error)?;
        Ok(step.kl_scale / step.scale)
    }

    /// Destroys the device, as a driver reset would (tests).
    pub fn lose_device_for_testing(&self) {
        self.trainer.lose_device_for_testing();
    }
}
