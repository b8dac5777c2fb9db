//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use latent_explorer::dataset::{self, Dataset};

/// The MNIST copy the tests use: `$MNIST_DIR`, else `../shared/data/mnist` beside the repo
/// (where CI puts it). The product itself never looks there.
pub fn mnist_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MNIST_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    assert!(
        d.join("train-images-idx3-ubyte.gz").is_file(),
        "MNIST not found: set MNIST_DIR to a folder with the four IDX files (looked in {})",
        d.display()
    );
    d
}

/// MNIST, loaded once per test binary.
pub fn mnist() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| dataset::load_dir(&mnist_dir()).expect("MNIST loads"))
}

/// A copy of MNIST cut to the first `n_train` training and `n_test` test images.
pub fn mnist_subset(n_train: usize, n_test: usize) -> Dataset {
    let mut d = mnist().clone();
    d.limit_train(n_train);
    d.test_labels.truncate(n_test);
    d.test_images.truncate(n_test * d.pixels());
    d
}

/// A fresh empty folder under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("latent-explorer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
