//! Errors as codes plus parameters, so the page can word them in the reader's language
//! (`www/i18n/*.json`, under `rust.<code>`); the CLI prints each error's English `Display`.
//!
//! A code is stable and names the error (`model.shape`); the parameters are its fields as text.
//! A `detail` parameter is text that comes from elsewhere (a library, the GPU driver, a nested
//! reason) and is shown as it is. [`ERROR_CODES`] lists every code with its parameters: the page's
//! catalogue test checks that each language words each code with exactly those.

use crate::corrupt::CorruptError;
use crate::elbo::ElboError;
use crate::error::ModelError;
use crate::gpu::GpuError;
use crate::preprocess::{PreprocessError, MAX_PIXELS};
use crate::projection::ProjectionError;
use crate::testset::TestSetError;

/// An error's parameters: name, value as text.
pub type Params = Vec<(&'static str, String)>;

/// An error the page words itself.
pub trait ErrorCode: std::fmt::Display {
    /// The stable code (`"model.shape"`).
    fn code(&self) -> &'static str;
    /// The named values the message needs.
    fn params(&self) -> Params;
}

/// Every code with its parameter names.
pub const ERROR_CODES: &[(&str, &[&str])] = &[
    ("model.architecture", &["detail"]),
    ("model.config", &["detail"]),
    ("model.format", &["detail"]),
    ("model.metadata", &["key", "detail"]),
    ("model.missing-tensor", &["name"]),
    ("model.unexpected-tensor", &["name"]),
    ("model.shape", &["name", "expected", "found"]),
    ("model.dtype", &["name", "expected", "found"]),
    ("model.non-finite", &["name", "index", "value"]),
    ("model.embedding", &["detail"]),
    ("model.input-size", &["what", "perItem", "found"]),
    ("model.io", &["detail"]),
    ("model.gpu", &["detail"]),
    ("model.run-diverged", &["what"]),
    ("model.beta", &["beta"]),
    ("model.diverged", &["epoch", "step", "what", "lr", "suggestedLr"]),
    ("preprocess.empty", &[]),
    ("preprocess.too-large", &["width", "height", "max"]),
    ("preprocess.bad-length", &["width", "height", "expected", "found"]),
    ("preprocess.bad-grey-length", &["width", "height", "found"]),
    ("preprocess.bad-grey", &["index", "value"]),
    ("preprocess.no-ink", &[]),
    ("corrupt.strength", &["value"]),
    ("corrupt.non-finite", &["index", "value"]),
    ("corrupt.size", &["found", "side", "expected"]),
    ("projection.no-dimensions", &["d"]),
    ("projection.ragged", &["d", "found"]),
    ("projection.empty", &[]),
    ("projection.non-finite", &["index", "value"]),
    ("projection.dimension", &["expected", "found"]),
    ("elbo.image-size", &["expected", "found"]),
    ("elbo.no-samples", &[]),
    ("testset.format", &["detail"]),
    ("testset.gzip", &["detail"]),
    ("testset.missing-tensor", &["name"]),
    ("testset.unexpected-tensor", &["name"]),
    ("testset.dtype", &["name", "found"]),
    ("testset.shape", &["name", "expected", "found"]),
    ("testset.metadata", &["key", "detail"]),
    ("testset.label", &["index", "label", "classes"]),
    ("testset.too-few", &["class", "found", "wanted"]),
    ("testset.input", &["detail"]),
    ("gpu.no-adapter", &["detail"]),
    ("gpu.request-device", &["detail"]),
    ("gpu.unsupported", &["detail"]),
    ("gpu.device-lost", &["detail"]),
    ("gpu.out-of-memory", &["detail"]),
    ("gpu.validation", &["detail"]),
    ("gpu.readback", &["detail"]),
    ("gpu.surface", &["detail"]),
];

/// Named parameters from `name = value` pairs (values by their `Display`).
macro_rules! params {
    ($($name:literal => $value:expr),* $(,)?) => { vec![$(($name, $value.to_string())),*] };
}

impl ErrorCode for ModelError {
    fn code(&self) -> &'static str {
        match self {
            ModelError::Architecture(_) => "model.architecture",
            ModelError::Config(_) => "model.config",
            ModelError::Format(_) => "model.format",
            ModelError::Metadata { .. } => "model.metadata",
            ModelError::MissingTensor(_) => "model.missing-tensor",
            ModelError::UnexpectedTensor(_) => "model.unexpected-tensor",
            ModelError::Shape { .. } => "model.shape",
            ModelError::DType { .. } => "model.dtype",
            ModelError::NonFinite { .. } => "model.non-finite",
            ModelError::Embedding(_) => "model.embedding",
            ModelError::InputSize { .. } => "model.input-size",
            ModelError::Io(_) => "model.io",
            ModelError::Gpu(_) => "model.gpu",
            ModelError::RunDiverged(_) => "model.run-diverged",
            ModelError::Beta(_) => "model.beta",
            ModelError::Diverged { .. } => "model.diverged",
        }
    }

    fn params(&self) -> Params {
        match self {
            ModelError::Architecture(d)
            | ModelError::Config(d)
            | ModelError::Format(d)
            | ModelError::Embedding(d)
            | ModelError::Io(d)
            | ModelError::Gpu(d) => params!["detail" => d],
            ModelError::Metadata { key, reason } => params!["key" => key, "detail" => reason],
            ModelError::MissingTensor(n) | ModelError::UnexpectedTensor(n) => params!["name" => n],
            ModelError::Shape { name, expected, found } => {
                params!["name" => name, "expected" => format!("{expected:?}"), "found" => format!("{found:?}")]
            }
            ModelError::DType { name, expected, found } => params!["name" => name, "expected" => expected, "found" => found],
            ModelError::NonFinite { name, index, value } => params!["name" => name, "index" => index, "value" => value],
            ModelError::InputSize { what, per_item, found } => params!["what" => what, "perItem" => per_item, "found" => found],
            ModelError::RunDiverged(what) => params!["what" => what],
            ModelError::Beta(beta) => params!["beta" => beta],
            ModelError::Diverged { epoch, step, what, lr, suggested_lr } => params![
                "epoch" => epoch, "step" => step, "what" => what,
                "lr" => format!("{lr:e}"), "suggestedLr" => format!("{suggested_lr:.0e}"),
            ],
        }
    }
}

impl ErrorCode for PreprocessError {
    fn code(&self) -> &'static str {
        match self {
            PreprocessError::Empty => "preprocess.empty",
            PreprocessError::TooLarge { .. } => "preprocess.too-large",
            PreprocessError::BadLength { .. } => "preprocess.bad-length",
            PreprocessError::BadGreyLength { .. } => "preprocess.bad-grey-length",
            PreprocessError::BadGrey { .. } => "preprocess.bad-grey",
            PreprocessError::NoInk => "preprocess.no-ink",
        }
    }

    fn params(&self) -> Params {
        match self {
            PreprocessError::Empty | PreprocessError::NoInk => vec![],
            PreprocessError::TooLarge { width, height } => params!["width" => width, "height" => height, "max" => MAX_PIXELS],
            PreprocessError::BadLength { width, height, expected, found } => {
                params!["width" => width, "height" => height, "expected" => expected, "found" => found]
            }
            PreprocessError::BadGreyLength { width, height, found } => params!["width" => width, "height" => height, "found" => found],
            PreprocessError::BadGrey { index, value } => params!["index" => index, "value" => value],
        }
    }
}

impl ErrorCode for CorruptError {
    fn code(&self) -> &'static str {
        match self {
            CorruptError::Strength(_) => "corrupt.strength",
            CorruptError::NonFinite { .. } => "corrupt.non-finite",
            CorruptError::Size { .. } => "corrupt.size",
        }
    }

    fn params(&self) -> Params {
        match self {
            CorruptError::Strength(v) => params!["value" => v],
            CorruptError::NonFinite { index, value } => params!["index" => index, "value" => value],
            CorruptError::Size { side, expected, found } => params!["found" => found, "side" => side, "expected" => expected],
        }
    }
}

impl ErrorCode for ProjectionError {
    fn code(&self) -> &'static str {
        match self {
            ProjectionError::NoDimensions(_) => "projection.no-dimensions",
            ProjectionError::Ragged { .. } => "projection.ragged",
            ProjectionError::Empty => "projection.empty",
            ProjectionError::NonFinite { .. } => "projection.non-finite",
            ProjectionError::Dimension { .. } => "projection.dimension",
        }
    }

    fn params(&self) -> Params {
        match self {
            ProjectionError::NoDimensions(d) => params!["d" => d],
            ProjectionError::Ragged { d, found } => params!["d" => d, "found" => found],
            ProjectionError::Empty => vec![],
            ProjectionError::NonFinite { index, value } => params!["index" => index, "value" => value],
            ProjectionError::Dimension { expected, found } => params!["expected" => expected, "found" => found],
        }
    }
}

impl ErrorCode for ElboError {
    fn code(&self) -> &'static str {
        match self {
            ElboError::ImageSize { .. } => "elbo.image-size",
            ElboError::NoSamples => "elbo.no-samples",
            ElboError::Model(e) => e.code(),
        }
    }

    fn params(&self) -> Params {
        match self {
            ElboError::ImageSize { expected, found } => params!["expected" => expected, "found" => found],
            ElboError::NoSamples => vec![],
            ElboError::Model(e) => e.params(),
        }
    }
}

impl ErrorCode for TestSetError {
    fn code(&self) -> &'static str {
        match self {
            TestSetError::Format(_) => "testset.format",
            TestSetError::Gzip(_) => "testset.gzip",
            TestSetError::MissingTensor(_) => "testset.missing-tensor",
            TestSetError::UnexpectedTensor(_) => "testset.unexpected-tensor",
            TestSetError::DType { .. } => "testset.dtype",
            TestSetError::Shape { .. } => "testset.shape",
            TestSetError::Metadata { .. } => "testset.metadata",
            TestSetError::Label { .. } => "testset.label",
            TestSetError::TooFew { .. } => "testset.too-few",
            TestSetError::Input(_) => "testset.input",
        }
    }

    fn params(&self) -> Params {
        match self {
            TestSetError::Format(d) | TestSetError::Gzip(d) | TestSetError::Input(d) => params!["detail" => d],
            TestSetError::MissingTensor(n) => params!["name" => n],
            TestSetError::UnexpectedTensor(n) => params!["name" => n],
            TestSetError::DType { name, found } => params!["name" => name, "found" => found],
            TestSetError::Shape { name, expected, found } => {
                params!["name" => name, "expected" => expected, "found" => format!("{found:?}")]
            }
            TestSetError::Metadata { key, reason } => params!["key" => key, "detail" => reason],
            TestSetError::Label { index, label, classes } => params!["index" => index, "label" => label, "classes" => classes],
            TestSetError::TooFew { class, found, wanted } => params!["class" => class, "found" => found, "wanted" => wanted],
        }
    }
}

impl ErrorCode for GpuError {
    fn code(&self) -> &'static str {
        match self {
            GpuError::NoAdapter(_) => "gpu.no-adapter",
            GpuError::RequestDevice(_) => "gpu.request-device",
            GpuError::Unsupported(_) => "gpu.unsupported",
            GpuError::DeviceLost(_) => "gpu.device-lost",
            GpuError::OutOfMemory(_) => "gpu.out-of-memory",
            GpuError::Validation(_) => "gpu.validation",
            GpuError::Readback(_) => "gpu.readback",
            GpuError::Surface(_) => "gpu.surface",
            GpuError::Input(e) => e.code(),
        }
    }

    fn params(&self) -> Params {
        match self {
            GpuError::NoAdapter(d)
            | GpuError::RequestDevice(d)
            | GpuError::Unsupported(d)
            | GpuError::DeviceLost(d)
            | GpuError::OutOfMemory(d)
            | GpuError::Validation(d)
            | GpuError::Readback(d)
            | GpuError::Surface(d) => params!["detail" => d],
            GpuError::Input(e) => e.params(),
        }
    }
}
