//! The properties the fuzz targets and the stable robustness tests (`tests/robustness.rs`)
//! check, written once and included by both (`#[path]`). Each function takes arbitrary bytes,
//! runs one parser on them, and panics if the property is broken: a panic inside the parser,
//! an error that is not one of the specific kinds this input can cause, or a success whose
//! result is not internally consistent. It returns a short name of the outcome, for statistics.
#![allow(dead_code)]

use std::io::Write;

use latent_explorer::error::{DataError, ModelError};
use latent_explorer::idx;
use latent_explorer::preprocess::{self, PreprocessError};
use latent_explorer::weights::ModelFile;

/// A model-loading error must be one a file can cause, and say what is wrong.
pub fn check_model_error(e: &ModelError) -> &'static str {
    let text = e.to_string();
    let (kind, detail) = match e {
        ModelError::Architecture(s) => ("architecture", s.clone()),
        ModelError::Format(s) => ("format", s.clone()),
        ModelError::Metadata { key, reason } => ("metadata", format!("{key}{reason}")),
        ModelError::MissingTensor(n) => ("missing-tensor", n.clone()),
        ModelError::UnexpectedTensor(n) => ("unexpected-tensor", n.clone()),
        ModelError::Shape { name, .. } => ("shape", name.clone()),
        ModelError::DType { name, found, .. } => ("dtype", format!("{name}{found}")),
        ModelError::NonFinite { name, .. } => ("non-finite", name.clone()),
        ModelError::Embedding(s) => ("embedding", s.clone()),
        other => panic!("loading bytes gave an error no file can cause: {other:?}"),
    };
    assert!(!detail.trim().is_empty(), "error without detail: {e:?} ({text})");
    assert!(text.len() > detail.len(), "{text}");
    kind
}

/// What a loaded model must satisfy.
pub fn check_model_file(file: &ModelFile) {
    let arch = file.vae.arch();
    assert!(arch.validate().is_ok(), "loaded an invalid architecture {arch:?}");
    assert_eq!(file.vae.params().len(), arch.n_params());
    assert!(file.vae.params().iter().all(|v| v.is_finite()), "non-finite parameter loaded");
    if let Some(e) = &file.embedding {
        assert_eq!(e.mu.len(), e.labels.len() * arch.latent);
        assert!(e.mu.iter().all(|v| v.is_finite()));
    }
    // A loaded model decodes (the decoder indexes by the architecture).
    if arch.n_params() < 1 << 22 {
        let out = file.vae.decode(&vec![0.25; arch.latent]).expect("a loaded model decodes");
        assert_eq!(out.len(), arch.input);
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "decoded pixels outside [0, 1]");
    }
}

/// `weights::from_bytes` on any bytes.
pub fn model(data: &[u8]) -> &'static str {
    match latent_explorer::weights::from_bytes(data) {
        Ok(file) => {
            check_model_file(&file);
            "ok"
        }
        Err(e) => check_model_error(&e),
    }
}

/// `checkpoint::from_bytes` on any bytes.
pub fn checkpoint(data: &[u8]) -> &'static str {
    match latent_explorer::train::checkpoint::from_bytes(data) {
        Ok(st) => {
            let n = st.vae.arch().n_params();
            assert_eq!(st.vae.params().len(), n);
            assert_eq!((st.adam.m.len(), st.adam.v.len()), (n, n));
            assert!(st.adam.m.iter().chain(&st.adam.v).all(|v| v.is_finite()));
            assert!(st.adam.v.iter().all(|&v| v >= 0.0));
            assert!(st.config.batch_size > 0 && st.config.lr > 0.0 && st.adam.eps > 0.0);
            assert_eq!(st.config.arch, *st.vae.arch());
            "ok"
        }
        Err(e) => check_model_error(&e),
    }
}

/// A data error must be one a file's content can cause, and say what is wrong.
pub fn check_data_error(e: &DataError) -> &'static str {
    let text = e.to_string();
    let kind = match e {
        DataError::BadMagic { found, expected, .. } => {
            assert_ne!(found, expected);
            "bad-magic"
        }
        DataError::Truncated { expected, found, .. } => {
            assert!(found < expected, "{text}");
            "truncated"
        }
        DataError::Malformed { reason, .. } => {
            assert!(!reason.trim().is_empty(), "{text}");
            "malformed"
        }
        other => panic!("parsing bytes gave an error no file content can cause: {other:?}"),
    };
    assert!(text.starts_with("fuzz: "), "the error names the file: {text}");
    kind
}

/// Wraps bytes in a gzip stream.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}

/// The IDX parser. The first byte chooses: bit 0 gzip-wraps the rest (so the decompressor sees
/// a valid stream of fuzzed content; inputs that are gzip streams themselves exercise corrupt
/// streams), bit 1 parses labels instead of images.
pub fn idx(data: &[u8]) -> &'static str {
    let Some((&mode, rest)) = data.split_first() else { return "empty" };
    let bytes = if mode & 1 == 1 { gzip(rest) } else { rest.to_vec() };
    idx_bytes(bytes, mode & 2 != 0)
}

/// `maybe_gunzip` then `parse_images` or `parse_labels`; a success must re-encode to the same bytes.
pub fn idx_bytes(bytes: Vec<u8>, labels: bool) -> &'static str {
    let raw = match idx::maybe_gunzip("fuzz", bytes) {
        Ok(raw) => raw,
        Err(e) => return check_data_error(&e),
    };
    if labels {
        match idx::parse_labels("fuzz", &raw) {
            Ok(l) => {
                assert_eq!(idx::encode_labels(&l), raw, "labels lost or changed");
                "ok"
            }
            Err(e) => check_data_error(&e),
        }
    } else {
        match idx::parse_images("fuzz", &raw) {
            Ok(im) => {
                assert_eq!(im.pixels.len(), im.count * im.rows * im.cols);
                assert_eq!(idx::encode_images(im.count, im.rows, im.cols, &im.pixels), raw, "images lost or changed");
                "ok"
            }
            Err(e) => check_data_error(&e),
        }
    }
}

/// Picture preprocessing. Input: a mode byte, width and height as little-endian u32 (any
/// values: 0, huge, not matching the length), then the pixels: RGBA bytes for
/// `rgba_to_mnist`, or (mode bit 7 set) f32 grey levels, NaN included, for `to_mnist`.
pub fn preprocess(data: &[u8]) -> &'static str {
    if data.len() < 9 {
        return "short";
    }
    let mode = data[0];
    let width = u32::from_le_bytes([data[1], data[2], data[3], data[4]]) as usize;
    let height = u32::from_le_bytes([data[5], data[6], data[7], data[8]]) as usize;
    preprocess_sized(mode, width, height, &data[9..])
}

/// As [`preprocess`], with any `usize` sizes.
pub fn preprocess_sized(mode: u8, width: usize, height: usize, body: &[u8]) -> &'static str {
    let result = if mode & 0x80 == 0 {
        preprocess::rgba_to_mnist(body, width, height)
    } else {
        let grey: Vec<f32> = body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        preprocess::to_mnist(&grey, width, height)
    };
    match result {
        Ok(out) => {
            assert_eq!(out.len(), 784);
            assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "output outside [0, 1]");
            assert!(out.iter().any(|&v| v > 0.0), "a digit was found but the input is blank");
            "ok"
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            match e {
                PreprocessError::Empty => {
                    assert!(width == 0 || height == 0);
                    "empty"
                }
                PreprocessError::TooLarge { .. } => {
                    assert!(width.checked_mul(height).is_none_or(|n| n > preprocess::MAX_PIXELS));
                    "too-large"
                }
                PreprocessError::BadLength { expected, found, .. } => {
                    assert_ne!(expected, found);
                    assert_eq!(Some(expected), width.checked_mul(height).and_then(|n| n.checked_mul(4)), "wrong size");
                    "bad-length"
                }
                PreprocessError::BadGreyLength { found, .. } => {
                    assert_ne!(Some(found), width.checked_mul(height));
                    "bad-grey-length"
                }
                PreprocessError::BadGrey { value, .. } => {
                    assert!(!(0.0..=1.0).contains(&value));
                    "bad-grey"
                }
                PreprocessError::NoInk => "no-ink",
            }
        }
    }
}
