//! Finding, downloading and verifying MNIST-format data sets on disk (native only).
//!
//! Resolution order: `--data DIR`, then `$MNIST_DIR`, then `./data/mnist`, the managed folder,
//! which is downloaded from a public mirror when empty (like torchvision).
//!
//! Checksums are verified where they protect something: a download, and the managed folder,
//! which must hold the canonical MNIST (sha256 of the uncompressed bytes, so recompressed copies
//! are accepted). A folder the user names holds any data set in the IDX format: its structure
//! is validated, MNIST and Fashion-MNIST are recognised by their checksums, and anything else
//! trains as a `custom` set whose checksums the model's metadata records.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::classes;
use crate::error::DataError;
use crate::fsutil::atomic_write;
use crate::idx;

/// The four files of a data set, as (train images, train labels, test images, test labels).
pub const FILES: [&str; 4] = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// sha256 of the uncompressed canonical files, in the order of [`FILES`].
pub const MNIST_SHA256: [&str; 4] = [
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
];
pub const FASHION_MNIST_SHA256: [&str; 4] = [
    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
];

/// Mirrors of the canonical gzip files, tried in order (the ones torchvision uses).
/// `MNIST_MIRROR=URL` replaces the list, e.g. for a local copy or a test server.
pub const MNIST_MIRRORS: [&str; 2] = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"];

/// The folder used when neither `--data` nor `$MNIST_DIR` is given.
pub const DEFAULT_DIR: &str = "data/mnist";

/// A loaded data set: images as bytes (0..=255), labels 0..=9.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `mnist`, `fashion-mnist`, or `custom` when the checksums match neither.
    pub name: String,
    /// sha256 of each uncompressed file, in the order of [`FILES`].
    pub files_sha256: [String; 4],
    pub dir: PathBuf,
    pub rows: usize,
    pub cols: usize,
    pub train_images: Vec<u8>,
    pub train_labels: Vec<u8>,
    pub test_images: Vec<u8>,
    pub test_labels: Vec<u8>,
}

impl Dataset {
    /// sha256 of the uncompressed training images file (what a checkpoint is tied to).
    pub fn train_images_sha256(&self) -> &str {
        &self.files_sha256[0]
    }
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }
    pub fn n_train(&self) -> usize {
        self.train_labels.len()
    }
    pub fn n_test(&self) -> usize {
        self.test_labels.len()
    }
    /// Whether this is a data set the project knows by its checksums.
    pub fn is_known(&self) -> bool {
        self.name != "custom"
    }
    /// What the model's metadata records about the data.
    pub fn metadata_json(&self) -> serde_json::Value {
        let sha: serde_json::Map<String, serde_json::Value> =
            FILES.iter().zip(&self.files_sha256).map(|(f, s)| (f.to_string(), s.clone().into())).collect();
        let mut meta = serde_json::json!({
            "name": self.name,
            "folder": self.dir.file_name().map(|n| n.to_string_lossy().into_owned()),
            "train_images_sha256": self.train_images_sha256(),
            "sha256": sha,
            "train_examples": self.n_train(),
            "test_examples": self.n_test(),
        });
        // The legend of every model trained from it; a custom set's labels have no names.
        if let Some(names) = classes::for_dataset(&self.name) {
            meta["classes"] = names.into();
        }
        meta
    }
    /// Keeps only the first `n` training examples.
    pub fn limit_train(&mut self, n: usize) {
        let n = n.min(self.n_train());
        self.train_labels.truncate(n);
        self.train_images.truncate(n * self.pixels());
    }
}

/// Intensities in [0, 1], the Bernoulli decoder's targets.
pub fn to_intensities(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&b| b as f32 * (1.0 / 255.0)).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the data lives, and whether the user named it (then nothing is downloaded or held to
/// MNIST's checksums).
pub fn resolve_dir(cli: Option<&Path>) -> (PathBuf, bool) {
    if let Some(p) = cli {
        return (p.to_path_buf(), true);
    }
    match std::env::var_os("MNIST_DIR") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), true),
        _ => (PathBuf::from(DEFAULT_DIR), false),
    }
}

/// The path of `name` in `dir`, gzip or raw, if present.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [format!("{name}.gz"), name.to_string()].into_iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Loads the data set from `cli`/`$MNIST_DIR`/`./data/mnist` (see the module doc).
pub fn load(cli: Option<&Path>) -> Result<Dataset, DataError> {
    let (dir, explicit) = resolve_dir(cli);
    if !explicit {
        return load_managed(&dir);
    }
    let missing = missing_files(&dir);
    if !missing.is_empty() {
        return Err(DataError::NotFound(format!(
            "{} is missing {} (each as NAME or NAME.gz); point --data at a folder with the four IDX files",
            dir.display(),
            missing.join(", ")
        )));
    }
    load_dir(&dir)
}

/// The managed MNIST folder: downloads what is missing, then holds every file to MNIST's
/// checksums, so a damaged or replaced file is named rather than trained on.
pub fn load_managed(dir: &Path) -> Result<Dataset, DataError> {
    let missing = missing_files(dir);
    if !missing.is_empty() {
        download(dir, &missing, &mirrors())?;
    }
    let raw = read_files(dir)?;
    for (i, (file, bytes)) in raw.iter().enumerate() {
        let found = sha256_hex(bytes);
        if found != MNIST_SHA256[i] {
            return Err(DataError::Checksum { file: file.clone(), expected: MNIST_SHA256[i].into(), found });
        }
    }
    parse(dir, raw)
}

fn missing_files(dir: &Path) -> Vec<&'static str> {
    FILES.iter().copied().filter(|f| find_file(dir, f).is_none()).collect()
}

/// Reads the four files in `dir` (gunzipped), each with the name errors use for it.
fn read_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, DataError> {
    let mut raw = Vec::with_capacity(4);
    for name in FILES {
        let path = find_file(dir, name).ok_or_else(|| DataError::NotFound(format!("{}: no {name} or {name}.gz", dir.display())))?;
        let label = path.display().to_string();
        let bytes = fs::read(&path).map_err(|e| DataError::Io { path: label.clone(), reason: e.to_string() })?;
        raw.push((label.clone(), idx::maybe_gunzip(&label, bytes)?));
    }
    Ok(raw)
}

/// Reads the four files in `dir` and validates their structure; MNIST and Fashion-MNIST are
/// recognised by their checksums, anything else is a `custom` set.
pub fn load_dir(dir: &Path) -> Result<Dataset, DataError> {
    let raw = read_files(dir)?;
    parse(dir, raw)
}

fn parse(dir: &Path, raw: Vec<(String, Vec<u8>)>) -> Result<Dataset, DataError> {
    let sums: [String; 4] = std::array::from_fn(|i| sha256_hex(&raw[i].1));
    let name = identify(&sums);

    let train = idx::parse_images(&raw[0].0, &raw[0].1)?;
    let train_labels = idx::parse_labels(&raw[1].0, &raw[1].1)?;
    let test = idx::parse_images(&raw[2].0, &raw[2].1)?;
    let test_labels = idx::parse_labels(&raw[3].0, &raw[3].1)?;
    for (images, img_file, labels, lab_file) in [(&train, &raw[0].0, &train_labels, &raw[1].0), (&test, &raw[2].0, &test_labels, &raw[3].0)]
    {
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images_file: img_file.clone(),
                images: images.count,
                labels_file: lab_file.clone(),
                labels: labels.len(),
            });
        }
        if let Some(bad) = labels.iter().position(|&l| l > 9) {
            return Err(DataError::Malformed {
                file: lab_file.clone(),
                reason: format!("label {} at index {bad} is not a digit class 0-9", labels[bad]),
            });
        }
    }
    if (test.rows, test.cols) != (train.rows, train.cols) {
        return Err(DataError::Malformed {
            file: raw[2].0.clone(),
            reason: format!("test images are {}x{}, training images {}x{}", test.rows, test.cols, train.rows, train.cols),
        });
    }
    if train.count == 0 {
        return Err(DataError::Malformed { file: raw[0].0.clone(), reason: "no training images".into() });
    }
    Ok(Dataset {
        name,
        files_sha256: sums,
        dir: dir.to_path_buf(),
        rows: train.rows,
        cols: train.cols,
        train_images: train.pixels,
        train_labels,
        test_images: test.pixels,
        test_labels,
    })
}

/// Names the data set by its checksums: a known set only when all four files match it.
fn identify(sums: &[String; 4]) -> String {
    for (name, known) in [("mnist", &MNIST_SHA256), ("fashion-mnist", &FASHION_MNIST_SHA256)] {
        if sums.iter().zip(known.iter()).all(|(s, k)| s == k) {
            return name.into();
        }
    }
    "custom".into()
}

fn mirrors() -> Vec<String> {
    match std::env::var("MNIST_MIRROR") {
        Ok(m) if !m.is_empty() => vec![m],
        _ => MNIST_MIRRORS.iter().map(|s| s.to_string()).collect(),
    }
}

/// Downloads the named MNIST files (as `NAME.gz`) into `dir`, verifying each one's content
/// before it is moved into place, so a failed download never leaves a bad file behind.
pub fn download(dir: &Path, names: &[&str], mirrors: &[String]) -> Result<(), DataError> {
    fs::create_dir_all(dir).map_err(|e| DataError::Io { path: dir.display().to_string(), reason: e.to_string() })?;
    for &name in names {
        let i = FILES.iter().position(|f| *f == name).expect("download is asked for one of FILES");
        let mut errors = Vec::new();
        let mut done = false;
        for base in mirrors {
            let url = format!("{}/{name}.gz", base.trim_end_matches('/'));
            eprintln!("downloading {url}");
            match fetch(&url).and_then(|gz| {
                let content = idx::maybe_gunzip(&url, gz.clone())?;
                let found = sha256_hex(&content);
                if found != MNIST_SHA256[i] {
                    return Err(DataError::Checksum { file: url.clone(), expected: MNIST_SHA256[i].into(), found });
                }
                Ok(gz)
            }) {
                Ok(gz) => {
                    let path = dir.join(format!("{name}.gz"));
                    atomic_write(&path, &gz).map_err(|e| DataError::Io { path: path.display().to_string(), reason: e.to_string() })?;
                    done = true;
                    break;
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !done {
            return Err(DataError::Download {
                url: format!("{name}.gz"),
                reason: format!(
                    "every mirror failed ({}); without network access, copy the four IDX files into {} or pass --data DIR",
                    errors.join("; "),
                    dir.display()
                ),
            });
        }
    }
    Ok(())
}

fn fetch(url: &str) -> Result<Vec<u8>, DataError> {
    let err = |reason: String| DataError::Download { url: url.into(), reason };
    let mut resp = ureq::get(url).call().map_err(|e| err(e.to_string()))?;
    resp.body_mut().with_config().limit(128 << 20).read_to_vec().map_err(|e| err(e.to_string()))
}
