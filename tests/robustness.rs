//! Robustness of everything that parses bytes a user or a file controls, on stable Rust:
//! the fuzz corpus (tests/fuzz/corpus) replayed through the fuzz targets' own checks, and
//! property tests that mutate valid inputs (the shipped model and test subset, IDX files raw and gzipped, a
//! checkpoint, pictures) thousands of times. Never a panic; every failure a specific error;
//! every success internally consistent. Plus one regression test per bug the fuzzers found.

#[path = "fuzz/checks.rs"]
mod checks;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use latent_explorer::error::{DataError, ModelError};
use latent_explorer::idx;
use latent_explorer::preprocess::{self, PreprocessError};
use latent_explorer::train::adam::Adam;
use latent_explorer::train::backprop::LossSums;
use latent_explorer::train::{checkpoint, EpochRecord, LrSchedule, TrainConfig, TrainState};
use latent_explorer::weights::{self, Embedding, StorageDtype};
use latent_explorer::{Architecture, Vae};
use proptest::prelude::*;
use safetensors::tensor::{Dtype, TensorView};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// Valid inputs: the seeds of the fuzz corpus and the starting points of the mutations.

fn tiny_arch() -> Architecture {
    Architecture::mirrored(16, &[3], 2)
}

fn tiny_embedding(n: usize) -> Embedding {
    Embedding { mu: (0..2 * n).map(|i| i as f32 * 0.5 - 1.0).collect(), labels: (0..n).map(|i| (i % 10) as u8).collect() }
}

fn tiny_model(embedding: bool, dtype: StorageDtype) -> Vec<u8> {
    let vae = Vae::init(tiny_arch(), 3).unwrap();
    let e = tiny_embedding(3);
    weights::to_bytes(&vae, embedding.then_some(&e), &BTreeMap::new(), dtype, Vec::new()).unwrap()
}

/// A model as another tool writes it: no metadata, so the loader infers the architecture.
fn tiny_model_without_metadata() -> Vec<u8> {
    let vae = Vae::init(Architecture::mirrored(16, &[], 2), 4).unwrap();
    let mut offset = 0;
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vae
        .arch()
        .tensor_shapes()
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let bytes = weights::f32_bytes(&vae.params()[offset..offset + n]);
            offset += n;
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(String, TensorView)> =
        tensors.iter().map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, None::<HashMap<String, String>>).unwrap()
}

fn tiny_state() -> TrainState {
    let arch = tiny_arch();
    let vae = Vae::init(arch.clone(), 5).unwrap();
    let n = vae.params().len();
    let mut adam = Adam::new(n, 1e-3);
    adam.m = (0..n).map(|i| (i as f32 * 0.37).sin() * 1e-3).collect();
    adam.v = (0..n).map(|i| (i as f32 * 0.11).cos().abs() * 1e-6).collect();
    adam.t = 7;
    let record = EpochRecord {
        epoch: 1,
        train_neg_elbo: 200.0,
        train_reconstruction: 190.0,
        train_kl: 10.0,
        test_neg_elbo: 201.0,
        test_reconstruction: 191.0,
        test_kl: 10.0,
        seconds: 1.5,
        examples_per_second: 1000.0,
    };
    TrainState {
        config: TrainConfig {
            arch,
            epochs: 3,
            batch_size: 4,
            lr: 1e-3,
            beta: 1.0,
            seed: 1,
            threads: 1,
            iw_samples: 2,
            limit: Some(20),
            schedule: LrSchedule::Cosine { floor: 0.01 },
        },
        vae,
        adam,
        epoch: 1,
        batch: 2,
        epoch_sums: LossSums { reconstruction: 12.5, kl: 1.25 },
        epoch_examples: 8,
        epoch_seconds: 0.5,
        train_seconds: 2.0,
        history: vec![record],
        dataset_sha256: "ab".repeat(32),
    }
}

/// The bytes `checkpoint::save` writes for `st`.
fn checkpoint_bytes(st: &TrainState) -> Vec<u8> {
    static N: Mutex<u32> = Mutex::new(0);
    let k = {
        let mut n = N.lock().unwrap();
        *n += 1;
        *n
    };
    let path = std::env::temp_dir().join(format!("latent-explorer-robustness-{}-{k}.ckpt", std::process::id()));
    checkpoint::save(&path, st).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

fn tiny_checkpoint() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| checkpoint_bytes(&tiny_state()))
}

fn idx_images() -> Vec<u8> {
    let (count, rows, cols) = (3, 4, 5);
    let pixels: Vec<u8> = (0..count * rows * cols).map(|i| (i * 37 % 256) as u8).collect();
    idx::encode_images(count, rows, cols, &pixels)
}

fn idx_labels() -> Vec<u8> {
    idx::encode_labels(&[7, 2, 1, 0, 4])
}

/// A picture of a bar, dark on light, as the fuzz target's input (mode, width, height, RGBA).
fn picture(width: u32, height: u32) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend(width.to_le_bytes());
    out.extend(height.to_le_bytes());
    for y in 0..height {
        for x in 0..width {
            let ink = x == width / 2 && y > 0 && y + 1 < height;
            let v = if ink { 10 } else { 250 };
            out.extend([v, v, v, 255]);
        }
    }
    out
}

/// The same as grey levels for `to_mnist` (mode bit 7).
fn grey_picture(width: u32, height: u32) -> Vec<u8> {
    let mut out = vec![0x80u8];
    out.extend(width.to_le_bytes());
    out.extend(height.to_le_bytes());
    for y in 0..height {
        for x in 0..width {
            let v: f32 = if y == height / 2 && x > 0 { 0.0 } else { 1.0 };
            out.extend(v.to_le_bytes());
        }
    }
    out
}

fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let with_mode = |mode: u8, bytes: Vec<u8>| [vec![mode], bytes].concat();
    vec![
        ("model_from_bytes", "tiny-f32", tiny_model(false, StorageDtype::F32)),
        ("model_from_bytes", "tiny-f32-embedding", tiny_model(true, StorageDtype::F32)),
        ("model_from_bytes", "tiny-f16-embedding", tiny_model(true, StorageDtype::F16)),
        ("model_from_bytes", "tiny-no-metadata", tiny_model_without_metadata()),
        ("checkpoint", "tiny", tiny_checkpoint().to_vec()),
        ("idx", "images-raw", with_mode(0, idx_images())),
        ("idx", "images-gzip-wrapped", with_mode(1, idx_images())),
        ("idx", "labels-raw", with_mode(2, idx_labels())),
        ("idx", "labels-gzip-wrapped", with_mode(3, idx_labels())),
        ("idx", "images-gzip-file", with_mode(0, checks::gzip(&idx_images()))),
        ("idx", "labels-gzip-file", with_mode(2, checks::gzip(&idx_labels()))),
        ("preprocess", "bar-9x7", picture(9, 7)),
        ("preprocess", "bar-3x30", picture(3, 30)),
        ("preprocess", "grey-8x6", grey_picture(8, 6)),
    ]
}

/// Writes the seed corpora: `cargo test --release --test robustness -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    for (target, name, bytes) in seeds() {
        let dir = root().join("tests/fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

#[test]
fn the_seeds_are_valid() {
    for (target, name, bytes) in seeds() {
        let outcome = run_target(target, &bytes);
        assert_eq!(outcome, "ok", "seed {target}/{name}");
    }
}

fn run_target(target: &str, data: &[u8]) -> &'static str {
    match target {
        "model_from_bytes" => checks::model(data),
        "checkpoint" => checks::checkpoint(data),
        "idx" => checks::idx(data),
        "preprocess" => checks::preprocess(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The committed corpus, replayed.

#[test]
fn the_fuzz_corpus_replays_without_a_panic() {
    let corpus = root().join("tests/fuzz/corpus");
    let mut total = 0;
    for target in ["model_from_bytes", "checkpoint", "idx", "preprocess"] {
        let dir = corpus.join(target);
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
        files.sort();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        let mut outcomes = BTreeMap::new();
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let outcome = std::panic::catch_unwind(|| run_target(target, &bytes)).unwrap_or_else(|_| panic!("{} panics", f.display()));
            *outcomes.entry(outcome).or_insert(0) += 1;
        }
        eprintln!("corpus {target}: {} files, outcomes {outcomes:?}", files.len());
        total += files.len();
    }
    assert!(total > 0);
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// One edit of a byte string. Positions are fractions of the length (as u32 / 2^32), and
/// `header` picks the file's header region (where a parser's decisions are made) rather than
/// the whole file.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit {
        header: bool,
        at: u32,
        bit: u8,
    },
    SetByte {
        header: bool,
        at: u32,
        value: u8,
    },
    Truncate {
        at: u32,
    },
    Insert {
        header: bool,
        at: u32,
        bytes: Vec<u8>,
    },
    Delete {
        header: bool,
        at: u32,
        n: u8,
    },
    /// Replaces the k-th decimal number in the header (a safetensors JSON header) or the k-th
    /// big-endian u32 field (an IDX header) by an interesting value.
    Number {
        k: u8,
        value: u64,
    },
}

fn interesting() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(2),
        Just(255),
        Just(u32::MAX as u64),
        Just(1 << 32),
        Just(u64::MAX),
        Just(1 << 62),
        0u64..1000,
        any::<u64>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<bool>(), any::<u32>(), 0u8..8).prop_map(|(header, at, bit)| Mutation::FlipBit { header, at, bit }),
        3 => (any::<bool>(), any::<u32>(), any::<u8>()).prop_map(|(header, at, value)| Mutation::SetByte { header, at, value }),
        1 => any::<u32>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<bool>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(header, at, bytes)| Mutation::Insert { header, at, bytes }),
        1 => (any::<bool>(), any::<u32>(), 1u8..16).prop_map(|(header, at, n)| Mutation::Delete { header, at, n }),
        4 => (any::<u8>(), interesting()).prop_map(|(k, value)| Mutation::Number { k, value }),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..4)
}

#[derive(Clone, Copy)]
enum Layout {
    /// safetensors: u64 header length, then a JSON header.
    Safetensors,
    /// IDX: u32 magic then u32 dimensions (`n` of them).
    Idx(usize),
}

impl Layout {
    fn header_len(self, b: &[u8]) -> usize {
        let n = match self {
            Layout::Safetensors => {
                let len = b.get(..8).map_or(0, |h| u64::from_le_bytes(h.try_into().unwrap()));
                8 + len.min(b.len() as u64) as usize
            }
            Layout::Idx(n) => 4 + 4 * n,
        };
        n.min(b.len())
    }
}

fn position(at: u32, len: usize) -> usize {
    ((at as u64 * len as u64) >> 32) as usize
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation, layout: Layout) {
    let region = |header: bool, b: &Vec<u8>| if header { layout.header_len(b).max(1) } else { b.len().max(1) };
    match m {
        Mutation::FlipBit { header, at, bit } => {
            let i = position(*at, region(*header, bytes));
            if let Some(b) = bytes.get_mut(i) {
                *b ^= 1 << bit;
            }
        }
        Mutation::SetByte { header, at, value } => {
            let i = position(*at, region(*header, bytes));
            if let Some(b) = bytes.get_mut(i) {
                *b = *value;
            }
        }
        Mutation::Truncate { at } => bytes.truncate(position(*at, bytes.len())),
        Mutation::Insert { header, at, bytes: new } => {
            let i = position(*at, region(*header, bytes)).min(bytes.len());
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Delete { header, at, n } => {
            let i = position(*at, region(*header, bytes)).min(bytes.len());
            let j = (i + *n as usize).min(bytes.len());
            bytes.drain(i..j);
        }
        Mutation::Number { k, value } => match layout {
            Layout::Safetensors => {
                let end = layout.header_len(bytes);
                let mut numbers = Vec::new();
                let mut i = 8.min(end);
                while i < end {
                    if bytes[i].is_ascii_digit() {
                        let s = i;
                        while i < end && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                        numbers.push(s..i);
                    } else {
                        i += 1;
                    }
                }
                if numbers.is_empty() {
                    return;
                }
                let r = numbers[*k as usize % numbers.len()].clone();
                let old: u64 = std::str::from_utf8(&bytes[r.clone()]).unwrap().parse().unwrap_or(0);
                // Near the old value half of the time: off-by-one offsets and shapes.
                let new = match value % 4 {
                    0 => old.wrapping_add(1),
                    1 => old.saturating_sub(1),
                    _ => *value,
                };
                let new_len = new.to_string().len() as i64 - r.len() as i64;
                bytes.splice(r, new.to_string().into_bytes());
                // Keep the declared header length right, so the edit reaches the JSON parser.
                if bytes.len() >= 8 {
                    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as i64 + new_len;
                    bytes[..8].copy_from_slice(&(len.max(0) as u64).to_le_bytes());
                }
            }
            Layout::Idx(n) => {
                let field = 1 + *k as usize % n;
                let at = 4 * field;
                if bytes.len() >= at + 4 {
                    let old = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
                    let new = match value % 4 {
                        0 => old.wrapping_add(1),
                        1 => old.wrapping_sub(1),
                        _ => *value as u32,
                    };
                    bytes[at..at + 4].copy_from_slice(&new.to_be_bytes());
                }
            }
        },
    }
}

fn mutated(base: &[u8], muts: &[Mutation], layout: Layout) -> Vec<u8> {
    let mut b = base.to_vec();
    for m in muts {
        apply(&mut b, m, layout);
    }
    b
}

fn shipped_model() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| std::fs::read(root().join("www/models/mnist-2d.safetensors")).expect("the shipped model"))
}

/// Runs a property over `cases` random inputs (shrinking a failure, a panic included, to a
/// minimal input), and prints how often each outcome came up (`-- --nocapture`) to show that
/// the mutations reach past the first check.
fn property<S: Strategy>(name: &str, cases: u32, strategy: S, f: impl Fn(S::Value) -> &'static str) {
    let counts = std::cell::RefCell::new(BTreeMap::<&'static str, usize>::new());
    let mut runner =
        proptest::test_runner::TestRunner::new(ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() });
    let t = std::time::Instant::now();
    let result = runner.run(&strategy, |v| {
        *counts.borrow_mut().entry(f(v)).or_insert(0) += 1;
        Ok(())
    });
    eprintln!("{name}: {cases} cases in {:.2} s, outcomes {:?}", t.elapsed().as_secs_f64(), counts.borrow());
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

#[test]
fn the_shipped_model_mutated_loads_or_fails_specifically() {
    property("shipped model", 2000, mutations(), |muts| checks::model(&mutated(shipped_model(), &muts, Layout::Safetensors)));
}

#[test]
fn tiny_models_mutated_load_or_fail_specifically() {
    let bases = [
        tiny_model(false, StorageDtype::F32),
        tiny_model(true, StorageDtype::F32),
        tiny_model(true, StorageDtype::F16),
        tiny_model_without_metadata(),
    ];
    property("tiny models", 5000, (mutations(), 0usize..4), |(muts, which)| {
        checks::model(&mutated(&bases[which], &muts, Layout::Safetensors))
    });
}

#[test]
fn a_checkpoint_mutated_loads_or_fails_specifically() {
    property("checkpoint", 5000, mutations(), |muts| checks::checkpoint(&mutated(tiny_checkpoint(), &muts, Layout::Safetensors)));
}

/// The page parses the shipped test subsets (`testset::from_bytes`): mutated, they load with
/// every label naming a class and one image per label, or fail with a reading error.
#[test]
fn the_shipped_test_subset_mutated_loads_or_fails_specifically() {
    use latent_explorer::testset::{self, TestSetError};
    let base = std::fs::read(root().join("www/models/testset-mnist.safetensors")).expect("the shipped test subset");
    property("test subset", 5000, mutations(), |muts| match testset::from_bytes(&mutated(&base, &muts, Layout::Safetensors)) {
        Ok(set) => {
            assert_eq!(set.images.len(), set.labels.len() * testset::PIXELS);
            assert!(set.labels.iter().all(|&l| (l as usize) < set.classes.len()), "a label without a class loaded");
            "ok"
        }
        Err(e) => {
            assert!(!e.to_string().trim().is_empty());
            match e {
                TestSetError::Format(_) => "format",
                TestSetError::MissingTensor(_) | TestSetError::UnexpectedTensor(_) => "tensor names",
                TestSetError::DType { .. } | TestSetError::Shape { .. } => "dtype or shape",
                TestSetError::Metadata { .. } => "metadata",
                TestSetError::Label { .. } => "label",
                other => panic!("reading a file gave a selection error: {other}"),
            }
        }
    });
}

#[test]
fn idx_files_mutated_parse_or_fail_specifically() {
    property("idx", 5000, (mutations(), any::<bool>(), 0u8..3), |(muts, labels, gz)| {
        let (base, layout) = if labels { (idx_labels(), Layout::Idx(1)) } else { (idx_images(), Layout::Idx(3)) };
        let bytes = match gz {
            // Raw, mutated.
            0 => mutated(&base, &muts, layout),
            // Mutated, then gzipped: a valid stream of damaged content.
            1 => checks::gzip(&mutated(&base, &muts, layout)),
            // Gzipped, then mutated: a damaged stream (its 10-byte header counts as the header).
            _ => mutated(&checks::gzip(&base), &muts, Layout::Idx(2)),
        };
        checks::idx_bytes(bytes, labels)
    });
}

#[test]
fn pictures_of_any_size_preprocess_or_fail_specifically() {
    let size = || prop_oneof![12 => 1usize..40, 1 => Just(0usize), 1 => Just(usize::MAX), 1 => Just(1usize << 32), 1 => Just(4097usize), 1 => any::<usize>()];
    let extra = prop_oneof![3 => Just(0i64), 1 => -8i64..8];
    property("preprocess", 5000, (size(), size(), extra, any::<bool>(), any::<u64>()), |(width, height, extra, grey, seed)| {
        // A body of the right length give or take `extra` bytes, when that length is small.
        let n = width.checked_mul(height).filter(|&n| n <= 4096).map_or(64, |n| n * 4);
        let len = (n as i64 + extra).max(0) as usize;
        let mut s = seed;
        let body: Vec<u8> = (0..len)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Grey levels: mostly valid f32 in [0, 1) (exponent byte < 0x3f), sometimes not.
                if grey && i % 4 == 3 && s >> 63 == 0 {
                    (s >> 58) as u8 & 0x3e
                } else {
                    (s >> 56) as u8
                }
            })
            .collect();
        checks::preprocess_sized(if grey { 0x80 } else { 0 }, width, height, &body)
    });
}

// ---------------------------------------------------------------------------------------------
// Regression tests, one per fix.

/// A stream that inflates far beyond what its header promises is refused after reading one
/// byte past the promise, not inflated to the end.
#[test]
fn a_gzip_bomb_is_refused_without_inflating_it() {
    let mut content = idx::encode_labels(&[1, 2, 3]);
    content.extend(std::iter::repeat_n(0u8, 50 << 20));
    let gz = checks::gzip(&content);
    assert!(gz.len() < 1 << 20);
    let t = std::time::Instant::now();
    let err = idx::maybe_gunzip("bomb.gz", gz).unwrap_err();
    assert!(matches!(err, DataError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("more than the 11 bytes its header describes"), "{err}");
    assert!(t.elapsed().as_secs_f64() < 0.1, "the stream was inflated: {:?}", t.elapsed());
}

#[test]
fn a_gzip_header_promising_gigabytes_is_refused() {
    let gz = checks::gzip(&idx::encode_images(60_000, 2000, 2000, &[]));
    let err = idx::maybe_gunzip("huge.gz", gz).unwrap_err().to_string();
    assert!(err.contains("huge.gz") && err.contains("more than 1 GiB"), "{err}");
    // A legitimate gzipped file still round-trips.
    let raw = idx_images();
    assert_eq!(idx::maybe_gunzip("x.gz", checks::gzip(&raw)).unwrap(), raw);
    // And a truncated stream names the file and says so.
    let gz = checks::gzip(&raw);
    let err = idx::maybe_gunzip("t.gz", gz[..gz.len() - 12].to_vec()).unwrap_err().to_string();
    assert!(err.starts_with("t.gz: ") && err.contains("gzip"), "{err}");
}

/// Architecture metadata whose parameter count overflows is an error, not an overflow panic.
#[test]
fn an_architecture_whose_size_overflows_is_an_error() {
    let json = format!(
        r#"{{"input":{},"encoder_hidden":[{}],"latent":2,"decoder_hidden":[3],"hidden_activation":"relu","output_activation":"sigmoid"}}"#,
        usize::MAX / 2,
        usize::MAX / 2
    );
    let file = with_architecture(&json);
    let err = weights::from_bytes(&file).unwrap_err();
    assert!(matches!(&err, ModelError::Metadata { key, reason } if key == "architecture" && reason.contains("overflow")), "{err}");
}

/// A few bytes claiming a model of ~10^9 parameters fail on the first tensor's shape without
/// first allocating gigabytes for the parameters.
#[test]
fn a_tiny_file_claiming_a_huge_model_is_an_error() {
    let json = r#"{"input":30000,"encoder_hidden":[30000],"latent":2,"decoder_hidden":[2],"hidden_activation":"relu","output_activation":"sigmoid"}"#;
    let err = weights::from_bytes(&with_architecture(json)).unwrap_err();
    assert!(matches!(&err, ModelError::Shape { name, .. } if name == "encoder.0.weight"), "{err}");
}

/// The tiny f32 model with its `architecture` metadata replaced.
fn with_architecture(json: &str) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(shipped_tiny()).unwrap();
    let views: Vec<(String, TensorView)> = st.tensors().into_iter().collect();
    let meta = HashMap::from([("architecture".to_string(), json.to_string())]);
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn shipped_tiny() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| tiny_model(false, StorageDtype::F32))
}

#[test]
fn preprocess_sizes_that_overflow_or_do_not_match_are_specific_errors() {
    assert_eq!(preprocess::to_mnist(&[0.5; 4], usize::MAX, 2), Err(PreprocessError::TooLarge { width: usize::MAX, height: 2 }));
    assert!(matches!(preprocess::rgba_to_mnist(&[], usize::MAX, usize::MAX), Err(PreprocessError::TooLarge { .. })));
    assert!(matches!(preprocess::rgba_to_mnist(&[], 1 << 33, 1 << 31), Err(PreprocessError::TooLarge { .. })));
    assert_eq!(preprocess::to_mnist(&[0.5; 5], 2, 2), Err(PreprocessError::BadGreyLength { width: 2, height: 2, found: 5 }));
    let err = preprocess::to_mnist(&[1.0, f32::NAN, 0.0, 1.0], 2, 2).unwrap_err();
    assert!(matches!(err, PreprocessError::BadGrey { index: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("pixel 1"), "{err}");
}

#[test]
fn a_checkpoint_that_cannot_be_resumed_is_refused_naming_the_field() {
    assert!(checkpoint::from_bytes(tiny_checkpoint()).is_ok());
    let mut st = tiny_state();
    st.config.batch_size = 0;
    let err = checkpoint::from_bytes(&checkpoint_bytes(&st)).unwrap_err().to_string();
    assert!(err.contains("batch_size is 0"), "{err}");
    let mut st = tiny_state();
    st.adam.v[5] = -1.0;
    let err = checkpoint::from_bytes(&checkpoint_bytes(&st)).unwrap_err().to_string();
    assert!(err.contains("adam.v.") && err.contains("negative") && err.contains("element"), "{err}");
    let mut st = tiny_state();
    st.config.threads = 1 << 40;
    let err = checkpoint::from_bytes(&checkpoint_bytes(&st)).unwrap_err().to_string();
    assert!(err.contains("config.threads is 1099511627776"), "{err}");
    let mut st = tiny_state();
    st.adam.eps = 0.0;
    let err = checkpoint::from_bytes(&checkpoint_bytes(&st)).unwrap_err().to_string();
    assert!(err.contains("adam_eps"), "{err}");
    // A model file is not a checkpoint, and the file reader names the file.
    let err = checkpoint::from_bytes(shipped_tiny()).unwrap_err().to_string();
    assert!(err.contains("not a training checkpoint"), "{err}");
    let path = std::env::temp_dir().join(format!("latent-explorer-robustness-model-{}.ckpt", std::process::id()));
    std::fs::write(&path, shipped_tiny()).unwrap();
    let err = checkpoint::load(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(err.contains(&path.display().to_string()) && err.contains("not a training checkpoint"), "{err}");
    assert!(checkpoint::load(Path::new("/nonexistent/x.ckpt")).unwrap_err().to_string().contains("/nonexistent/x.ckpt"));
}
