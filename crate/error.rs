//! Errors for everything a user or a file controls. Each says what is wrong and where, so that
//! the CLI and the page can show it as is.

use thiserror::Error;

/// A model or weights file that cannot be used.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("invalid architecture: {0}")]
    Architecture(String),
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("not a valid safetensors file ({0}); the file may be truncated or not a model file")]
    Format(String),
    #[error("metadata `{key}`: {reason}")]
    Metadata { key: String, reason: String },
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    #[error("unexpected tensor `{0}` (not part of this architecture)")]
    UnexpectedTensor(String),
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` has dtype {found}, expected {expected}")]
    DType { name: String, expected: String, found: String },
    #[error("tensor `{name}` has a non-finite value ({value}) at element {index}")]
    NonFinite { name: String, index: usize, value: f32 },
    #[error("embedding: {0}")]
    Embedding(String),
    #[error("input has {found} values, expected a multiple of {per_item} ({what})")]
    InputSize { what: &'static str, per_item: usize, found: usize },
    #[error("{0}")]
    Io(String),
    #[error("GPU: {0}")]
    Gpu(String),
    #[error("this run diverged ({0}); reset it to train again")]
    RunDiverged(String),
    #[error("beta must be a number at least 0, not {0}")]
    Beta(f32),
    #[error("training diverged at epoch {epoch}, step {step}: {what}. Nothing was written: the last checkpoint and the previous model file are untouched. Try a lower learning rate (--lr {suggested_lr:.0e} instead of {lr:e})")]
    Diverged { epoch: usize, step: usize, what: String, lr: f32, suggested_lr: f32 },
}

/// A data set file that cannot be used.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("{file}: bad magic number 0x{found:08x}, expected 0x{expected:08x} ({what}); is this an IDX {what} file?")]
    BadMagic { file: String, found: u32, expected: u32, what: &'static str },
    #[error("{file}: truncated: {found} bytes, the header promises {expected}; delete it and download again")]
    Truncated { file: String, expected: usize, found: usize },
    #[error("{file}: {reason}")]
    Malformed { file: String, reason: String },
    #[error("{images_file} has {images} images but {labels_file} has {labels} labels; the files do not belong together")]
    CountMismatch { images_file: String, images: usize, labels_file: String, labels: usize },
    #[error("{file}: sha256 of the content is {found}, expected {expected}; the file is corrupt or not the canonical one, delete it and download again")]
    Checksum { file: String, expected: String, found: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("could not download {url}: {reason}")]
    Download { url: String, reason: String },
    #[error("{0}")]
    NotFound(String),
}
