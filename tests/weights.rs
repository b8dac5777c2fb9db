//! The model file: exact round trips, a specific error for each kind of damage, files from
//! other tools, and the shipped model.

mod common;

use std::collections::{BTreeMap, HashMap};

use latent_explorer::error::ModelError;
use latent_explorer::weights::{self, Embedding, StorageDtype};
use latent_explorer::{Architecture, Vae};
use safetensors::tensor::{Dtype, TensorView};

fn tiny() -> Vae {
    Vae::init(Architecture::mirrored(12, &[7, 5], 2), 9).unwrap()
}

fn embedding(n: usize) -> Embedding {
    Embedding { mu: (0..2 * n).map(|i| i as f32 * 0.25 - 3.0).collect(), labels: (0..n).map(|i| (i % 10) as u8).collect() }
}

fn good_bytes() -> Vec<u8> {
    let mut meta = BTreeMap::new();
    meta.insert("seed".to_string(), "9".to_string());
    weights::to_bytes(&tiny(), Some(&embedding(5)), &meta, StorageDtype::F32, Vec::new()).unwrap()
}

/// Writes raw tensors (name, dtype, shape, bytes) with the given metadata, like another tool would.
fn raw_file(tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>, meta: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, TensorView)> =
        tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, meta).unwrap()
}

/// The tiny model's tensors as raw f32 entries, for editing one of them.
fn tiny_tensors() -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let vae = tiny();
    let mut off = 0;
    vae.arch()
        .tensor_shapes()
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let bytes = weights::f32_bytes(&vae.params()[off..off + n]);
            off += n;
            (name, Dtype::F32, shape, bytes)
        })
        .collect()
}

fn tiny_meta() -> Option<HashMap<String, String>> {
    Some(HashMap::from([("architecture".to_string(), weights::architecture_json(tiny().arch()))]))
}

fn load_err(bytes: &[u8]) -> ModelError {
    weights::from_bytes(bytes).expect_err("damaged file must not load")
}

#[test]
fn f32_round_trip_is_exact() {
    let file = weights::from_bytes(&good_bytes()).unwrap();
    let vae = tiny();
    assert_eq!(file.vae.arch(), vae.arch());
    assert_eq!(file.vae.params(), vae.params());
    assert_eq!(file.embedding, Some(embedding(5)));
    assert_eq!(file.metadata["seed"], "9");
    assert_eq!(file.metadata["format"], "latent-explorer");
}

#[test]
fn f16_storage_halves_the_size_and_stays_close() {
    // Big enough that the tensors, not the JSON header, dominate the size.
    let vae = Vae::init(Architecture::mirrored(784, &[64], 2), 1).unwrap();
    let half = weights::to_bytes(&vae, None, &BTreeMap::new(), StorageDtype::F16, Vec::new()).unwrap();
    let full = weights::to_bytes(&vae, None, &BTreeMap::new(), StorageDtype::F32, Vec::new()).unwrap();
    assert!(half.len() < full.len() * 6 / 10);
    let back = weights::from_bytes(&half).unwrap();
    for (a, b) in back.vae.params().iter().zip(vae.params()) {
        assert!((a - b).abs() <= b.abs() * 1e-3 + 1e-7);
    }
}

#[test]
fn a_pytorch_state_dict_without_metadata_is_understood() {
    let file = weights::from_bytes(&raw_file(tiny_tensors(), None)).unwrap();
    assert_eq!(file.vae.arch(), tiny().arch());
    assert_eq!(file.vae.params(), tiny().params());
    assert!(file.embedding.is_none());
}

/// Without metadata, a file with no `encoder.logvar` tensors is an autoencoder (a VAE would be
/// refused for the missing tensors).
#[test]
fn a_state_dict_without_a_logvar_head_is_an_autoencoder() {
    let mut t = tiny_tensors();
    t.retain(|(n, ..)| !n.starts_with("encoder.logvar"));
    let file = weights::from_bytes(&raw_file(t, None)).unwrap();
    assert_eq!(file.vae.arch().kind, latent_explorer::ModelKind::Ae);
    assert!(file.vae.encode(&vec![0.5; file.vae.arch().input]).unwrap().logvar.is_none());
}

#[test]
fn truncated_and_non_safetensors_files_are_format_errors() {
    let good = good_bytes();
    for (what, bytes) in [
        ("empty", vec![]),
        ("five bytes", good[..5].to_vec()),
        ("cut in the header", good[..40].to_vec()),
        ("cut in the data", good[..good.len() - 100].to_vec()),
        ("trailing bytes", [good.clone(), vec![0u8; 8]].concat()),
        ("a PNG", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10".to_vec()),
    ] {
        match load_err(&bytes) {
            ModelError::Format(msg) => assert!(!msg.is_empty(), "{what}"),
            other => panic!("{what}: expected a format error, got {other:?}"),
        }
    }
    // A header that is not JSON.
    let mut bad = 10u64.to_le_bytes().to_vec();
    bad.extend_from_slice(b"{not json}");
    assert!(matches!(load_err(&bad), ModelError::Format(_)));
}

#[test]
fn a_missing_tensor_is_named() {
    let mut t = tiny_tensors();
    t.retain(|(n, ..)| n != "decoder.out.bias");
    match load_err(&raw_file(t, tiny_meta())) {
        ModelError::MissingTensor(name) => assert_eq!(name, "decoder.out.bias"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wrong_shape_names_the_tensor_and_both_shapes() {
    let mut t = tiny_tensors();
    let e = t.iter_mut().find(|(n, ..)| n == "encoder.1.weight").unwrap();
    e.2 = vec![7, 5]; // transposed: [in, out] instead of [out, in]
    let err = load_err(&raw_file(t, tiny_meta()));
    match &err {
        ModelError::Shape { name, expected, found } => {
            assert_eq!((name.as_str(), expected.as_slice(), found.as_slice()), ("encoder.1.weight", &[5, 7][..], &[7, 5][..]))
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("encoder.1.weight"));
}

#[test]
fn a_wrong_dtype_is_named() {
    let mut t = tiny_tensors();
    let e = t.iter_mut().find(|(n, ..)| n == "decoder.0.bias").unwrap();
    e.1 = Dtype::I32;
    match load_err(&raw_file(t, tiny_meta())) {
        ModelError::DType { name, found, .. } => assert_eq!((name.as_str(), found.as_str()), ("decoder.0.bias", "I32")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_finite_values_are_named_with_their_index() {
    let mut t = tiny_tensors();
    let e = t.iter_mut().find(|(n, ..)| n == "encoder.mu.weight").unwrap();
    e.3[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
    match load_err(&raw_file(t, tiny_meta())) {
        ModelError::NonFinite { name, index, .. } => assert_eq!((name.as_str(), index), ("encoder.mu.weight", 3)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unexpected_tensors_and_bad_metadata_are_rejected() {
    let mut t = tiny_tensors();
    t.push(("decoder.2.weight".into(), Dtype::F32, vec![1], vec![0; 4]));
    assert!(matches!(load_err(&raw_file(t, tiny_meta())), ModelError::UnexpectedTensor(n) if n == "decoder.2.weight"));

    let meta = Some(HashMap::from([("architecture".to_string(), "{\"input\": 12}".to_string())]));
    assert!(matches!(load_err(&raw_file(tiny_tensors(), meta)), ModelError::Metadata { key, .. } if key == "architecture"));

    // Metadata describing another model than the tensors hold.
    let other = Architecture::mirrored(12, &[7, 6], 2);
    let meta = Some(HashMap::from([("architecture".to_string(), weights::architecture_json(&other))]));
    assert!(matches!(load_err(&raw_file(tiny_tensors(), meta)), ModelError::Shape { name, .. } if name == "encoder.1.weight"));
}

#[test]
fn a_half_embedding_is_an_error() {
    let mut t = tiny_tensors();
    t.push(("embedding.mu".into(), Dtype::F32, vec![3, 2], vec![0; 24]));
    assert!(matches!(load_err(&raw_file(t.clone(), tiny_meta())), ModelError::MissingTensor(n) if n == "embedding.label"));
    t.push(("embedding.label".into(), Dtype::U8, vec![4], vec![1; 4]));
    assert!(matches!(load_err(&raw_file(t, tiny_meta())), ModelError::Shape { name, .. } if name == "embedding.mu"));
}

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/mnist-2d.safetensors");

#[test]
fn the_shipped_model_loads_and_its_recorded_figures_reproduce() {
    let bytes = std::fs::read(SHIPPED).expect("the shipped model is in the repo");
    let file = weights::from_bytes(&bytes).unwrap();
    assert_eq!(file.vae.arch(), &Architecture::default());
    for key in [
        "architecture",
        "dataset",
        "epochs",
        "seed",
        "beta",
        "test_neg_elbo",
        "test_iw_bound",
        "iw_samples",
        "train_seconds",
        "crate_version",
    ] {
        assert!(file.metadata.contains_key(key), "metadata lacks {key}");
    }
    let dataset: serde_json::Value = serde_json::from_str(&file.metadata["dataset"]).unwrap();
    assert_eq!(dataset["name"], "mnist");
    assert_eq!(dataset["train_images_sha256"], latent_explorer::dataset::MNIST_SHA256[0]);

    let data = common::mnist();
    let recorded = file.metadata_f64("test_neg_elbo").unwrap();
    let measured = latent_explorer::train::evaluate::evaluate_elbo(&file.vae, &data.test_images);
    eprintln!("recorded test -ELBO {recorded}, measured {}", measured.neg_elbo);
    assert!((measured.neg_elbo - recorded).abs() < 0.5, "recorded {recorded}, measured {}", measured.neg_elbo);
    assert!(recorded <= 137.0, "the shipped model misses the 137.0 nats target: {recorded}");

    // The importance-weighted bound is a tighter bound on log p(x) than the ELBO.
    let iw = file.metadata_f64("test_iw_bound").unwrap();
    assert!(iw > -recorded && iw < 0.0, "IW bound {iw} vs ELBO {}", -recorded);

    // The embedding is the test set's encoder means, in test-set order.
    let emb = file.embedding.expect("the shipped model carries the latent plane");
    assert_eq!(emb.labels, data.test_labels);
    let x = latent_explorer::dataset::to_intensities(&data.test_images[..50 * 784]);
    let mu = file.vae.encode(&x).unwrap().mu;
    for (a, b) in mu.iter().zip(&emb.mu[..100]) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}
