//! The session on the calling thread: the CPU reference's forward and backward pass over a
//! whole batch (`backprop::loss_and_grad`) and Adam, which the native trainer's parallel step
//! equals bit for bit (`train::step`'s test), so a session takes the native trainer's steps.

use super::{check, check_step, Snapshot, StepResult};
use crate::error::ModelError;
use crate::model::Vae;
use crate::testset::TestSet;
use crate::train::backprop::{loss_and_grad, Workspace};
use crate::train::plan;

/// A run on the CPU. See the module documentation.
pub struct CpuSession {
    s: Snapshot,
    data: TestSet,
    perm: Vec<u32>,
    ws: Workspace,
    grad: Vec<f32>,
    x: Vec<f32>,
    /// Set by a step that diverged: no step follows it.
    diverged: Option<String>,
}

impl CpuSession {
    /// Continues `snapshot` (a fresh one from [`Snapshot::start`], or a GPU session's) on `data`.
    pub fn new(snapshot: Snapshot, data: TestSet) -> Result<Self, ModelError> {
        check(&snapshot.config, &data)?;
        if snapshot.vae.arch() != &snapshot.config.arch || snapshot.adam.m.len() != snapshot.vae.params().len() {
            return Err(ModelError::Config("the snapshot's weights do not match its configuration".into()));
        }
        let perm = plan::permutation(snapshot.config.seed, snapshot.epoch, data.len());
        let n = snapshot.vae.params().len();
        Ok(CpuSession { s: snapshot, data, perm, ws: Workspace::default(), grad: vec![0.0; n], x: Vec::new(), diverged: None })
    }

    /// One optimisation step on the next batch.
    pub fn step(&mut self) -> Result<StepResult, ModelError> {
        if let Some(why) = &self.diverged {
            return Err(ModelError::RunDiverged(why.clone()));
        }
        let Snapshot { config: cfg, vae, adam, epoch, batch } = &mut self.s;
        let n = self.data.len();
        let start = *batch * cfg.batch_size;
        let idx = &self.perm[start..(start + cfg.batch_size).min(n)];
        let rows = idx.len();
        plan::gather(&self.data.images, vae.arch().input, idx, &mut self.x);
        let beta = cfg.beta;
        adam.lr = cfg.lr;
        let sums = loss_and_grad(
            vae,
            &self.x,
            beta,
            plan::noise_seed(cfg.seed, *epoch),
            start as u32,
            1.0 / rows as f32,
            &mut self.grad,
            &mut self.ws,
        );
        let finite = adam.step(vae.params_mut(), &self.grad, 1);
        if let Err(e) = check_step(cfg, *epoch, *batch, sums.reconstruction, sums.kl, finite) {
            self.diverged = Some(e.to_string());
            return Err(e);
        }
        *batch += 1;
        if *batch == cfg.batches_per_epoch(n) {
            *batch = 0;
            *epoch += 1;
            self.perm = plan::permutation(cfg.seed, *epoch, n);
        }
        let r = rows as f64;
        Ok(StepResult { reconstruction: sums.reconstruction / r, kl: sums.kl / r, rows, beta })
    }

    /// The weight on the KL term from the next step on.
    pub fn set_beta(&mut self, beta: f32) -> Result<(), ModelError> {
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(ModelError::Beta(beta));
        }
        self.s.config.beta = beta;
        Ok(())
    }

    /// The weight on the KL term the next step uses.
    pub fn beta(&self) -> f32 {
        self.s.config.beta
    }

    pub fn vae(&self) -> &Vae {
        &self.s.vae
    }

    /// Where the run stands.
    pub fn snapshot(&self) -> &Snapshot {
        &self.s
    }

    pub fn data(&self) -> &TestSet {
        &self.data
    }
}
