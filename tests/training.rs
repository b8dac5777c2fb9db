//! The trainer's behaviour: the loss falls, beta moves the KL/reconstruction balance as theory
//! says, runs are deterministic, and a resumed run equals an uninterrupted one.

mod common;

use std::sync::atomic::AtomicBool;

use latent_explorer::train::backprop::{loss_and_grad, Workspace};
use latent_explorer::train::evaluate::{encode_means, TestFigures};
use latent_explorer::train::{checkpoint, EpochRecord, LrSchedule, Outcome, Quiet, TrainConfig, Trainer};
use latent_explorer::weights::{self, StorageDtype};
use latent_explorer::{Activation, Architecture};

fn small_config(beta: f32) -> TrainConfig {
    TrainConfig {
        arch: Architecture::mirrored(784, &[128, 64], 2),
        epochs: 1,
        batch_size: 64,
        lr: 1e-3,
        beta,
        seed: 3,
        threads: 2,
        iw_samples: 10,
        limit: None,
        schedule: LrSchedule::Cosine { floor: 0.1 },
    }
}

/// Mean (reconstruction, KL) per example over `steps` steps after `warm` steps of training.
fn train_terms(beta: f32, warm: usize) -> (f64, f64) {
    let data = common::mnist_subset(2048, 500);
    let mut t = Trainer::new(small_config(beta), &data).unwrap();
    t.bench_steps(warm).unwrap();
    let model = &t.state.vae;
    let x = latent_explorer::dataset::to_intensities(&data.test_images);
    let terms = model.loss_terms(&x, 1, 0).unwrap();
    let n = terms.len() as f64;
    (terms.iter().map(|t| t.reconstruction).sum::<f64>() / n, terms.iter().map(|t| t.kl).sum::<f64>() / n)
}

#[test]
fn the_loss_falls_within_a_few_hundred_steps() {
    let data = common::mnist_subset(2048, 500);
    let mut t = Trainer::new(small_config(1.0), &data).unwrap();
    let x = latent_explorer::dataset::to_intensities(&data.test_images);
    let loss = |t: &Trainer| {
        let terms = t.state.vae.loss_terms(&x, 1, 0).unwrap();
        terms.iter().map(|t| t.neg_elbo(1.0)).sum::<f64>() / terms.len() as f64
    };
    let before = loss(&t);
    t.bench_steps(300).unwrap();
    let after = loss(&t);
    // An untrained decoder scores about 784 * ln 2 = 543 nats; a few hundred steps reach < 220.
    assert!(before > 450.0, "untrained -ELBO {before}");
    assert!(after < 220.0, "-ELBO after 300 steps {after} (was {before})");
}

#[test]
fn beta_zero_frees_the_kl_and_a_large_beta_collapses_it() {
    let (rec0, kl0) = train_terms(0.0, 300);
    let (rec1, kl1) = train_terms(1.0, 300);
    let (rec_big, kl_big) = train_terms(50.0, 300);
    eprintln!("beta 0: rec {rec0:.1} KL {kl0:.2}; beta 1: rec {rec1:.1} KL {kl1:.2}; beta 50: rec {rec_big:.1} KL {kl_big:.3}");
    // Without the KL penalty the encoder spends far more nats on the code than with it...
    assert!(kl0 > 2.0 * kl1, "KL at beta 0 ({kl0}) should far exceed KL at beta 1 ({kl1})");
    // ...and reconstructs at least as well.
    assert!(rec0 < rec1 + 1.0, "reconstruction at beta 0 ({rec0}) vs beta 1 ({rec1})");
    // A heavy penalty pushes q(z|x) onto the prior (posterior collapse): KL near 0, and the
    // decoder can only draw an average digit.
    assert!(kl_big < 0.5, "KL at beta 50 is {kl_big}");
    assert!(rec_big > rec1 + 5.0, "reconstruction at beta 50 ({rec_big}) vs beta 1 ({rec1})");
}

#[test]
fn an_identity_activation_model_trains_the_function_the_reference_model_evaluates() {
    // Linear hidden layers: the trainer must run them as the reference model (`Vae`) does, not
    // as ReLUs, or it would optimise one function while every other path evaluates another.
    let data = common::mnist_subset(1024, 0);
    let mut config = small_config(1.0);
    config.arch.hidden_activation = Activation::Identity;
    let mut t = Trainer::new(config, &data).unwrap();
    t.bench_steps(40).unwrap();
    let vae = &t.state.vae;
    let x = latent_explorer::dataset::to_intensities(&data.train_images[..64 * 784]);
    let (seed, index0) = (77, 1000);
    let terms = vae.loss_terms(&x, seed, index0).unwrap();
    let reference = terms.iter().map(|t| t.neg_elbo(1.0)).sum::<f64>() / 64.0;
    let mut grad = vec![0.0; vae.params().len()];
    let sums = loss_and_grad(vae, &x, 1.0, seed, index0, 1.0 / 64.0, &mut grad, &mut Workspace::default());
    let trained = (sums.reconstruction + sums.kl) / 64.0;
    eprintln!("identity model after 40 steps: training loss {trained:.6}, reference {reference:.6}");
    // The same forward pass; only the f32 lane sums of the cross-entropy differ from the
    // reference's f64 sum.
    assert!((trained - reference).abs() < 1e-5 * reference, "training loss {trained} vs reference {reference}");
}

/// The weights after `steps` steps of `small_config(1.0)` as changed by `tweak`.
fn params_after(data: &latent_explorer::dataset::Dataset, steps: usize, tweak: impl FnOnce(&mut TrainConfig)) -> Vec<f32> {
    let mut c = small_config(1.0);
    tweak(&mut c);
    let mut t = Trainer::new(c, data).unwrap();
    t.bench_steps(steps).unwrap();
    t.state.vae.params().to_vec()
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    let data = common::mnist_subset(512, 100);
    let run = |seed: u32| params_after(&data, 12, |c| c.seed = seed);
    let a = run(1);
    assert_eq!(a, run(1));
    assert_ne!(a, run(2));
}

#[test]
fn the_thread_count_does_not_change_the_weights() {
    // Each value is computed the same way however the batch is sharded, so 1, 2 and 3 threads
    // (3 does not divide the batch) train the same model bit for bit.
    let data = common::mnist_subset(512, 100);
    let run = |threads: usize| params_after(&data, 10, |c| c.threads = threads);
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

fn strip_timing(h: &[EpochRecord]) -> Vec<EpochRecord> {
    h.iter().map(|r| EpochRecord { seconds: 0.0, examples_per_second: 0.0, ..r.clone() }).collect()
}

#[test]
fn resuming_mid_epoch_gives_the_uninterrupted_result() {
    let data = common::mnist_subset(700, 200); // 11 batches of 64 per epoch, the last one short
    let mut config = small_config(1.0);
    config.epochs = 3;
    let dir = common::temp_dir("resume");
    let never = AtomicBool::new(false);

    let mut straight = Trainer::new(config.clone(), &data).unwrap();
    assert_eq!(straight.run(&dir.join("a.safetensors"), &mut Quiet, &never).unwrap(), Outcome::Finished);

    // Interrupt in the middle of the second epoch (step 16 of 33), then resume from the file.
    let out = dir.join("b.safetensors");
    let flag = AtomicBool::new(false);
    let mut first = Trainer::new(config, &data).unwrap();
    let outcome = first.run(&out, &mut common::StopAfter { steps: 16, flag: &flag }, &flag).unwrap();
    assert_eq!(outcome, Outcome::Interrupted);
    let state = checkpoint::load(&dir.join("b.ckpt")).unwrap();
    assert_eq!((state.epoch, state.batch), (1, 5));
    let mut resumed = Trainer::from_state(state, &data).unwrap();
    assert_eq!(resumed.run(&out, &mut Quiet, &never).unwrap(), Outcome::Finished);

    assert_eq!(resumed.state.vae.params(), straight.state.vae.params(), "weights differ after resume");
    assert!(resumed.state.adam == straight.state.adam, "optimiser state differs after resume");
    assert_eq!(strip_timing(&resumed.state.history), strip_timing(&straight.state.history));
    // The JSON-lines log has one line per epoch across the interruption.
    let log = std::fs::read_to_string(dir.join("b.train.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_round_trips_the_whole_state() {
    let data = common::mnist_subset(300, 50);
    let mut t = Trainer::new(small_config(2.0), &data).unwrap();
    t.bench_steps(3).unwrap();
    let dir = common::temp_dir("ckpt");
    let path = dir.join("x.ckpt");
    checkpoint::save(&path, &t.state).unwrap();
    let back = checkpoint::load(&path).unwrap();
    assert_eq!(back.vae.params(), t.state.vae.params());
    assert!(back.adam == t.state.adam, "optimiser state differs after a round trip");
    assert_eq!((back.epoch, back.batch, back.config.clone()), (t.state.epoch, t.state.batch, t.state.config.clone()));
    // A model file is not a checkpoint: the error says so.
    let model = dir.join("m.safetensors");
    t.finish(&model, StorageDtype::F32).unwrap();
    let err = checkpoint::load(&model).unwrap_err().to_string();
    assert!(err.contains("not a training checkpoint"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The trainer and `--convert` record the test figures through one helper, so a trained and a
/// converted model carry the same keys; and a converted file's figures are measured on its own
/// weights, not copied from its source.
#[test]
fn a_trained_and_a_converted_model_carry_the_same_figures_and_convert_measures_them_again() {
    let data = common::mnist_subset(300, 50);
    let mut t = Trainer::new(small_config(1.0), &data).unwrap();
    t.bench_steps(3).unwrap();
    let dir = common::temp_dir("figures");
    let path = dir.join("m.safetensors");
    t.finish(&path, StorageDtype::F32).unwrap();
    let trained = weights::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let measured = |vae: &latent_explorer::Vae| {
        TestFigures::measure(vae, &data.test_images, &data.test_labels, &encode_means(vae, &data.test_images), 10).entries()
    };
    let figures = measured(&trained.vae);
    for (key, value) in &figures {
        assert_eq!(trained.metadata.get(*key), Some(value), "the trained model's {key}");
    }
    // Forge the source's measured figures (keeping iw_samples, which says how to measure).
    let mut forged = trained.metadata.clone();
    for (key, _) in figures.iter().filter(|(k, _)| k.starts_with("test_")) {
        forged.insert(key.to_string(), "-1".into());
    }
    let source = weights::to_bytes(&trained.vae, trained.embedding.as_ref(), &forged, StorageDtype::F32, Vec::new()).unwrap();
    let (bytes, _) = weights::convert::convert(&source, &data.test_images, &data.test_labels, StorageDtype::F16).unwrap();
    let converted = weights::from_bytes(&bytes).unwrap();
    for (key, value) in measured(&converted.vae) {
        assert_eq!(converted.metadata.get(key), Some(&value), "the converted model's {key}");
    }
    // The same keys, and the precision it was converted to.
    let mut keys: Vec<String> = trained.metadata.keys().cloned().chain(["storage_dtype".to_string()]).collect();
    keys.sort();
    assert_eq!(converted.metadata.keys().cloned().collect::<Vec<_>>(), keys);
}

#[test]
fn the_cosine_schedule_starts_at_lr_and_ends_at_the_floor() {
    let s = LrSchedule::Cosine { floor: 0.01 };
    assert_eq!(s.at(1e-3, 0, 100), 1e-3);
    assert!((s.at(1e-3, 50, 100) - 0.505e-3).abs() < 1e-9);
    assert!((s.at(1e-3, 100, 100) - 1e-5).abs() < 1e-9);
    assert_eq!(LrSchedule::Constant.at(1e-3, 77, 100), 1e-3);
}
