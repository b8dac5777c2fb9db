//! A compact labelled subset of a data set's images: the test subsets, for models that carry no
//! `embedding.*` (the page fetches one, encodes it and draws the plane from it), and the training
//! subsets the page's Train panel learns from (gzip-compressed, `www/data/`). A safetensors file with `images` (U8, `[n, 784]`) and
//! `labels` (U8, `[n]`), and metadata: `dataset` (its name), `classes` (a JSON array of names, one
//! per label), `source_sha256` (a JSON object: the checksums of the IDX files it was cut from) and
//! `selection` (how the images were chosen, in words). Works from bytes (native and wasm);
//! `crate/bin/testset.rs` writes one from a data set on disk.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use thiserror::Error;

/// Pixels per image: the 28x28 the models take.
pub const PIXELS: usize = 784;
/// The tensors' names.
pub const IMAGES: &str = "images";
pub const LABELS: &str = "labels";

/// A test subset: `labels.len()` images of [`PIXELS`] bytes each, row after row.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSet {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    /// The data set's name (`mnist`, `fashion-mnist`, `custom`).
    pub dataset: String,
    /// One name per label value: label `l` is `classes[l]`.
    pub classes: Vec<String>,
    /// sha256 of each source file, by file name.
    pub source_sha256: Vec<(String, String)>,
    /// How the images were chosen, in words.
    pub selection: String,
}

/// Why a test subset cannot be read, written or chosen.
#[derive(Debug, Error)]
pub enum TestSetError {
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    #[error("{0}")]
    Gzip(String),
    #[error("missing tensor `{0}`")]
    MissingTensor(&'static str),
    #[error("unexpected tensor `{0}` (a test subset holds only `images` and `labels`)")]
    UnexpectedTensor(String),
    #[error("tensor `{name}` has dtype {found}, expected U8")]
    DType { name: &'static str, found: String },
    #[error("tensor `{name}` has shape {found:?}, expected {expected}")]
    Shape { name: &'static str, expected: String, found: Vec<usize> },
    #[error("metadata `{key}`: {reason}")]
    Metadata { key: &'static str, reason: String },
    #[error("label {label} of image {index} has no class name (there are {classes} classes)")]
    Label { index: usize, label: u8, classes: usize },
    #[error("class {class} has {found} test images, fewer than the {wanted} asked for")]
    TooFew { class: usize, found: usize, wanted: usize },
    #[error("{0}")]
    Input(String),
}

impl TestSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Image `i`'s bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Everything [`from_bytes`] checks, so that nothing it would refuse is ever written.
    fn validate(&self) -> Result<(), TestSetError> {
        let n = self.labels.len();
        if n == 0 {
            return Err(TestSetError::Shape { name: LABELS, expected: "at least one image".into(), found: vec![0] });
        }
        if self.images.len() != n * PIXELS {
            return Err(TestSetError::Shape { name: IMAGES, expected: format!("[{n}, {PIXELS}]"), found: vec![self.images.len()] });
        }
        if self.classes.is_empty() || self.classes.len() > 256 {
            return Err(TestSetError::Metadata { key: "classes", reason: format!("{} names, expected 1 to 256", self.classes.len()) });
        }
        if let Some(index) = self.labels.iter().position(|&l| l as usize >= self.classes.len()) {
            return Err(TestSetError::Label { index, label: self.labels[index], classes: self.classes.len() });
        }
        if self.dataset.is_empty() {
            return Err(TestSetError::Metadata { key: "dataset", reason: "empty".into() });
        }
        Ok(())
    }
}

/// The indices of the first `per_class` images of each class `0..classes`, in test-set order
/// (so the subset interleaves classes as the test set does). Every class must have that many.
pub fn select_balanced(labels: &[u8], classes: usize, per_class: usize) -> Result<Vec<usize>, TestSetError> {
    if per_class == 0 {
        return Err(TestSetError::Input("--per-class must be at least 1".into()));
    }
    let mut counts = vec![0usize; classes];
    let mut chosen = Vec::with_capacity(classes * per_class);
    for (i, &l) in labels.iter().enumerate() {
        let Some(c) = counts.get_mut(l as usize) else {
            return Err(TestSetError::Label { index: i, label: l, classes });
        };
        if *c < per_class {
            *c += 1;
            chosen.push(i);
        }
    }
    if let Some((class, &found)) = counts.iter().enumerate().find(|(_, &c)| c < per_class) {
        return Err(TestSetError::TooFew { class, found, wanted: per_class });
    }
    Ok(chosen)
}

/// The selection in words, for the file's metadata.
pub fn describe_selection(per_class: usize, split: &str) -> String {
    format!("the first {per_class} {split} images of each class, in {split}-set order")
}

/// Serialises a test subset (refusing anything [`from_bytes`] would refuse).
pub fn to_bytes(set: &TestSet) -> Result<Vec<u8>, TestSetError> {
    set.validate()?;
    let n = set.len();
    let json = |v: serde_json::Value| v.to_string();
    let source: serde_json::Map<String, serde_json::Value> = set.source_sha256.iter().map(|(f, s)| (f.clone(), s.clone().into())).collect();
    let meta: HashMap<String, String> = [
        ("format", "latent-explorer-testset".to_string()),
        ("dataset", set.dataset.clone()),
        ("classes", json(serde_json::json!(set.classes))),
        ("source_sha256", json(source.into())),
        ("selection", set.selection.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let views = [(IMAGES, vec![n, PIXELS], &set.images), (LABELS, vec![n], &set.labels)]
        .into_iter()
        .map(|(name, shape, data)| TensorView::new(Dtype::U8, shape, data).map(|v| (name.to_string(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TestSetError::Format(e.to_string()))?;
    safetensors::serialize(views, Some(meta)).map_err(|e| TestSetError::Format(e.to_string()))
}

/// The largest subset accepted once decompressed: MNIST's whole training set (47 MB) fits.
pub const MAX_BYTES: u64 = 64 << 20;

/// Parses and validates a subset, raw or gzip-compressed: exactly the two U8 tensors with
/// matching shapes, the metadata present and well-formed, every label naming a class.
pub fn from_bytes(bytes: &[u8]) -> Result<TestSet, TestSetError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return parse(&gunzip(bytes)?);
    }
    parse(bytes)
}

/// Inflates a gzip stream, refusing one that inflates past [`MAX_BYTES`] (found after reading
/// at most one byte more).
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, TestSetError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| TestSetError::Gzip(format!("corrupt gzip stream: {e}")))?;
    if out.len() as u64 > MAX_BYTES {
        return Err(TestSetError::Gzip(format!("the gzip stream decompresses to more than {} MiB", MAX_BYTES >> 20)));
    }
    Ok(out)
}

/// Gzip-compresses a serialised subset (the training subsets are shipped so).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).expect("writing to memory cannot fail");
    enc.finish().expect("writing to memory cannot fail")
}

fn parse(bytes: &[u8]) -> Result<TestSet, TestSetError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| TestSetError::Format(e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| TestSetError::Format(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if let Some(name) = st.names().into_iter().filter(|n| *n != IMAGES && *n != LABELS).min() {
        return Err(TestSetError::UnexpectedTensor(name.to_string()));
    }
    let tensor = |name: &'static str| {
        let t = st.tensor(name).map_err(|_| TestSetError::MissingTensor(name))?;
        if t.dtype() != Dtype::U8 {
            return Err(TestSetError::DType { name, found: format!("{:?}", t.dtype()) });
        }
        Ok(t)
    };
    let (images, labels) = (tensor(IMAGES)?, tensor(LABELS)?);
    let n = labels.shape().first().copied().unwrap_or(0);
    if labels.shape().len() != 1 || n == 0 {
        return Err(TestSetError::Shape { name: LABELS, expected: "[n] with n >= 1".into(), found: labels.shape().to_vec() });
    }
    if images.shape() != [n, PIXELS] {
        return Err(TestSetError::Shape {
            name: IMAGES,
            expected: format!("[{n}, {PIXELS}] (one 28x28 image per label)"),
            found: images.shape().to_vec(),
        });
    }
    let text = |key: &'static str| meta.get(key).cloned().ok_or(TestSetError::Metadata { key, reason: "missing".into() });
    let classes: Vec<String> = serde_json::from_str(&text("classes")?)
        .map_err(|e| TestSetError::Metadata { key: "classes", reason: format!("not a JSON array of names: {e}") })?;
    let source: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text("source_sha256")?)
        .map_err(|e| TestSetError::Metadata { key: "source_sha256", reason: format!("not a JSON object: {e}") })?;
    let source_sha256 = source
        .into_iter()
        .map(|(f, s)| match s {
            serde_json::Value::String(s) => Ok((f, s)),
            other => Err(TestSetError::Metadata { key: "source_sha256", reason: format!("{f}: {other} is not a checksum string") }),
        })
        .collect::<Result<_, _>>()?;
    let set = TestSet {
        images: images.data().to_vec(),
        labels: labels.data().to_vec(),
        dataset: text("dataset")?,
        classes,
        source_sha256,
        selection: text("selection")?,
    };
    set.validate()?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> TestSet {
        TestSet {
            images: (0..3 * PIXELS).map(|i| (i * 7 % 256) as u8).collect(),
            labels: vec![2, 0, 1],
            dataset: "mnist".into(),
            classes: vec!["zero".into(), "one".into(), "two".into()],
            source_sha256: vec![("t10k-images-idx3-ubyte".into(), "ab".repeat(32))],
            selection: describe_selection(1, "test"),
        }
    }

    #[test]
    fn a_test_set_survives_a_round_trip() {
        let set = small();
        let back = from_bytes(&to_bytes(&set).unwrap()).unwrap();
        assert!(back == set, "the round trip changed the set");
        assert_eq!(back.image(1), &set.images[PIXELS..2 * PIXELS]);
    }

    #[test]
    fn selection_takes_the_first_of_each_class_in_order() {
        // Class 0 at 1, 4, 5; class 1 at 0, 2, 6; label 2 at 3 is outside the 2 classes.
        let labels = [1u8, 0, 1, 0, 0, 1];
        assert_eq!(select_balanced(&labels, 2, 2).unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(select_balanced(&labels, 2, 3).unwrap(), vec![0, 1, 2, 3, 4, 5]);
        assert!(matches!(select_balanced(&labels, 2, 4), Err(TestSetError::TooFew { class: 0, found: 3, wanted: 4 })));
        assert!(matches!(select_balanced(&[0, 2], 2, 1), Err(TestSetError::Label { index: 1, label: 2, classes: 2 })));
        assert!(matches!(select_balanced(&labels, 2, 0), Err(TestSetError::Input(_))));
    }

    /// Writes a file by hand (bypassing `to_bytes`'s checks) with the given tensors and metadata.
    fn raw(tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>, meta: &[(&str, &str)]) -> Vec<u8> {
        let views: Vec<(String, TensorView)> =
            tensors.iter().map(|(n, dt, shape, data)| (n.to_string(), TensorView::new(*dt, shape.clone(), data).unwrap())).collect();
        let meta: HashMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    #[test]
    fn each_malformed_file_has_its_own_error() {
        let good_meta = [("dataset", "mnist"), ("classes", r#"["a","b"]"#), ("source_sha256", "{}"), ("selection", "all")];
        let images = |n: usize| (IMAGES, Dtype::U8, vec![n, PIXELS], vec![0u8; n * PIXELS]);
        let labels = |l: Vec<u8>| (LABELS, Dtype::U8, vec![l.len()], l);
        assert!(from_bytes(&raw(vec![images(2), labels(vec![0, 1])], &good_meta)).is_ok());
        let err = |tensors, meta: &[(&str, &str)]| from_bytes(&raw(tensors, meta)).unwrap_err();

        assert!(matches!(from_bytes(&[1, 2, 3]), Err(TestSetError::Format(_))));
        let good = raw(vec![images(2), labels(vec![0, 1])], &good_meta);
        assert!(matches!(from_bytes(&good[..good.len() - 1]), Err(TestSetError::Format(_))));
        assert!(matches!(err(vec![images(2)], &good_meta), TestSetError::MissingTensor(LABELS)));
        assert!(matches!(err(vec![labels(vec![0, 1])], &good_meta), TestSetError::MissingTensor(IMAGES)));
        let extra = ("embedding.mu", Dtype::U8, vec![1], vec![0]);
        assert!(
            matches!(err(vec![images(2), labels(vec![0, 1]), extra], &good_meta), TestSetError::UnexpectedTensor(n) if n == "embedding.mu")
        );
        let float_labels = (LABELS, Dtype::F32, vec![2], vec![0u8; 8]);
        assert!(matches!(err(vec![images(2), float_labels], &good_meta), TestSetError::DType { name: LABELS, .. }));
        assert!(matches!(err(vec![images(3), labels(vec![0, 1])], &good_meta), TestSetError::Shape { name: IMAGES, .. }));
        let narrow = (IMAGES, Dtype::U8, vec![2, 28], vec![0u8; 56]);
        assert!(matches!(err(vec![narrow, labels(vec![0, 1])], &good_meta), TestSetError::Shape { name: IMAGES, .. }));
        let square = (LABELS, Dtype::U8, vec![1, 2], vec![0, 1]);
        assert!(matches!(err(vec![images(2), square], &good_meta), TestSetError::Shape { name: LABELS, .. }));
        assert!(matches!(err(vec![images(0), labels(vec![])], &good_meta), TestSetError::Shape { name: LABELS, .. }));
        assert!(matches!(err(vec![images(2), labels(vec![0, 2])], &good_meta), TestSetError::Label { index: 1, label: 2, classes: 2 }));
        for key in ["dataset", "classes", "source_sha256", "selection"] {
            let meta: Vec<(&str, &str)> = good_meta.iter().copied().filter(|(k, _)| *k != key).collect();
            assert!(matches!(err(vec![images(2), labels(vec![0, 1])], &meta), TestSetError::Metadata { key: k, .. } if k == key), "{key}");
        }
        let bad_classes = [("dataset", "mnist"), ("classes", "[1, 2]"), ("source_sha256", "{}"), ("selection", "all")];
        assert!(matches!(err(vec![images(2), labels(vec![0, 1])], &bad_classes), TestSetError::Metadata { key: "classes", .. }));
        let bad_source = [("dataset", "mnist"), ("classes", r#"["a","b"]"#), ("source_sha256", r#"{"f": 3}"#), ("selection", "all")];
        assert!(matches!(err(vec![images(2), labels(vec![0, 1])], &bad_source), TestSetError::Metadata { key: "source_sha256", .. }));
        // The writer refuses what the reader would.
        let mut bad = small();
        bad.labels[0] = 3;
        assert!(matches!(to_bytes(&bad), Err(TestSetError::Label { index: 0, label: 3, classes: 3 })));
    }
}
