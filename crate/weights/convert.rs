//! Rewriting a model file in another storage precision (`train --convert`), native only.
//!
//! It lives with the model file's code because it is a transformation of that file, but apart
//! from `mod.rs` because it measures the converted model on the test set with the trainer's
//! evaluation (rayon, native only), which the browser build must not pull in. Like the rest of
//! `weights` it does no I/O: bytes in, bytes out; the CLI reads and writes the files.

use crate::error::ModelError;
use crate::train::config::MAX_IW_SAMPLES;
use crate::train::evaluate::{encode_means, TestFigures};

use super::{from_bytes, to_bytes, Embedding, StorageDtype};

/// Samples per image for the importance-weighted bound of a file that does not record its own.
const DEFAULT_IW_SAMPLES: usize = 100;

/// Rewrites a model file in another storage precision. The test figures in the metadata and the
/// test-set embedding are measured again on the converted weights (with the file's
/// `iw_samples`), so they stay true. Runs in the current rayon pool.
pub fn convert(bytes: &[u8], images: &[u8], labels: &[u8], dtype: StorageDtype) -> Result<(Vec<u8>, TestFigures), ModelError> {
    let file = from_bytes(bytes)?;
    if labels.len() * file.vae.arch().input != images.len() {
        return Err(ModelError::Embedding(format!("{} labels for {} bytes of images", labels.len(), images.len())));
    }
    // Round the parameters through the target precision first, then measure that model.
    let probe = to_bytes(&file.vae, None, &Default::default(), dtype, Vec::new())?;
    let vae = from_bytes(&probe)?.vae;
    let k = file.metadata.get("iw_samples").and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_IW_SAMPLES);
    // The file says how much work to do: bound it as a checkpoint's is.
    if k > MAX_IW_SAMPLES {
        return Err(ModelError::Metadata { key: "iw_samples".into(), reason: format!("{k} samples per image, at most {MAX_IW_SAMPLES}") });
    }
    // The plane shows where this model puts the test set: encode it again with the new weights.
    let means = encode_means(&vae, images);
    let figures = TestFigures::measure(&vae, images, labels, &means, k);
    let mut meta = file.metadata.clone();
    figures.record(&mut meta);
    add_class_names(&mut meta);
    meta.insert("storage_dtype".into(), format!("{dtype:?}").to_lowercase());
    let embedding = file.embedding.map(|e| {
        if e.labels.len() * vae.arch().input == images.len() {
            Embedding { mu: means, labels: labels.to_vec() }
        } else {
            e
        }
    });
    let out = to_bytes(&vae, embedding.as_ref(), &meta, dtype, Vec::new())?;
    Ok((out, figures))
}

/// Gives a file from before class names were recorded its data set's names (`dataset.classes`),
/// when the data set is one this crate knows: the page's legend reads them.
fn add_class_names(meta: &mut std::collections::BTreeMap<String, String>) {
    let Some(mut dataset) = meta.get("dataset").and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()) else { return };
    let names = dataset.get("name").and_then(|n| n.as_str()).and_then(crate::classes::for_dataset);
    if let (Some(names), Some(obj)) = (names, dataset.as_object_mut()) {
        obj.entry("classes").or_insert_with(|| names.iter().map(|&n| serde_json::Value::from(n)).collect());
        meta.insert("dataset".into(), dataset.to_string());
    }
}
