//! Decoding latent points to pictures with the shipped model: the CPU reference (the page's
//! fallback) and, where wgpu finds an adapter, the GPU engine, for one point (a drag) and a
//! batch of 256 (a manifold grid).
//!
//! `cargo bench --bench decode` (add `-- --quick` for a short run). Beside
//! `manifold --bench`, which times whole decodes with hand-written rounds.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use latent_explorer::gpu::{EngineOptions, GpuEngine};
use latent_explorer::{weights, Vae};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/mnist-2d.safetensors");
const BATCHES: [usize; 2] = [1, 256];

/// `n` latent points spread over the region the page shows.
fn points(n: usize, latent: usize) -> Vec<f32> {
    (0..n * latent).map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 6.0).collect()
}

fn decode(c: &mut Criterion) {
    let bytes = std::fs::read(SHIPPED).unwrap_or_else(|e| panic!("{SHIPPED}: {e}"));
    let vae: Vae = weights::from_bytes(&bytes).unwrap_or_else(|e| panic!("{SHIPPED}: {e}")).vae;
    let latent = vae.arch().latent;
    let gpu = match pollster::block_on(GpuEngine::new(&vae, EngineOptions::default())) {
        Ok(engine) => Some(engine),
        Err(e) => {
            eprintln!("no GPU decode benchmark: {e}");
            None
        }
    };
    let mut group = c.benchmark_group("decode");
    for n in BATCHES {
        let z = points(n, latent);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("cpu", n), |b| b.iter(|| vae.decode(&z).expect("points sized by the model")));
        if let Some(engine) = &gpu {
            group
                .bench_function(BenchmarkId::new("gpu", n), |b| b.iter(|| pollster::block_on(engine.decode(&z)).expect("the GPU decodes")));
        }
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
