//! One optimisation step of the trainer (`train::Stepper::step`: forward, loss, backward and
//! Adam) at the default batch size and architecture, on synthetic MNIST-sized images.
//!
//! `cargo bench --bench train_step` (add `-- --quick` for a short run). Beside `train --bench`,
//! which reports examples per second over whole rounds of steps.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use latent_explorer::dataset::Dataset;
use latent_explorer::rng;
use latent_explorer::train::{Stepper, TrainConfig, TrainState};

/// Training images: enough for a few batches, so steps see different examples.
const N_TRAIN: usize = 1024;

/// `n` 28x28 images of smooth strokes (the step's cost does not depend on the pixels, but
/// plausible inputs keep the loss and the weights in their usual range).
fn synthetic(n: usize) -> Dataset {
    let (rows, cols) = (28, 28);
    let images = (0..n * rows * cols)
        .map(|i| {
            let (img, p) = (i / (rows * cols), i % (rows * cols));
            let (y, x) = ((p / cols) as f32, (p % cols) as f32);
            let phase = img as f32 * 0.37;
            let v = ((x * 0.3 + phase).sin() * (y * 0.25 - phase).cos()).max(0.0);
            (v * 255.0) as u8
        })
        .collect();
    Dataset {
        name: "custom".into(),
        files_sha256: Default::default(),
        dir: Default::default(),
        rows,
        cols,
        train_images: images,
        train_labels: vec![0; n],
        test_images: Vec::new(),
        test_labels: Vec::new(),
    }
}

fn step(c: &mut Criterion) {
    let data = synthetic(N_TRAIN);
    let config = TrainConfig::default();
    let (batch, threads) = (config.batch_size, config.threads);
    let mut state = TrainState::new(config, &data).expect("the default configuration fits MNIST-sized images");
    let mut stepper = Stepper::new(threads).expect("worker threads start");
    let perm = rng::permutation(rng::derive_seed(state.config.seed, 0), data.n_train());
    let batches = state.config.batches_per_epoch(data.n_train());
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function(format!("default model, batch {batch}, {threads} threads"), |b| {
        b.iter(|| {
            let report = stepper.step(&mut state, &data, &perm);
            state.batch = (state.batch + 1) % batches;
            report
        })
    });
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
