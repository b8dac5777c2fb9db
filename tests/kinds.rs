//! The three model kinds (`train --kind vae|ae|pca`) end to end: each trains (tiny), is
//! written and loaded, and runs alike on the CPU reference and the WGSL shaders (lavapipe
//! natively); a PCA's components are the covariance's top eigenvectors; deterministic files
//! carry no log-variance tensors or KL figures; files from before kinds load as VAEs.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use latent_explorer::gpu::{EngineOptions, GpuEngine};
use latent_explorer::train::{trainer, LrSchedule, TrainConfig, Trainer};
use latent_explorer::weights::{self, StorageDtype};
use latent_explorer::{rng, Architecture, ModelKind, ReconstructionLoss, Vae};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/mnist-2d.safetensors");

fn config(arch: Architecture) -> TrainConfig {
    TrainConfig {
        arch,
        epochs: 1,
        batch_size: 32,
        lr: 1e-3,
        beta: 1.0,
        seed: 2,
        threads: 2,
        iw_samples: 4,
        limit: None,
        schedule: LrSchedule::Constant,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The tensor names a model file holds.
fn tensor_names(bytes: &[u8]) -> BTreeSet<String> {
    safetensors::SafeTensors::deserialize(bytes).unwrap().names().into_iter().map(str::to_string).collect()
}

/// Decode and encode of `vae` on the GPU equal the CPU reference within the parity tolerance
/// of tests/gpu.rs (1e-4), and the GPU encoding has log-variances exactly when the CPU's has.
fn gpu_matches_cpu(vae: &Vae, what: &str) {
    let e = pollster::block_on(GpuEngine::new(vae, EngineOptions::default()))
        .unwrap_or_else(|e| panic!("{e}: these tests need a wgpu adapter (Mesa lavapipe without a GPU; tests/setup.sh installs it)"));
    let (d, input) = (vae.arch().latent, vae.arch().input);
    let z: Vec<f32> = (0..9 * d).map(|i| 1.5 * rng::normal(4, (i / d) as u32, (i % d) as u32)).collect();
    let dd = max_abs_diff(&pollster::block_on(e.decode(&z)).unwrap(), &vae.decode(&z).unwrap());
    let x: Vec<f32> = (0..7 * input).map(|i| (rng::pcg3d(6, i as u32, 0)[0] >> 8) as f32 / 16_777_216.0).collect();
    let (gpu, cpu) = (pollster::block_on(e.encode(&x)).unwrap(), vae.encode(&x).unwrap());
    let dm = max_abs_diff(&gpu.mu, &cpu.mu);
    assert_eq!(gpu.logvar.is_some(), cpu.logvar.is_some(), "{what}: log-variances on one side only");
    let dl = gpu.logvar.zip(cpu.logvar).map_or(0.0, |(g, c)| max_abs_diff(&g, &c));
    eprintln!("{what}: max |gpu - cpu| decode {dd:.2e}, mu {dm:.2e}, logvar {dl:.2e}");
    assert!(dd <= 1e-4 && dm <= 1e-4 && dl <= 1e-4, "{what}: decode {dd}, mu {dm}, logvar {dl}");
}

#[test]
fn each_kind_trains_saves_loads_and_runs_alike_on_cpu_and_gpu() {
    let data = common::mnist_subset(300, 60);
    let dir = common::temp_dir("kinds");
    let ae = Architecture { kind: ModelKind::Ae, loss: ReconstructionLoss::Mse, ..Architecture::mirrored(784, &[24, 12], 2) };
    for arch in [Architecture::mirrored(784, &[24, 12], 2), ae, Architecture::pca(784, 3)] {
        let kind = arch.kind;
        let path = dir.join(format!("{}.safetensors", kind.name()));
        let trained = if kind == ModelKind::Pca {
            trainer::fit_pca(&config(arch.clone()), &data, &path, StorageDtype::F32).unwrap();
            None
        } else {
            let mut t = Trainer::new(config(arch.clone()), &data).unwrap();
            t.bench_steps(4).unwrap();
            t.finish(&path, StorageDtype::F32).unwrap();
            Some(t.state.vae.params().to_vec())
        };
        let bytes = fs::read(&path).unwrap();
        let file = weights::from_bytes(&bytes).unwrap();
        assert_eq!(file.vae.arch(), &arch, "{kind:?}: the file's architecture");
        if let Some(params) = trained {
            assert_eq!(file.vae.params(), &params[..], "{kind:?}: weights round trip");
        }
        // Deterministic kinds have no logvar tensors and no VAE figures; every kind has the rest.
        let logvar = tensor_names(&bytes).iter().any(|n| n.contains("logvar"));
        assert_eq!(logvar, kind == ModelKind::Vae, "{kind:?}: logvar tensors");
        for key in ["kind", "loss", "test_reconstruction", "test_mse", "prior_coverage"] {
            assert!(file.metadata_f64(key).is_some_and(f64::is_finite) || key == "kind" || key == "loss", "{kind:?}: {key}");
        }
        assert_eq!(file.metadata.get("kind").map(String::as_str), Some(kind.name()));
        for key in ["test_kl", "test_neg_elbo", "test_iw_bound"] {
            assert_eq!(file.metadata.contains_key(key), kind == ModelKind::Vae, "{kind:?}: {key}");
        }
        gpu_matches_cpu(&file.vae, kind.name());
    }
    let log = fs::read_to_string(dir.join("pca.train.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1, "a PCA's log is one line: {log}");
    let line: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert!(line["fit_seconds"].as_f64().is_some() && line["explained_variance"].as_array().map(Vec::len) == Some(3), "{line}");
    fs::remove_dir_all(&dir).unwrap();
}

/// Widths that are no multiple of 4 anywhere (the shader pads rows to vec4s), for the kinds
/// without a log-variance head: the packed heads hold the mean alone.
#[test]
fn deterministic_kinds_with_odd_widths_match_the_cpu_on_the_gpu() {
    let mut ae = Vae::init(Architecture { kind: ModelKind::Ae, ..Architecture::mirrored(25, &[13, 7], 3) }, 5).unwrap();
    ae.params_mut().iter_mut().for_each(|p| *p *= 3.0);
    gpu_matches_cpu(&ae, "ae 25-13-7-(3)");
    gpu_matches_cpu(&Vae::init(Architecture::pca(25, 3), 5).unwrap(), "pca 25-(3)");
}

/// The covariance in f64 by plain loops, and its top eigenvectors by power iteration with
/// deflation: independent of the GEMM and of `nalgebra`.
fn power_iteration_components(images: &[u8], input: usize, k: usize) -> Vec<Vec<f64>> {
    let n = images.len() / input;
    let x: Vec<f64> = images.iter().map(|&v| v as f64 / 255.0).collect();
    let mean: Vec<f64> = (0..input).map(|j| (0..n).map(|i| x[i * input + j]).sum::<f64>() / n as f64).collect();
    let mut cov = vec![0.0f64; input * input];
    for row in x.chunks_exact(input) {
        let c: Vec<f64> = row.iter().zip(&mean).map(|(a, m)| a - m).collect();
        for a in 0..input {
            if c[a] != 0.0 {
                for b in 0..input {
                    cov[a * input + b] += c[a] * c[b] / n as f64;
                }
            }
        }
    }
    let mut out = Vec::new();
    for comp in 0..k {
        let mut v: Vec<f64> = (0..input).map(|i| 1.0 + ((i * 7 + comp) % 13) as f64 / 13.0).collect();
        let mut lambda = 0.0;
        for _ in 0..3000 {
            let w: Vec<f64> = (0..input).map(|a| (0..input).map(|b| cov[a * input + b] * v[b]).sum()).collect();
            lambda = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            v = w.iter().map(|x| x / lambda).collect();
        }
        for a in 0..input {
            for b in 0..input {
                cov[a * input + b] -= lambda * v[a] * v[b];
            }
        }
        out.push(v);
    }
    out
}

#[test]
fn pca_components_are_the_covariance_eigenvectors_orthonormal_with_a_fixed_sign() {
    let data = common::mnist_subset(400, 0);
    let k = 3;
    let pca = latent_explorer::train::pca::fit(&data.train_images, 784, k).unwrap();
    let expected = power_iteration_components(&data.train_images, 784, k);
    for (c, want) in pca.components.chunks_exact(784).zip(&expected) {
        // Our sign convention: the largest-magnitude entry is positive.
        let big = (0..784).fold(0, |b, i| if c[i].abs() > c[b].abs() { i } else { b });
        assert!(c[big] > 0.0, "the largest entry is negative");
        let sign = if want[big] < 0.0 { -1.0 } else { 1.0 };
        let diff = c.iter().zip(want).map(|(a, b)| (a - sign * b).abs()).fold(0.0, f64::max);
        assert!(diff < 1e-4, "component differs from power iteration by {diff}");
    }
    for (i, a) in pca.components.chunks_exact(784).enumerate() {
        for (j, b) in pca.components.chunks_exact(784).enumerate() {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-9, "components {i}, {j}: dot {dot}");
        }
    }
    // The model encodes to the projections on the components and decodes them back.
    let vae = pca.to_model().unwrap();
    let x = latent_explorer::dataset::to_intensities(&data.train_images[..784]);
    let z = vae.encode(&x).unwrap();
    assert!(z.logvar.is_none());
    for (t, c) in pca.components.chunks_exact(784).enumerate() {
        let proj: f64 = c.iter().zip(&x).zip(&pca.mean).map(|((w, &xi), m)| w * (xi as f64 - m)).sum();
        assert!((z.mu[t] as f64 - proj).abs() < 1e-4, "projection {t}: {} vs {proj}", z.mu[t]);
    }
}

/// The shipped model as a file from before kinds was written: no `kind` or `loss` in its
/// architecture, no `kind`, `loss`, `test_mse` or coverage figures in its metadata.
fn file_from_before_kinds() -> Vec<u8> {
    let bytes = fs::read(SHIPPED).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    for key in ["kind", "loss", "test_mse", "prior_coverage", "codes_in_prior", "prior_share_by_class"] {
        meta.remove(key);
    }
    let arch = meta["architecture"].replace(r#","kind":"vae""#, "").replace(r#","loss":"bce""#, "");
    meta.insert("architecture".into(), arch);
    safetensors::serialize(st.tensors(), Some(meta)).unwrap()
}

/// A file written before kinds existed loads as a VAE, and `--convert`'s conversion adds the
/// new figures.
#[test]
fn a_file_from_before_kinds_loads_as_a_vae_and_converting_it_adds_the_new_figures() {
    let bytes = file_from_before_kinds();
    let file = weights::from_bytes(&bytes).unwrap();
    assert!(!file.metadata["architecture"].contains("kind") && !file.metadata.contains_key("kind"), "the file predates kinds");
    assert_eq!((file.vae.arch().kind, file.vae.arch().loss), (ModelKind::Vae, ReconstructionLoss::Bce));
    assert!(file.vae.layout().logvar.is_some());
    let data = common::mnist();
    let (images, labels) = (&data.test_images[..20 * 784], &data.test_labels[..20]);
    let (out, figures) = weights::convert::convert(&bytes, images, labels, StorageDtype::F16).unwrap();
    let converted = weights::from_bytes(&out).unwrap();
    assert_eq!(converted.metadata.get("kind").map(String::as_str), Some("vae"));
    for key in ["test_mse", "prior_coverage", "codes_in_prior", "test_kl", "test_iw_bound"] {
        assert!(converted.metadata_f64(key).is_some(), "{key} missing after conversion");
    }
    assert!(figures.variational.is_some() && (0.0..=1.0).contains(&figures.prior_coverage));
}

fn train_cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_train"));
    c.arg("--data").arg(common::mnist_dir());
    c
}

#[test]
fn the_cli_trains_each_kind_and_refuses_what_a_kind_does_not_have() {
    let dir = common::temp_dir("kinds-cli");
    for (kind, extra) in [("ae", &["--hidden", "16", "--loss", "mse"][..]), ("pca", &["--latent", "2"][..])] {
        let out = dir.join(format!("{kind}.safetensors"));
        let status = train_cli()
            .args(["--kind", kind, "--limit", "200", "--epochs", "1", "--threads", "2", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(status.status.success(), "{kind}: {}", String::from_utf8_lossy(&status.stderr));
        let file = weights::from_bytes(&fs::read(&out).unwrap()).unwrap();
        assert_eq!(file.vae.arch().kind.name(), kind);
        assert_eq!(file.vae.arch().loss, ReconstructionLoss::Mse);
    }
    for (args, says) in [(&["--kind", "ae", "--beta", "4"][..], "--beta"), (&["--kind", "pca", "--loss", "bce"][..], "squared error")] {
        let out = train_cli().args(args).arg("--out").arg(dir.join("refused.safetensors")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && text.contains(says), "{args:?}: {text}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint carries the kind: an autoencoder's run resumes as an autoencoder, with the same
/// weights (and no log-variance head to restore).
#[test]
fn an_autoencoder_checkpoint_resumes_as_an_autoencoder() {
    let data = common::mnist_subset(100, 10);
    let arch = Architecture { kind: ModelKind::Ae, ..Architecture::mirrored(784, &[16], 2) };
    let mut t = Trainer::new(config(arch.clone()), &data).unwrap();
    t.bench_steps(2).unwrap();
    let dir = common::temp_dir("kinds-ckpt");
    let path = dir.join("ae.ckpt");
    latent_explorer::train::checkpoint::save(&path, &t.state).unwrap();
    let back = latent_explorer::train::checkpoint::load(&path).unwrap();
    assert_eq!(back.config.arch, arch);
    assert_eq!(back.vae.params(), t.state.vae.params());
    assert!(back.vae.layout().logvar.is_none());
    fs::remove_dir_all(&dir).unwrap();
}
