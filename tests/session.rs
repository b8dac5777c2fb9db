//! The page's training session (`session`) against the native trainer: the CPU session takes
//! the native trainer's steps bit for bit; the GPU session (lavapipe here) takes them within the
//! GPU trainer's tolerances, follows a change of beta from the next step (read back from the
//! device), continues on the CPU from its snapshot, and reports a lost device as an error.

mod common;

use common::assert_tensors_close;
use latent_explorer::dataset::Dataset;
use latent_explorer::session::{self, CpuSession, GpuSession, Snapshot, StepResult};
use latent_explorer::testset::{self, TestSet};
use latent_explorer::train::{plan, LrSchedule, Stepper, TrainConfig, TrainState};
use latent_explorer::{weights, Architecture, ModelError, ModelKind};

/// The first `n` images of the shipped MNIST training subset (the page's data).
fn subset(n: usize) -> TestSet {
    let bytes = std::fs::read("www/data/train-mnist.safetensors.gz").expect("the shipped training subset");
    let mut set = testset::from_bytes(&bytes).expect("it parses");
    assert_eq!(set.len(), 10_000, "the shipped subset holds 1,000 images per class");
    set.images.truncate(n * testset::PIXELS);
    set.labels.truncate(n);
    set
}

fn config(arch: Architecture, batch_size: usize) -> TrainConfig {
    TrainConfig {
        arch,
        epochs: 1,
        batch_size,
        lr: 3e-3,
        beta: 1.0,
        seed: 11,
        threads: 1,
        iw_samples: 1,
        limit: None,
        schedule: LrSchedule::Constant,
    }
}

fn small() -> Architecture {
    Architecture::mirrored(784, &[32, 16], 2)
}

/// 600 images in batches of 64: 9 whole batches and a short one of 24 per epoch, so 25 steps
/// cross two epoch boundaries; beta moves from 1 to 3.5 before step `BETA_AT`.
const STEPS: usize = 25;
const BETA_AT: usize = 13;

/// The native trainer's steps (`Stepper`, two threads), as `train` takes them.
fn native_steps(cfg: &TrainConfig, data: &TestSet) -> (Vec<(f64, f64)>, Vec<Vec<f32>>) {
    let ds = Dataset {
        name: "mnist".into(),
        dir: Default::default(),
        rows: 28,
        cols: 28,
        train_images: data.images.clone(),
        train_labels: data.labels.clone(),
        test_images: Vec::new(),
        test_labels: Vec::new(),
        files_sha256: Default::default(),
    };
    let mut state = TrainState::new(TrainConfig { threads: 2, ..cfg.clone() }, &ds).unwrap();
    let mut stepper = Stepper::new(2).unwrap();
    let (mut losses, mut params) = (Vec::new(), Vec::new());
    for i in 0..STEPS {
        if i == BETA_AT {
            state.config.beta = 3.5;
        }
        let perm = plan::permutation(cfg.seed, state.epoch, data.len());
        let r = stepper.step(&mut state, &ds, &perm);
        assert!(r.finite);
        losses.push((r.sums.reconstruction / r.rows as f64, r.sums.kl / r.rows as f64));
        state.account(r.sums, r.rows, 0.0);
        if state.batch == cfg.batches_per_epoch(data.len()) {
            state.batch = 0;
            state.epoch += 1;
        }
        params.push(state.vae.params().to_vec());
    }
    (losses, params)
}

#[test]
fn the_cpu_session_takes_the_native_trainers_steps_bit_for_bit() {
    let data = subset(600);
    let cfg = config(small(), 64);
    let (losses, params) = native_steps(&cfg, &data);
    let mut s = CpuSession::new(Snapshot::start(cfg.clone()).unwrap(), data).unwrap();
    for i in 0..STEPS {
        if i == BETA_AT {
            s.set_beta(3.5).unwrap();
        }
        let r = s.step().unwrap();
        // The native trainer sums the loss per thread, so its sums may differ in the last bits;
        // the weights do not (its step is bit-identical for any thread count).
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
        assert!(close(r.reconstruction, losses[i].0) && close(r.kl, losses[i].1), "step {i}: loss terms {r:?} vs {:?}", losses[i]);
        assert_eq!(r.beta, if i < BETA_AT { 1.0 } else { 3.5 });
        let differ = s.vae().params().iter().zip(&params[i]).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "step {i}: {differ} parameters differ from the native trainer's");
    }
    assert_eq!((s.snapshot().epoch, s.snapshot().batch, s.snapshot().steps()), (2, 5, STEPS as u64));
}

/// Runs `STEPS` steps on the GPU, up to `group` at a time, moving beta before step `BETA_AT`.
async fn gpu_steps(gpu: &mut GpuSession, group: usize) -> Vec<StepResult> {
    let mut out = Vec::new();
    let mut queued = 0;
    while queued < STEPS {
        let until = if queued < BETA_AT { BETA_AT } else { STEPS };
        let n = group.min(until - queued);
        out.extend(gpu.advance(n).await.unwrap());
        queued += n;
        if queued == BETA_AT {
            gpu.set_beta(3.5).unwrap();
            let b = gpu.device_beta().await.unwrap();
            assert!((b - 3.5).abs() < 1e-5, "the device's step table holds the new beta, not {b}");
        }
    }
    out.extend(gpu.sync().await.unwrap());
    out
}

#[test]
fn the_gpu_session_takes_the_same_steps_within_the_gpu_trainers_tolerance() {
    let data = subset(600);
    let cfg = config(small(), 64);
    let (losses, params) = native_steps(&cfg, &data);
    pollster::block_on(async {
        let mut gpu = GpuSession::new(Snapshot::start(cfg.clone()).unwrap(), &data).await.unwrap();
        assert!((gpu.device_beta().await.unwrap() - 1.0).abs() < 1e-6);
        let results = gpu_steps(&mut gpu, 4).await;
        assert_eq!(results.len(), STEPS, "every queued step is read back once");
        let mut worst = 0.0f64;
        for (i, (r, (rec, kl))) in results.iter().zip(&losses).enumerate() {
            let (got, want) = (r.reconstruction + r.kl, rec + kl);
            let rel = (got - want).abs() / want.abs();
            worst = worst.max(rel);
            assert!(rel < 1e-3, "step {i}: loss {got} on the GPU, {want} on the CPU");
            assert_eq!(r.beta, if i < BETA_AT { 1.0 } else { 3.5 }, "step {i}: beta");
        }
        eprintln!("worst step loss error {worst:.2e}");
        let snap = gpu.snapshot();
        assert_eq!((snap.epoch, snap.batch, snap.steps()), (2, 5, STEPS as u64));
        assert_tensors_close(&snap.vae, snap.vae.params(), &params[STEPS - 1], 1e-3, "GPU session weights");
        // The engine encodes and decodes with the synced weights.
        let images: Vec<f32> = data.images[..50 * 784].iter().map(|&b| b as f32 / 255.0).collect();
        let mu = gpu.embed(&images).await.unwrap();
        let want = snap.vae.encode(&images).unwrap().mu;
        assert_tensors_close_flat(&mu, &want, 1e-4, "embedding");
        let z = [0.3f32, -1.2, 1.0, 0.5];
        assert_tensors_close_flat(&gpu.decode(&z).await.unwrap(), &snap.vae.decode(&z).unwrap(), 1e-4, "decode");
    });
}

fn assert_tensors_close_flat(a: &[f32], b: &[f32], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let (rel, _) = common::relative(a, b);
    assert!(rel < tol, "{what}: relative error {rel:.2e}");
}

#[test]
fn a_gpu_run_continues_on_the_cpu_from_its_snapshot_and_a_lost_device_is_an_error() {
    let data = subset(600);
    let cfg = config(small(), 64);
    let (_, params) = native_steps(&TrainConfig { ..cfg.clone() }, &data);
    pollster::block_on(async {
        let mut gpu = GpuSession::new(Snapshot::start(cfg.clone()).unwrap(), &data).await.unwrap();
        for _ in 0..3 {
            gpu.advance(4).await.unwrap();
        }
        gpu.sync().await.unwrap();
        gpu.advance(4).await.unwrap(); // queued past the snapshot, then lost
        gpu.lose_device_for_testing();
        let mut err = None;
        for _ in 0..3 {
            if let Err(e) = gpu.advance(4).await {
                err = Some(e);
                break;
            }
        }
        let err = err.expect("a lost device is reported");
        assert!(matches!(err, ModelError::Gpu(_)), "{err}");
        assert!(err.to_string().to_lowercase().contains("lost"), "the message says the device was lost: {err}");
        let snap = gpu.snapshot().clone();
        assert_eq!((snap.epoch, snap.batch, snap.steps()), (1, 2, 12), "the snapshot is the last synced state");
        let mut cpu = CpuSession::new(snap, data.clone()).unwrap();
        for _ in 12..BETA_AT {
            cpu.step().unwrap();
        }
        assert_tensors_close(cpu.vae(), cpu.vae().params(), &params[BETA_AT - 1], 1e-3, "GPU then CPU");
    });
}

#[test]
fn the_saved_model_holds_the_weights_bit_for_bit_and_a_diverged_run_saves_nothing() {
    let data = subset(300);
    let mut cpu = CpuSession::new(Snapshot::start(config(small(), 100)).unwrap(), data.clone()).unwrap();
    for _ in 0..4 {
        cpu.step().unwrap();
    }
    let bytes = session::model_bytes(cpu.snapshot(), &data, "CPU").unwrap();
    let file = weights::from_bytes(&bytes).unwrap();
    let same = file.vae.params().iter().zip(cpu.vae().params()).all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same, "the file's weights are the session's bit for bit");
    assert_eq!(file.metadata["kind"], "vae");
    assert_eq!(file.metadata["steps"], "4");
    assert!(file.metadata["dataset"].contains("\"name\":\"mnist\""), "{}", file.metadata["dataset"]);

    let mut wild = CpuSession::new(Snapshot::start(TrainConfig { lr: 1e30, ..config(small(), 100) }).unwrap(), data.clone()).unwrap();
    let err = (0..10).find_map(|_| wild.step().err()).expect("lr 1e30 diverges");
    assert!(matches!(err, ModelError::Diverged { .. }), "{err}");
    assert!(wild.step().is_err(), "no step follows divergence");
    assert!(session::model_bytes(wild.snapshot(), &data, "CPU").is_err(), "a diverged run has no model to save");
}

#[test]
fn bad_configurations_are_refused_with_the_reason() {
    let data = subset(100);
    let refuse = |cfg: TrainConfig, needle: &str| {
        let err = match Snapshot::start(cfg) {
            Ok(s) => CpuSession::new(s, data.clone()).err().expect("refused"),
            Err(e) => e,
        };
        assert!(err.to_string().contains(needle), "{err} should mention {needle:?}");
    };
    refuse(config(small(), 0), "batch size");
    refuse(config(small(), 101), "batch size");
    refuse(TrainConfig { lr: 0.0, ..config(small(), 10) }, "learning rate");
    refuse(TrainConfig { beta: f32::NAN, ..config(small(), 10) }, "beta");
    refuse(config(Architecture::mirrored(100, &[8], 2), 10), "inputs");
    refuse(config(Architecture { kind: ModelKind::Pca, ..Architecture::pca(784, 2) }, 10), "PCA");
    let mut s = CpuSession::new(Snapshot::start(config(small(), 10)).unwrap(), data).unwrap();
    assert!(s.set_beta(-1.0).is_err() && s.beta() == 1.0, "a negative beta is refused and changes nothing");
}
