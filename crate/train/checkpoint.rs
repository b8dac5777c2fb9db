//! Checkpoints: the model file format plus Adam's moments (`adam.m.*`, `adam.v.*`) and the
//! loop state as JSON metadata. Written atomically, so Ctrl-C or a full disk mid-write leaves
//! the previous checkpoint intact.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::backprop::LossSums;
use super::trainer::{EpochRecord, TrainConfig, TrainState};
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

pub fn load(path: &Path) -> Result<TrainState, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::Io(format!("{}: {e}", path.display())))?;
    let file = weights::from_bytes(&bytes)?;
    let json = file.metadata.get(STATE_KEY).ok_or_else(|| ModelError::Metadata {
        key: STATE_KEY.into(),
        reason: format!("{} is a model file, not a training checkpoint", path.display()),
    })?;
    let ls: LoopState = serde_json::from_str(json)
        .map_err(|e| ModelError::Metadata { key: STATE_KEY.into(), reason: e.to_string() })?;
    if ls.config.arch != *file.vae.arch() {
        return Err(ModelError::Metadata { key: STATE_KEY.into(), reason: "architecture differs from the tensors'".into() });
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::Format(e.to_string()))?;
    let mut adam = Adam::new(0, ls.config.lr);
    for (name, shape) in file.vae.arch().tensor_shapes() {
        adam.m.extend(weights::read_tensor(&st, &format!("adam.m.{name}"), &shape, false)?);
        adam.v.extend(weights::read_tensor(&st, &format!("adam.v.{name}"), &shape, false)?);
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
