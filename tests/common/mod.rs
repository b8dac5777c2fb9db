//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use latent_explorer::dataset::{self, Dataset};

/// The MNIST copy the tests use, found as a user's checkout finds it: `$MNIST_DIR`, else the
/// trainer's managed `./data/mnist` (downloaded and checksum-verified when missing). The
/// files are there once this returns.
pub fn mnist_dir() -> PathBuf {
    mnist();
    data_dir()
}

fn data_dir() -> PathBuf {
    let (dir, named) = dataset::resolve_dir(None);
    if named {
        dir
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir)
    }
}

/// MNIST, loaded once per test binary.
pub fn mnist() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        // Integration tests run in the package root, so the trainer's own resolution applies.
        let dir = data_dir();
        let d = dataset::load(None).unwrap_or_else(|e| panic!("MNIST does not load from {}: {e}", dir.display()));
        assert_eq!(d.name, "mnist", "{} must hold the canonical MNIST", dir.display());
        d
    })
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

/// A VAE's encoding as (mu, logvar); panics for a deterministic encoder.
pub fn gaussian(e: latent_explorer::model::Encoding) -> (Vec<f32>, Vec<f32>) {
    (e.mu, e.logvar.expect("a VAE's encoding has log-variances"))
}

/// Sets the stop flag after a given number of steps, as Ctrl-C does.
pub struct StopAfter<'a> {
    pub steps: usize,
    pub flag: &'a std::sync::atomic::AtomicBool,
}
impl latent_explorer::train::Observer for StopAfter<'_> {
    fn step(&mut self, _batch: usize, _loss: f64, _eps: f64) {
        self.steps = self.steps.saturating_sub(1);
        if self.steps == 0 {
            self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// ||a - b|| / ||b|| over one tensor, and ||b||.
pub fn relative(a: &[f32], b: &[f32]) -> (f64, f64) {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt();
    (diff / norm.max(1e-30), norm)
}

/// Every weight and bias tensor of `a` within `tol` (relative L2) of `b`'s.
pub fn assert_tensors_close(vae: &latent_explorer::Vae, a: &[f32], b: &[f32], tol: f64, what: &str) {
    let lay = vae.layout();
    let mut worst = (0.0f64, String::new());
    for li in 0..lay.layers.len() {
        let (w, bias) = lay.ranges(li);
        for (part, r) in [("weight", w), ("bias", bias)] {
            let (rel, norm) = relative(&a[r.clone()], &b[r]);
            let name = &lay.layers[li].name;
            assert!(norm > 0.0, "{what} {name}.{part} is zero: the check would be vacuous");
            assert!(rel < tol, "{what} {name}.{part}: relative error {rel:.2e} (tolerance {tol:e})");
            if rel >= worst.0 {
                worst = (rel, format!("{name}.{part}"));
            }
        }
    }
    eprintln!("{what}: worst tensor {} at relative error {:.2e} (tolerance {tol:e})", worst.1, worst.0);
}
