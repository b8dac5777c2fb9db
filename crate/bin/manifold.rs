//! `cargo run --release --bin manifold -- --model FILE --grid 20 --backend gpu --out manifold.png`
//!
//! Renders the decoded latent grid (Kingma & Welling's figure 4), decodes one point with
//! `--z x,y`, or benchmarks decoding with `--bench`. The GPU and CPU backends should give the
//! same picture: this is also the parity check anyone can run. Where it runs is the library's
//! policy (`latent_explorer::backend`), the page's too: `--backend auto` keeps the GPU only if it
//! decodes a point faster than the CPU.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use latent_explorer::backend::{self, Backend, Preference};
use latent_explorer::fsutil::atomic_write;
use latent_explorer::gpu::{EngineOptions, GpuEngine, MatmulKernel};
use latent_explorer::{rng, weights, Vae};

#[derive(Parser, Debug)]
#[command(version, about = "Decode a grid of latent points (or one point) to a PNG, on the GPU or the CPU")]
struct Args {
    /// Model file written by `train`.
    #[arg(long, default_value = "www/models/mnist-2d.safetensors")]
    model: PathBuf,
    /// Grid points per side.
    #[arg(long, default_value_t = 20)]
    grid: usize,
    /// gpu (WGSL through wgpu), cpu (the reference), or auto (the GPU if it decodes a point
    /// faster than the CPU, timed at start).
    #[arg(long, default_value = "gpu", value_parser = ["gpu", "cpu", "auto"])]
    backend: String,
    /// Output PNG.
    #[arg(long, default_value = "manifold.png")]
    out: PathBuf,
    /// A linear grid over [-R, R] instead of the default spacing by the inverse normal CDF.
    #[arg(long)]
    range: Option<f32>,
    /// Decode this single latent point (comma-separated) to a 28x28 PNG instead of a grid.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    z: Option<Vec<f32>>,
    /// Benchmark decoding (latency and throughput per batch size) on both backends.
    #[arg(long)]
    bench: bool,
    /// Batch sizes for --bench.
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024")]
    batches: Vec<usize>,
    /// For --bench, the GPU's product kernel for batches of 64 or more: tiled (workgroup-memory
    /// tiles) or dense (the dense layer kernel). Default: by adapter type (tiled on GPUs).
    #[arg(long, value_parser = ["tiled", "dense"])]
    gpu_kernel: Option<String>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let bytes = std::fs::read(&args.model).map_err(|e| format!("{}: {e}", args.model.display()))?;
    let vae = weights::from_bytes(&bytes).map_err(|e| format!("{}: {e}", args.model.display()))?.vae;
    if args.bench {
        let matmul = args.gpu_kernel.as_deref().map(|k| if k == "tiled" { MatmulKernel::Tiled } else { MatmulKernel::Blocked });
        return bench(&vae, &args.batches, EngineOptions { matmul, ..Default::default() });
    }
    let d = vae.arch().latent;
    let side = (vae.arch().input as f64).sqrt() as usize;
    if side * side != vae.arch().input {
        return Err(format!("the model's output ({} values) is not a square image", vae.arch().input));
    }
    let (z, cols) = match &args.z {
        Some(z) => {
            if z.len() != d {
                return Err(format!("--z has {} values, the model's latent space has {d}", z.len()));
            }
            if z.iter().any(|v| !v.is_finite()) {
                return Err("--z values must be finite numbers".into());
            }
            (z.clone(), 1)
        }
        None => {
            if args.grid == 0 || args.grid > 200 {
                return Err("--grid must be between 1 and 200".into());
            }
            if let Some(r) = args.range {
                if !(r > 0.0 && r.is_finite()) {
                    return Err("--range must be a positive number".into());
                }
            }
            (grid_points(args.grid, d, args.range), args.grid)
        }
    };
    let points = z.len() / d;
    let (pixels, ran_on) = decode(vae, &z, Preference::from_name(&args.backend))?;
    let png = tile_png(&pixels, cols, side)?;
    atomic_write(&args.out, &png).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("wrote {} ({points} points, {ran_on} backend)", args.out.display());
    Ok(())
}

/// Decodes `z` where the policy says: the pixels, and "gpu" or "cpu". A GPU asked for by name
/// that cannot be had is an error; otherwise the CPU takes over and stderr says why.
fn decode(vae: Vae, z: &[f32], preference: Preference) -> Result<(Vec<f32>, &'static str), String> {
    let b = Backend::new(vae, preference, backend::system_clock());
    pollster::block_on(async {
        let started = b.start_gpu().await;
        let why = || b.note().map(|(cause, detail)| format!("{}: {detail}", cause.code())).unwrap_or_default();
        match (started, preference) {
            (true, _) => eprintln!("{}", b.describe()),
            (false, Preference::Gpu) => {
                return Err(format!("{}; try --backend cpu", b.note().map(|(_, detail)| detail).unwrap_or_default()))
            }
            (false, Preference::Auto) => eprintln!("{} ({})", b.describe(), why()),
            (false, Preference::Cpu) => {}
        }
        let pixels = b.decode(z).await.map_err(|e| e.to_string())?;
        if started && !b.uses_gpu() {
            eprintln!("the GPU failed, so the CPU decoded instead ({})", why());
        }
        Ok((pixels, if b.uses_gpu() { "gpu" } else { "cpu" }))
    })
}

/// Grid points, row-major from the top-left: x grows to the right, y grows upwards. Only the
/// first two latent dimensions vary; the rest stay 0.
pub fn grid_points(n: usize, latent: usize, range: Option<f32>) -> Vec<f32> {
    let coord = |i: usize| match range {
        Some(r) if n > 1 => -r + 2.0 * r * i as f32 / (n - 1) as f32,
        Some(_) => 0.0,
        // Evenly spaced probabilities through the inverse CDF of the prior, as in the paper.
        None => inverse_normal_cdf((i as f64 + 0.5) / n as f64) as f32,
    };
    let mut z = Vec::with_capacity(n * n * latent);
    for row in 0..n {
        for col in 0..n {
            let mut p = vec![0.0f32; latent];
            p[0] = coord(col);
            if latent > 1 {
                p[1] = coord(n - 1 - row);
            }
            z.extend(p);
        }
    }
    z
}

/// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
/// The coefficients are quoted as published.
#[allow(clippy::excessive_precision)]
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] =
        [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.383577518672690e2, -3.066479806614716e1, 2.506628277459239];
    const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] =
        [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -inverse_normal_cdf(1.0 - p)
    }
}

/// Tiles `n` side x side images (pixel means in [0, 1]) into a grey PNG, `cols` per row.
fn tile_png(pixels: &[f32], cols: usize, side: usize) -> Result<Vec<u8>, String> {
    let n = pixels.len() / (side * side);
    let rows = n.div_ceil(cols);
    let (w, h) = (cols * side, rows * side);
    let mut img = vec![0u8; w * h];
    for (i, digit) in pixels.chunks_exact(side * side).enumerate() {
        let (gy, gx) = (i / cols, i % cols);
        for y in 0..side {
            for x in 0..side {
                img[(gy * side + y) * w + gx * side + x] = (digit[y * side + x].clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&img).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn bench(vae: &Vae, batches: &[usize], options: EngineOptions) -> Result<(), String> {
    let d = vae.arch().latent;
    let engine = pollster::block_on(GpuEngine::new(vae, options));
    // Multiply-adds per decoded point, twice: the FLOPs the GPU time is divided into.
    let lay = vae.layout();
    let flops_per_point: usize = lay.decoder.iter().map(|&i| 2 * lay.layers[i].n_in * lay.layers[i].n_out).sum();
    match &engine {
        Ok(e) => println!(
            "GPU adapter: {}{}",
            e.adapter_name(),
            if e.has_timer() { "" } else { " (no timestamp queries: GPU time not measured)" }
        ),
        Err(e) => println!("GPU unavailable: {e}"),
    }
    println!("{:<5} {:>6} {:>12} {:>12} {:>14} {:>14} {:>9}", "", "batch", "p50 ms", "p95 ms", "points/s", "GPU time ms", "TFLOP/s");
    for &batch in batches {
        if batch == 0 {
            return Err("--batches sizes must be at least 1".into());
        }
        let z: Vec<f32> = (0..batch * d).map(|i| rng::normal(7, (i / d) as u32, (i % d) as u32)).collect();
        // CPU reference (all cores through rayon).
        let mut times = Vec::new();
        let t_end = Instant::now();
        while times.len() < 20 || (t_end.elapsed().as_secs_f64() < 1.0 && times.len() < 2000) {
            let t = Instant::now();
            std::hint::black_box(vae.decode(&z).map_err(|e| e.to_string())?);
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        report("cpu", batch, &mut times, None, 0.0);
        if let Ok(engine) = &engine {
            let mut times = Vec::new();
            let mut gpu = Vec::new();
            for _ in 0..3 {
                pollster::block_on(engine.decode_timed(&z)).map_err(|e| e.to_string())?;
            }
            let t_end = Instant::now();
            while times.len() < 10 || (t_end.elapsed().as_secs_f64() < 2.0 && times.len() < 1000) {
                let t = Instant::now();
                let (_, ms) = pollster::block_on(engine.decode_timed(&z)).map_err(|e| e.to_string())?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
                gpu.extend(ms);
            }
            gpu.sort_by(|a, b| a.total_cmp(b));
            report("gpu", batch, &mut times, (!gpu.is_empty()).then(|| percentile(&gpu, 0.5)), (batch * flops_per_point) as f64);
        }
    }
    println!(
        "(latency is wall time per decode call including upload and readback; GPU time is the median of the compute pass's timestamps)"
    );
    Ok(())
}

/// One line of the table; `flops` of the decode give TFLOP/s from the GPU time.
fn report(backend: &str, batch: usize, times: &mut [f64], gpu_ms: Option<f64>, flops: f64) {
    times.sort_by(|a, b| a.total_cmp(b));
    let p50 = percentile(times, 0.5);
    let gpu = gpu_ms.map(|g| format!("{g:.4}")).unwrap_or_else(|| "-".into());
    let tflops = gpu_ms.filter(|g| *g > 0.0).map(|g| format!("{:.2}", flops / (g * 1e-3) / 1e12)).unwrap_or_else(|| "-".into());
    println!(
        "{backend:<5} {batch:>6} {p50:>12.4} {:>12.4} {:>14.0} {gpu:>14} {tflops:>9}",
        percentile(times, 0.95),
        batch as f64 / (p50 / 1e3)
    );
}
