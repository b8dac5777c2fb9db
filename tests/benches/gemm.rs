//! The three matrix products of `crate/gemm.rs` at the trainer's shapes: a batch of 128 through
//! the default architecture's two large layers (784 -> 512 and 512 -> 256).
//!
//! `cargo bench --bench gemm` (add `-- --quick` for a short run). The `--bench` flags of the CLIs
//! measure whole programs; this measures the kernels under them, with criterion's statistics.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use latent_explorer::gemm::{gemm, gemm_at, gemm_par, Op};

/// The trainer's batch size (`TrainConfig::default`).
const BATCH: usize = 128;
/// (inputs, outputs) of the default architecture's layers with the most parameters.
const LAYERS: [(usize, usize); 2] = [(784, 512), (512, 256)];

/// `n` deterministic values in about [-1, 1].
fn values(n: usize, salt: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 + salt * 104_729) % 2001) as f32 / 1000.0 - 1.0).collect()
}

fn products(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    for (n_in, n_out) in LAYERS {
        let shape = format!("{BATCH}x{n_in}x{n_out}");
        // Multiply-adds per product: the same for all three.
        group.throughput(Throughput::Elements((BATCH * n_in * n_out) as u64));
        let x = values(BATCH * n_in, 1);
        let w = values(n_out * n_in, 2);
        let delta = values(BATCH * n_out, 3);
        // Forward: y = x W^T (W stored [out, in], as nn.Linear).
        let mut y = vec![0.0; BATCH * n_out];
        group.bench_function(BenchmarkId::new("forward", &shape), |b| {
            b.iter(|| gemm(BATCH, n_in, n_out, &x, Op::N, &w, Op::T, 0.0, &mut y))
        });
        // The same product split over the rayon pool (inference's path).
        group.bench_function(BenchmarkId::new("forward, gemm_par", &shape), |b| {
            b.iter(|| gemm_par(BATCH, n_in, n_out, &x, Op::N, &w, Op::T, 0.0, &mut y))
        });
        // Backward to the inputs: dx = delta W.
        let mut dx = vec![0.0; BATCH * n_in];
        group.bench_function(BenchmarkId::new("backward", &shape), |b| {
            b.iter(|| gemm(BATCH, n_out, n_in, &delta, Op::N, &w, Op::N, 0.0, &mut dx))
        });
        // The weight gradient: gw = delta^T x, delta read transposed through its strides.
        let mut gw = vec![0.0; n_out * n_in];
        group.bench_function(BenchmarkId::new("weight gradient, gemm_at", &shape), |b| {
            b.iter(|| gemm_at(n_out, BATCH, n_in, &delta, (1, n_out), &x, 0.0, &mut gw))
        });
    }
    group.finish();
}

criterion_group!(benches, products);
criterion_main!(benches);
