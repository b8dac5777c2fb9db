//! Rust errors reach the page as a code plus parameters (`crate/error_code.rs`), worded there by
//! each language's catalogue (`www/i18n/<lang>.json`, under `rust.<code>`). These tests hold the
//! two ends together: every error gives a listed code with the listed parameters, and every
//! catalogue words every code with exactly those placeholders.

use std::collections::BTreeSet;

use latent_explorer::corrupt::CorruptError;
use latent_explorer::elbo::ElboError;
use latent_explorer::error_code::{ErrorCode, ERROR_CODES};
use latent_explorer::gpu::GpuError;
use latent_explorer::preprocess::PreprocessError;
use latent_explorer::projection::ProjectionError;
use latent_explorer::testset::TestSetError;
use latent_explorer::ModelError;

const LANGUAGES: [&str; 6] = ["en", "th", "zh-Hant", "ko", "pl", "vi"];

/// One error of every variant the page can meet.
fn examples() -> Vec<Box<dyn ErrorCode>> {
    let s = || "why".to_string();
    vec![
        Box::new(ModelError::Architecture(s())),
        Box::new(ModelError::Config(s())),
        Box::new(ModelError::Format(s())),
        Box::new(ModelError::Metadata { key: "k".into(), reason: s() }),
        Box::new(ModelError::MissingTensor("t".into())),
        Box::new(ModelError::UnexpectedTensor("t".into())),
        Box::new(ModelError::Shape { name: "t".into(), expected: vec![2], found: vec![3] }),
        Box::new(ModelError::DType { name: "t".into(), expected: "F32".into(), found: "I8".into() }),
        Box::new(ModelError::NonFinite { name: "t".into(), index: 3, value: f32::NAN }),
        Box::new(ModelError::Embedding(s())),
        Box::new(ModelError::InputSize { what: "latent points", per_item: 2, found: 3 }),
        Box::new(ModelError::Io(s())),
        Box::new(ModelError::Gpu(s())),
        Box::new(ModelError::RunDiverged(s())),
        Box::new(ModelError::Beta(-1.0)),
        Box::new(ModelError::Diverged { epoch: 1, step: 2, what: s(), lr: 3e-3, suggested_lr: 1e-3 }),
        Box::new(PreprocessError::Empty),
        Box::new(PreprocessError::TooLarge { width: 9000, height: 9000 }),
        Box::new(PreprocessError::BadLength { width: 2, height: 2, expected: 16, found: 3 }),
        Box::new(PreprocessError::BadGreyLength { width: 2, height: 2, found: 3 }),
        Box::new(PreprocessError::BadGrey { index: 1, value: 2.0 }),
        Box::new(PreprocessError::NoInk),
        Box::new(CorruptError::Strength(2.0)),
        Box::new(CorruptError::NonFinite { index: 1, value: f32::NAN }),
        Box::new(CorruptError::Size { side: 28, expected: 784, found: 3 }),
        Box::new(ProjectionError::NoDimensions(0)),
        Box::new(ProjectionError::Ragged { d: 3, found: 4 }),
        Box::new(ProjectionError::Empty),
        Box::new(ProjectionError::NonFinite { index: 1, value: f32::NAN }),
        Box::new(ProjectionError::Dimension { expected: 3, found: 2 }),
        Box::new(ElboError::ImageSize { expected: 784, found: 3 }),
        Box::new(ElboError::NoSamples),
        Box::new(ElboError::Model(ModelError::MissingTensor("t".into()))),
        Box::new(TestSetError::Format(s())),
        Box::new(TestSetError::Gzip(s())),
        Box::new(TestSetError::MissingTensor("images")),
        Box::new(TestSetError::UnexpectedTensor("x".into())),
        Box::new(TestSetError::DType { name: "images", found: "F32".into() }),
        Box::new(TestSetError::Shape { name: "images", expected: "[n, 28, 28]".into(), found: vec![1] }),
        Box::new(TestSetError::Metadata { key: "classes", reason: s() }),
        Box::new(TestSetError::Label { index: 1, label: 12, classes: 10 }),
        Box::new(TestSetError::TooFew { class: 1, found: 2, wanted: 3 }),
        Box::new(TestSetError::Input(s())),
        Box::new(GpuError::NoAdapter(s())),
        Box::new(GpuError::RequestDevice(s())),
        Box::new(GpuError::Unsupported(s())),
        Box::new(GpuError::DeviceLost(s())),
        Box::new(GpuError::OutOfMemory(s())),
        Box::new(GpuError::Validation(s())),
        Box::new(GpuError::Readback(s())),
        Box::new(GpuError::Surface(s())),
        Box::new(GpuError::Input(ModelError::Beta(-1.0))),
    ]
}

#[test]
fn every_error_gives_a_listed_code_with_its_parameters() {
    let mut seen = BTreeSet::new();
    for e in examples() {
        let code = e.code();
        let Some((_, names)) = ERROR_CODES.iter().find(|(c, _)| *c == code) else {
            panic!("{code} ({e}) is not in ERROR_CODES");
        };
        let given: Vec<&str> = e.params().iter().map(|(n, _)| *n).collect();
        assert_eq!(&given, names, "{code}: parameters");
        assert!(e.params().iter().all(|(_, v)| !v.is_empty()), "{code}: an empty parameter");
        seen.insert(code);
    }
    let listed: BTreeSet<&str> = ERROR_CODES.iter().map(|(c, _)| *c).collect();
    assert_eq!(listed.len(), ERROR_CODES.len(), "a code is listed twice");
    let unused: Vec<_> = listed.difference(&seen).collect();
    assert!(unused.is_empty(), "listed codes no error gives: {unused:?}");
}

/// The placeholders of a message (every plural form), by name, without their formats.
fn placeholders(message: &serde_json::Value) -> BTreeSet<String> {
    let forms: Vec<&str> = match message {
        serde_json::Value::String(s) => vec![s],
        serde_json::Value::Object(m) => m.values().filter_map(|v| v.as_str()).collect(),
        _ => vec![],
    };
    let mut out = BTreeSet::new();
    for f in forms {
        for piece in f.split('{').skip(1) {
            if let Some(end) = piece.find('}') {
                out.insert(piece[..end].split(':').next().unwrap_or_default().to_string());
            }
        }
    }
    out
}

#[test]
fn every_catalogue_words_every_code_with_its_parameters() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/i18n");
    for lang in LANGUAGES {
        let path = dir.join(format!("{lang}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let catalogue: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{lang}: {e}"));
        for (code, names) in ERROR_CODES {
            let pointer = format!("/rust/{}", code.replace('.', "/"));
            let Some(message) = catalogue.pointer(&pointer) else {
                panic!("{lang}.json has no message for error {code} (rust.{code})");
            };
            let want: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
            assert_eq!(placeholders(message), want, "{lang}.json, rust.{code}: placeholders");
        }
        // No message for a code that no longer exists.
        let rust = catalogue.get("rust").and_then(|v| v.as_object()).expect("a rust section");
        for (group, codes) in rust {
            for code in codes.as_object().expect("a group of codes").keys() {
                let full = format!("{group}.{code}");
                assert!(ERROR_CODES.iter().any(|(c, _)| *c == full), "{lang}.json: rust.{full} is no error's code");
            }
        }
    }
}
