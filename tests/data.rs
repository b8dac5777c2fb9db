//! IDX parsing, data-set verification, and the download path (against a local server).

mod common;
#[path = "common/http.rs"]
mod http;

use std::fs;
use std::io::Write;

use latent_explorer::dataset::{self, FILES, MNIST_SHA256};
use latent_explorer::error::DataError;
use latent_explorer::idx;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn valid_files_parse_raw_and_gzipped() {
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
    let file = idx::encode_images(3, 4, 5, &pixels);
    let images = idx::parse_images("x", &file).unwrap();
    assert_eq!((images.count, images.rows, images.cols), (3, 4, 5));
    assert_eq!(images.pixels, pixels);
    let unzipped = idx::maybe_gunzip("x.gz", gzip(&file)).unwrap();
    assert_eq!(idx::parse_images("x", &unzipped).unwrap(), images);
    assert_eq!(idx::parse_labels("y", &idx::encode_labels(&[3, 1, 4])).unwrap(), vec![3, 1, 4]);
}

#[test]
fn each_malformed_file_has_its_own_error() {
    let images = idx::encode_images(2, 3, 3, &[7; 18]);
    // Labels where images are expected, and the other way round.
    assert!(matches!(idx::parse_images("f", &idx::encode_labels(&[1, 2])), Err(DataError::BadMagic { found: 0x801, .. })));
    assert!(matches!(idx::parse_labels("f", &images), Err(DataError::BadMagic { found: 0x803, .. })));
    // Cut in the header, cut in the body, and too long.
    assert!(matches!(idx::parse_images("f", &images[..10]), Err(DataError::Truncated { expected: 16, found: 10, .. })));
    assert!(matches!(idx::parse_images("f", &images[..30]), Err(DataError::Truncated { expected: 34, found: 30, .. })));
    assert!(matches!(idx::parse_images("f", &[images.clone(), vec![0]].concat()), Err(DataError::Malformed { .. })));
    assert!(matches!(idx::parse_images("f", &[]), Err(DataError::Truncated { .. })));
    // A gzip stream that breaks off.
    let gz = gzip(&images);
    let err = idx::maybe_gunzip("f.gz", gz[..gz.len() / 2].to_vec()).unwrap_err();
    assert!(matches!(err, DataError::Malformed { .. }), "{err:?}");
    // Dimensions whose product overflows.
    let mut huge = idx::IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [u32::MAX, u32::MAX, u32::MAX] {
        huge.extend_from_slice(&d.to_be_bytes());
    }
    assert!(idx::parse_images("f", &huge).is_err());
    // Error messages say what to do.
    let msg = idx::parse_images("train.gz", &images[..30]).unwrap_err().to_string();
    assert!(msg.contains("train.gz") && msg.contains("download again"), "{msg}");
}

/// Writes a small, internally consistent data set (not MNIST) into a folder.
fn write_set(dir: &std::path::Path, n_train: usize, n_train_labels: usize, n_test: usize) {
    let img = |n: usize| idx::encode_images(n, 28, 28, &vec![9u8; n * 784]);
    fs::write(dir.join("train-images-idx3-ubyte"), img(n_train)).unwrap();
    fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&idx::encode_labels(&vec![1; n_train_labels]))).unwrap();
    fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gzip(&img(n_test))).unwrap();
    fs::write(dir.join("t10k-labels-idx1-ubyte"), idx::encode_labels(&vec![2; n_test])).unwrap();
}

#[test]
fn a_custom_data_set_loads_and_mismatched_counts_are_refused() {
    let dir = common::temp_dir("custom-set");
    write_set(&dir, 5, 5, 2);
    let d = dataset::load_dir(&dir).unwrap();
    assert_eq!((d.name.as_str(), d.n_train(), d.n_test(), d.pixels()), ("custom", 5, 2, 784));

    write_set(&dir, 5, 4, 2);
    match dataset::load_dir(&dir).unwrap_err() {
        DataError::CountMismatch { images: 5, labels: 4, .. } => {}
        other => panic!("{other:?}"),
    }
    // A missing file is named.
    fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let msg = dataset::load(Some(&dir)).unwrap_err().to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte") && msg.contains("--data"), "{msg}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn real_mnist_loads_with_the_known_statistics() {
    let d = common::mnist();
    assert_eq!((d.name.as_str(), d.n_train(), d.n_test(), d.rows, d.cols), ("mnist", 60_000, 10_000, 28, 28));
    assert_eq!(d.metadata_json()["classes"], serde_json::json!(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]));
    let mean = d.train_images.iter().map(|&p| p as f64).sum::<f64>() / d.train_images.len() as f64 / 255.0;
    assert!((mean - 0.130660476274).abs() < 1e-9, "pixel mean {mean}");
    assert_eq!(d.train_images_sha256(), MNIST_SHA256[0]);
}

/// Copies MNIST's four files into a fresh folder.
fn copy_mnist(name: &str) -> std::path::PathBuf {
    let src = common::mnist_dir();
    let dir = common::temp_dir(name);
    for f in FILES {
        fs::copy(src.join(format!("{f}.gz")), dir.join(format!("{f}.gz"))).unwrap();
    }
    dir
}

/// Replaces the training set in `dir` by its first `n` images and labels (a valid IDX set).
fn cut_training_set(dir: &std::path::Path, n: usize) {
    let read = |f: &str| idx::maybe_gunzip(f, fs::read(dir.join(format!("{f}.gz"))).unwrap()).unwrap();
    let images = idx::parse_images("i", &read(FILES[0])).unwrap();
    let labels = idx::parse_labels("l", &read(FILES[1])).unwrap();
    fs::write(dir.join(format!("{}.gz", FILES[0])), gzip(&idx::encode_images(n, 28, 28, &images.pixels[..n * 784]))).unwrap();
    fs::write(dir.join(format!("{}.gz", FILES[1])), gzip(&idx::encode_labels(&labels[..n]))).unwrap();
}

#[test]
fn a_corrupt_file_in_the_managed_mnist_folder_fails_its_checksum() {
    let dir = copy_mnist("corrupt-mnist");
    // Flip one training label: still a valid IDX file, but not MNIST's.
    let labels = idx::maybe_gunzip("l", fs::read(dir.join("train-labels-idx1-ubyte.gz")).unwrap()).unwrap();
    let mut bad = labels.clone();
    bad[100] = (bad[100] + 1) % 10;
    fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&bad)).unwrap();
    let err = dataset::load_managed(&dir).unwrap_err();
    assert!(err.to_string().contains("the file is corrupt or not the canonical one"), "{err}");
    match err {
        DataError::Checksum { file, expected, .. } => {
            assert!(file.contains("train-labels"), "{file}");
            assert_eq!(expected, MNIST_SHA256[1]);
        }
        other => panic!("{other:?}"),
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_subset_of_mnist_trains_as_a_custom_set_from_a_named_folder_but_not_in_the_managed_one() {
    let dir = copy_mnist("mnist-subset");
    cut_training_set(&dir, 3000);
    let d = dataset::load(Some(&dir)).unwrap();
    assert_eq!((d.name.as_str(), d.n_train(), d.n_test(), d.is_known()), ("custom", 3000, 10_000, false));
    // Its own checksums are recorded: the cut training files, MNIST's own test files.
    assert_ne!(d.files_sha256[0], MNIST_SHA256[0]);
    assert_eq!(d.files_sha256[2..], MNIST_SHA256[2..]);
    let meta = d.metadata_json();
    assert_eq!(meta["name"], "custom");
    assert_eq!(meta["sha256"]["train-images-idx3-ubyte"], d.files_sha256[0].as_str());
    assert_eq!(meta["folder"], dir.file_name().unwrap().to_str().unwrap());
    assert!(meta.get("classes").is_none(), "a custom set's labels have no names: {meta}");
    // The managed folder holds the canonical MNIST only.
    let err = dataset::load_managed(&dir).unwrap_err().to_string();
    assert!(err.contains("train-images") && err.contains("the file is corrupt or not the canonical one"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_synthetic_idx_set_trains_as_a_custom_set() {
    let dir = common::temp_dir("synthetic-set");
    // 10x12 images (not 28x28) of a pattern, with all ten labels.
    let img = |n: usize| idx::encode_images(n, 10, 12, &(0..n * 120).map(|i| (i * 37 % 251) as u8).collect::<Vec<_>>());
    fs::write(dir.join("train-images-idx3-ubyte"), img(50)).unwrap();
    fs::write(dir.join("train-labels-idx1-ubyte"), idx::encode_labels(&(0..50).map(|i| (i % 10) as u8).collect::<Vec<_>>())).unwrap();
    fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gzip(&img(20))).unwrap();
    fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gzip(&idx::encode_labels(&[3; 20]))).unwrap();
    let d = dataset::load(Some(&dir)).unwrap();
    assert_eq!((d.name.as_str(), d.n_train(), d.n_test(), d.rows, d.cols), ("custom", 50, 20, 10, 12));
    assert_eq!(d.files_sha256[0], dataset::sha256_hex(&img(50)));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fashion_mnist_is_recognised_when_installed() {
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.join("train-images-idx3-ubyte.gz").exists() {
        eprintln!("skipped: Debian's dataset-fashion-mnist is not installed (tests/setup.sh installs it as root)");
        return;
    }
    let d = dataset::load_dir(dir).unwrap();
    assert_eq!((d.name.as_str(), d.n_train(), d.n_test()), ("fashion-mnist", 60_000, 10_000));
    // Every model trained from it records its legend, in label order.
    let legend = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    assert_eq!(d.metadata_json()["classes"], serde_json::json!(legend));
}

#[test]
fn download_fetches_verifies_and_writes_the_files() {
    let server = http::serve(http::mnist_files(&common::mnist_dir(), "mnist/"), 8);
    let dir = common::temp_dir("download");
    // A mirror that is down comes first; the second one serves.
    let mirrors = vec!["http://127.0.0.1:9/".to_string(), format!("{}mnist/", server.base)];
    dataset::download(&dir, &FILES, &mirrors).unwrap();
    let d = dataset::load_dir(&dir).unwrap();
    assert_eq!((d.name.as_str(), d.n_train()), ("mnist", 60_000));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_download_with_the_wrong_content_is_refused_and_leaves_nothing() {
    let fake = gzip(&idx::encode_labels(&[1, 2, 3]));
    let server = http::serve(vec![("train-labels-idx1-ubyte.gz".into(), fake)], 2);
    let dir = common::temp_dir("bad-download");
    let err = dataset::download(&dir, &["train-labels-idx1-ubyte"], std::slice::from_ref(&server.base)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("sha256") && msg.contains("--data"), "{msg}");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "a rejected download left a file behind");
    // A 404 is reported too.
    let err = dataset::download(&dir, &["t10k-labels-idx1-ubyte"], std::slice::from_ref(&server.base)).unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

/// The shipped subsets are the first N images of each class, in the set's order, byte for byte:
/// chosen again here by counting labels, independently of `testset`. The test subsets take 200
/// test images per class; the Train panel's training subsets (gzip) 1,000 training images.
#[test]
fn the_shipped_subsets_are_the_first_images_of_each_class() {
    let fashion = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    let fashion_data = fashion.join("t10k-images-idx3-ubyte.gz").exists().then(|| dataset::load_dir(fashion).unwrap());
    let mut sets =
        vec![("models/testset-mnist.safetensors", common::mnist(), false), ("data/train-mnist.safetensors.gz", common::mnist(), true)];
    if let Some(f) = &fashion_data {
        sets.push(("models/testset-fashion-mnist.safetensors", f, false));
        sets.push(("data/train-fashion-mnist.safetensors.gz", f, true));
    }
    for (file, d, train) in sets {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www").join(file);
        let set = latent_explorer::testset::from_bytes(&fs::read(&path).unwrap()).unwrap();
        let (all_images, all_labels, per_class, files) =
            if train { (&d.train_images, &d.train_labels, 1000, 0..2) } else { (&d.test_images, &d.test_labels, 200, 2..4) };
        let (mut images, mut labels, mut seen) = (Vec::new(), Vec::new(), [0usize; 10]);
        for (i, &l) in all_labels.iter().enumerate() {
            if seen[l as usize] < per_class {
                seen[l as usize] += 1;
                images.extend_from_slice(&all_images[i * 784..(i + 1) * 784]);
                labels.push(l);
            }
        }
        assert_eq!(labels.len(), 10 * per_class, "{file}");
        assert_eq!(set.labels, labels, "{file}: labels");
        assert!(set.images == images, "{file}: the images differ from the chosen images");
        assert_eq!(set.dataset, d.name, "{file}");
        assert_eq!(serde_json::json!(set.classes), d.metadata_json()["classes"], "{file}");
        let source: Vec<(String, String)> = files.map(|f| (FILES[f].to_string(), d.files_sha256[f].clone())).collect();
        assert_eq!(set.source_sha256, source, "{file}");
    }
}
