//! Checkpoints: the model file format plus Adam's moments (`adam.m.*`, `adam.v.*`) and the
//! loop state as JSON metadata. Written atomically, so Ctrl-C or a full disk mid-write leaves
//! the previous checkpoint intact.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::backprop::LossSums;
use super::config::{LrSchedule, TrainConfig, MAX_IW_SAMPLES, MAX_THREADS};
use super::state::{EpochRecord, TrainState};
use crate::error::ModelError;
use crate::fsutil::atomic_write;
use crate::weights::{self, f32_bytes, StorageDtype};

const STATE_KEY: &str = "checkpoint";

/// Everything in a checkpoint that is not a tensor.
#[derive(Serialize, Deserialize)]
struct LoopState {
    config: TrainConfig,
    epoch: usize,
    batch: usize,
    adam_t: u64,
    /// The learning rate of the last step (the schedule's value, not the configured one).
    adam_lr: f32,
    adam_betas: (f32, f32),
    adam_eps: f32,
    epoch_reconstruction: f64,
    epoch_kl: f64,
    epoch_examples: usize,
    epoch_seconds: f64,
    train_seconds: f64,
    history: Vec<EpochRecord>,
    dataset_sha256: String,
}

pub fn save(path: &Path, st: &TrainState) -> Result<(), ModelError> {
    let loop_state = LoopState {
        config: st.config.clone(),
        epoch: st.epoch,
        batch: st.batch,
        adam_t: st.adam.t,
        adam_lr: st.adam.lr,
        adam_betas: (st.adam.beta1, st.adam.beta2),
        adam_eps: st.adam.eps,
        epoch_reconstruction: st.epoch_sums.reconstruction,
        epoch_kl: st.epoch_sums.kl,
        epoch_examples: st.epoch_examples,
        epoch_seconds: st.epoch_seconds,
        train_seconds: st.train_seconds,
        history: st.history.clone(),
        dataset_sha256: st.dataset_sha256.clone(),
    };
    let mut extra = Vec::new();
    let mut offset = 0;
    for (name, shape) in st.vae.arch().tensor_shapes() {
        let n: usize = shape.iter().product();
        for (kind, buf) in [("m", &st.adam.m), ("v", &st.adam.v)] {
            extra.push((format!("adam.{kind}.{name}"), shape.clone(), Dtype::F32, f32_bytes(&buf[offset..offset + n])));
        }
        offset += n;
    }
    let mut meta = BTreeMap::new();
    meta.insert(STATE_KEY.to_string(), serde_json::to_string(&loop_state).expect("loop state serialises"));
    let bytes = weights::to_bytes(&st.vae, None, &meta, StorageDtype::F32, extra)?;
    atomic_write(path, &bytes).map_err(|e| ModelError::Io(format!("writing checkpoint {}: {e}", path.display())))
}

/// Reads a checkpoint file. Errors name the file.
pub fn load(path: &Path) -> Result<TrainState, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))?;
    from_bytes(&bytes).map_err(|e| match e {
        ModelError::Metadata { key, reason } => ModelError::Metadata { key, reason: format!("{}: {reason}", path.display()) },
        other => other,
    })
}

/// Parses and validates a checkpoint from its bytes: the model (as [`weights::from_bytes`]
/// checks it), the loop state and Adam's moments, each checked against the architecture.
pub fn from_bytes(bytes: &[u8]) -> Result<TrainState, ModelError> {
    let file = weights::from_bytes(bytes)?;
    let json = file
        .metadata
        .get(STATE_KEY)
        .ok_or_else(|| ModelError::Metadata { key: STATE_KEY.into(), reason: "this is a model file, not a training checkpoint".into() })?;
    let ls: LoopState = serde_json::from_str(json).map_err(|e| ModelError::Metadata { key: STATE_KEY.into(), reason: e.to_string() })?;
    if ls.config.arch != *file.vae.arch() {
        return Err(ModelError::Metadata { key: STATE_KEY.into(), reason: "architecture differs from the tensors'".into() });
    }
    validate_loop_state(&ls)?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format(e.to_string()))?;
    let mut adam = Adam::new(0, ls.config.lr);
    for (name, shape) in file.vae.arch().tensor_shapes() {
        adam.m.extend(weights::read_tensor(&st, &format!("adam.m.{name}"), &shape, false)?);
        let v_name = format!("adam.v.{name}");
        let v = weights::read_tensor(&st, &v_name, &shape, false)?;
        // Second moments are means of squares: a negative one would make the step NaN.
        if let Some(index) = v.iter().position(|&x| x < 0.0) {
            return Err(ModelError::Metadata { key: v_name, reason: format!("second moment {} at element {index} is negative", v[index]) });
        }
        adam.v.extend(v);
    }
    adam.t = ls.adam_t;
    adam.lr = ls.adam_lr;
    (adam.beta1, adam.beta2) = ls.adam_betas;
    adam.eps = ls.adam_eps;
    Ok(TrainState {
        config: ls.config,
        vae: file.vae,
        adam,
        epoch: ls.epoch,
        batch: ls.batch,
        epoch_sums: LossSums { reconstruction: ls.epoch_reconstruction, kl: ls.epoch_kl },
        epoch_examples: ls.epoch_examples,
        epoch_seconds: ls.epoch_seconds,
        train_seconds: ls.train_seconds,
        history: ls.history,
        dataset_sha256: ls.dataset_sha256,
    })
}

/// Rejects loop states no run can be in, so resuming never divides by zero or indexes past
/// the data: each failure names the field.
fn validate_loop_state(ls: &LoopState) -> Result<(), ModelError> {
    let bad = |reason: String| Err(ModelError::Metadata { key: STATE_KEY.into(), reason });
    let c = &ls.config;
    if c.batch_size == 0 {
        return bad("config.batch_size is 0".into());
    }
    if !(c.lr.is_finite() && c.lr > 0.0) {
        return bad(format!("config.lr is {}, expected a positive number", c.lr));
    }
    if !(c.beta.is_finite() && c.beta >= 0.0) {
        return bad(format!("config.beta is {}, expected a non-negative number", c.beta));
    }
    if !(ls.adam_lr.is_finite() && ls.adam_lr >= 0.0) {
        return bad(format!("adam_lr is {}, expected a non-negative number", ls.adam_lr));
    }
    let (b1, b2) = ls.adam_betas;
    if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2)) {
        return bad(format!("adam_betas are ({b1}, {b2}), expected both in [0, 1)"));
    }
    if !(ls.adam_eps.is_finite() && ls.adam_eps > 0.0) {
        return bad(format!("adam_eps is {}, expected a positive number", ls.adam_eps));
    }
    for (what, v) in [
        ("epoch_reconstruction", ls.epoch_reconstruction),
        ("epoch_kl", ls.epoch_kl),
        ("epoch_seconds", ls.epoch_seconds),
        ("train_seconds", ls.train_seconds),
    ] {
        if !v.is_finite() {
            return bad(format!("{what} is {v}, expected a finite number"));
        }
    }
    // Resuming starts this many worker threads and draws this many samples per test image.
    if c.threads > MAX_THREADS {
        return bad(format!("config.threads is {}, at most {MAX_THREADS}", c.threads));
    }
    if c.iw_samples > MAX_IW_SAMPLES {
        return bad(format!("config.iw_samples is {}, at most {MAX_IW_SAMPLES}", c.iw_samples));
    }
    if let LrSchedule::Cosine { floor } = c.schedule {
        if !(floor.is_finite() && floor >= 0.0) {
            return bad(format!("config.schedule floor is {floor}, expected a non-negative number"));
        }
    }
    Ok(())
}
