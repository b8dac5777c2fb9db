//! Every GPU path against the CPU reference, on whatever adapter wgpu finds (Mesa lavapipe on
//! machines without a GPU; tests/setup.sh installs it).

mod common;

use std::sync::OnceLock;

use latent_explorer::gpu::{DigitTarget, EngineOptions, GpuEngine};
use latent_explorer::model::reparameterize;
use latent_explorer::{rng, weights, Vae};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/mnist-2d.safetensors");

fn vae() -> &'static Vae {
    static V: OnceLock<Vae> = OnceLock::new();
    V.get_or_init(|| weights::from_bytes(&std::fs::read(SHIPPED).unwrap()).unwrap().vae)
}

fn engine_with(options: EngineOptions) -> GpuEngine {
    pollster::block_on(GpuEngine::new(vae(), options)).unwrap_or_else(|e| {
        panic!("{e}: the GPU tests need a wgpu adapter; on Debian without a GPU install Mesa's lavapipe (apt-get install mesa-vulkan-drivers libvulkan1; tests/setup.sh does)")
    })
}

fn engine() -> &'static GpuEngine {
    static E: OnceLock<GpuEngine> = OnceLock::new();
    E.get_or_init(|| {
        let e = engine_with(EngineOptions::default());
        eprintln!("GPU adapter: {}", e.adapter_name());
        e
    })
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Latent points spread over the region the page shows (|z| up to about 4).
fn latent_points(n: usize, seed: u32) -> Vec<f32> {
    (0..n * 2).map(|i| 1.5 * rng::normal(seed, (i / 2) as u32, (i % 2) as u32)).collect()
}

#[test]
fn decoder_matches_the_cpu_reference_for_batches_1_7_and_1024() {
    for batch in [1, 7, 1024] {
        let z = latent_points(batch, batch as u32);
        let gpu = pollster::block_on(engine().decode(&z)).unwrap();
        let cpu = vae().decode(&z).unwrap();
        let diff = max_abs_diff(&gpu, &cpu);
        eprintln!("batch {batch}: max |gpu - cpu| = {diff:.2e}");
        assert!(diff <= 1e-4, "batch {batch}: max abs difference {diff}");
    }
}

#[test]
fn batches_above_one_dispatch_are_split_not_rejected() {
    // The device's own limit needs ~260k rows per dispatch; a cap of 100 rows exercises the same
    // splitting on a batch of 1030 (11 chunks, the last one partial).
    let capped = engine_with(EngineOptions { max_rows_per_dispatch: Some(100), ..Default::default() });
    assert_eq!(capped.max_rows_per_dispatch(), 100);
    assert!(engine().max_rows_per_dispatch() >= 1024);
    let z = latent_points(1030, 99);
    let gpu = pollster::block_on(capped.decode(&z)).unwrap();
    let diff = max_abs_diff(&gpu, &vae().decode(&z).unwrap());
    assert!(diff <= 1e-4, "split batch: max abs difference {diff}");
    let images = latent_explorer::dataset::to_intensities(&common::mnist().test_images[..250 * 784]);
    let (mu, logvar) = pollster::block_on(capped.encode(&images)).unwrap();
    let (cmu, clv) = vae().encode(&images).unwrap();
    assert!(max_abs_diff(&mu, &cmu) <= 1e-4 && max_abs_diff(&logvar, &clv) <= 1e-4);
}

#[test]
fn encoder_matches_the_cpu_reference_on_test_images() {
    let data = common::mnist();
    for (start, n) in [(0, 1), (17, 7), (1000, 1024)] {
        let images = latent_explorer::dataset::to_intensities(&data.test_images[start * 784..(start + n) * 784]);
        let (mu, logvar) = pollster::block_on(engine().encode(&images)).unwrap();
        let (cmu, clv) = vae().encode(&images).unwrap();
        let (dm, dl) = (max_abs_diff(&mu, &cmu), max_abs_diff(&logvar, &clv));
        eprintln!("encode {n}: max |gpu - cpu| mu {dm:.2e}, logvar {dl:.2e}");
        assert!(dm <= 1e-4 && dl <= 1e-4, "{n} images: mu {dm}, logvar {dl}");
    }
}

#[test]
fn wrong_input_sizes_are_errors_not_panics() {
    assert!(pollster::block_on(engine().decode(&[0.5, 0.5, 0.5])).is_err());
    assert!(pollster::block_on(engine().encode(&[0.0; 100])).is_err());
    assert!(pollster::block_on(engine().sample(&[0.0, 0.0], &[0.0], 3, 1)).is_err());
}

/// 1e6 standard normal draws from the GPU sampler (mu = 0, logvar = 0, so z = eps).
fn gpu_eps(seed: u32) -> Vec<f32> {
    let n = 500_000; // x 2 dimensions
    pollster::block_on(engine().sample(&vec![0.0; 2 * n], &vec![0.0; 2 * n], 1, seed)).unwrap()
}

fn phi(x: f64) -> f64 {
    // erfc by Numerical Recipes' Chebyshev fit (fractional error < 1.2e-7).
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * (-z * z - 1.26551223
        + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
        .exp();
    if x >= 0.0 { 1.0 - 0.5 * r } else { 0.5 * r }
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().map(|&v| v as f64).sum::<f64>() / n, b.iter().map(|&v| v as f64).sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

#[test]
fn the_gpu_sampler_draws_standard_normals() {
    let eps = gpu_eps(2024);
    let n = eps.len() as f64;
    let mean = eps.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = eps.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    // Standard errors at n = 1e6: 0.001 (mean) and 0.0014 (variance); allow 5 of them.
    assert!(mean.abs() < 0.005, "mean {mean}");
    assert!((var - 1.0).abs() < 0.0071, "variance {var}");

    // Kolmogorov-Smirnov against the normal CDF; 1.95 / sqrt(n) is the 0.1% critical value.
    let mut sorted: Vec<f64> = eps.iter().map(|&v| v as f64).collect();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let d = sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = phi(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max);
    eprintln!("mean {mean:.5}, variance {var:.5}, KS D = {d:.5} (critical {:.5})", 1.95 / n.sqrt());
    assert!(d < 1.95 / n.sqrt(), "KS statistic {d}");

    // Neighbouring dimensions of one sample, and the same dimension of neighbouring samples.
    let (d0, d1): (Vec<f32>, Vec<f32>) = eps.chunks_exact(2).map(|p| (p[0], p[1])).unzip();
    let bound = 5.0 / (d0.len() as f64).sqrt();
    let r_dims = correlation(&d0, &d1);
    let r_samples = correlation(&d0[..d0.len() - 1], &d0[1..]);
    eprintln!("correlation: dims {r_dims:.5}, neighbouring samples {r_samples:.5} (bound {bound:.5})");
    assert!(r_dims.abs() < bound && r_samples.abs() < bound);
    // Squares too: Box-Muller pairs that shared a radius would correlate here.
    let sq = |v: &[f32]| v.iter().map(|x| x * x).collect::<Vec<f32>>();
    assert!(correlation(&sq(&d0), &sq(&d1)).abs() < bound);
}

#[test]
fn same_seed_same_bits_other_seed_independent_stream() {
    let a = gpu_eps(7);
    let b = gpu_eps(7);
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "same seed gave different samples");
    let c = gpu_eps(8);
    let r = correlation(&a, &c);
    assert!(r.abs() < 5.0 / (a.len() as f64).sqrt(), "seeds 7 and 8 correlate: {r}");
    assert!(a.iter().zip(&c).filter(|(x, y)| x == y).count() < 10);
}

#[test]
fn gpu_and_cpu_generators_agree() {
    let eps = gpu_eps(31337);
    let worst = eps
        .iter()
        .enumerate()
        .map(|(t, &g)| (g - rng::normal(31337, (t / 2) as u32, (t % 2) as u32)).abs())
        .fold(0.0, f32::max);
    eprintln!("max |gpu - cpu| over 1e6 draws: {worst:.2e}");
    assert!(worst <= 1e-5, "GPU and CPU generators differ by {worst}");
}

#[test]
fn sample_and_decode_matches_reparameterize_then_decode_on_the_cpu() {
    let images = latent_explorer::dataset::to_intensities(&common::mnist().test_images[..3 * 784]);
    let (mu, logvar) = vae().encode(&images).unwrap();
    let (zs, pixels) = pollster::block_on(engine().sample_and_decode(&mu, &logvar, 16, 5)).unwrap();
    let cz = reparameterize(&mu, &logvar, 2, 16, 5, 0);
    assert!(max_abs_diff(&zs, &cz) <= 1e-5, "samples differ by {}", max_abs_diff(&zs, &cz));
    let diff = max_abs_diff(&pixels, &vae().decode(&cz).unwrap());
    assert!(diff <= 1e-4, "decoded samples differ by {diff}");
}

#[test]
fn decoding_into_a_gpu_buffer_needs_no_readback_until_asked() {
    let z = latent_points(5, 3);
    let batch = pollster::block_on(engine().decode_to_buffer(&z)).unwrap();
    assert_eq!((batch.rows, batch.width), (5, 784));
    assert!(batch.buffer.usage().contains(wgpu::BufferUsages::STORAGE));
    let pixels = pollster::block_on(engine().read_batch(&batch)).unwrap();
    assert!(max_abs_diff(&pixels, &vae().decode(&z).unwrap()) <= 1e-4);
}

fn digit_target(width: u32, height: u32) -> wgpu::Texture {
    engine().device().create_texture(&wgpu::TextureDescriptor {
        label: Some("digit target"),
        size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

/// The red channel of an RGBA8 texture (a test readback; the page never reads pixels back).
fn read_red(texture: &wgpu::Texture) -> Vec<u8> {
    let (device, queue) = (engine().device(), engine().queue());
    let (width, height) = (texture.width(), texture.height());
    let row_bytes = (width * 4).div_ceil(256) * 256;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("digit readback"),
        size: (row_bytes * height) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &staging,
            layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row_bytes), rows_per_image: Some(height) },
        },
        wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
    );
    queue.submit([enc.finish()]);
    staging.slice(..).map_async(wgpu::MapMode::Read, |r| r.unwrap());
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let data = staging.slice(..).get_mapped_range().unwrap();
    (0..height as usize).flat_map(|y| (0..width as usize).map(move |x| (y, x))).map(|(y, x)| data[y * row_bytes as usize + 4 * x]).collect()
}

/// Largest difference in 1/255 steps between a drawn digit and the CPU decode `want`, each
/// model pixel covering a (w/28 x h/28) block of the target.
fn drawn_vs_cpu(shown: &[u8], want: &[f32], w: usize, h: usize) -> i32 {
    let mut worst = 0;
    for y in 0..h {
        for x in 0..w {
            let expected = (want[(y * 28 / h) * 28 + x * 28 / w] * 255.0).round() as i32;
            worst = worst.max((shown[y * w + x] as i32 - expected).abs());
        }
    }
    worst
}

#[test]
fn the_render_pass_draws_the_decoded_digit_from_the_gpu_buffer() {
    use latent_explorer::digit_view::DigitView;
    let z = latent_points(3, 9);
    let batch = pollster::block_on(engine().decode_to_buffer(&z)).unwrap();
    let cpu = vae().decode(&z).unwrap();
    let view = DigitView::new(engine().device(), wgpu::TextureFormat::Rgba8Unorm);
    for (row, (w, h)) in [(0, (28, 28)), (1, (28, 28)), (2, (84, 56))] {
        let target = digit_target(w, h);
        let mut enc = engine().device().create_command_encoder(&Default::default());
        view.record(engine().device(), &mut enc, &batch, row, 28, &target.create_view(&Default::default()), (w, h));
        engine().queue().submit([enc.finish()]);
        let worst = drawn_vs_cpu(&read_red(&target), &cpu[row * 784..(row + 1) * 784], w as usize, h as usize);
        eprintln!("digit {row} drawn at {w}x{h}: max |gpu - cpu| = {worst}/255");
        assert!(worst <= 1, "digit {row} at {w}x{h} differs from the CPU decode by {worst}/255");
    }
}

#[test]
fn draw_digit_decodes_and_draws_one_point_without_a_readback() {
    use latent_explorer::digit_view::DigitView;
    let view = DigitView::new(engine().device(), wgpu::TextureFormat::Rgba8Unorm);
    let target = digit_target(56, 56);
    let on_target = || Ok(DigitTarget { view: target.create_view(&Default::default()), size: (56, 56), frame: None });
    for z in latent_points(2, 21).chunks(2) {
        pollster::block_on(engine().draw_digit(z, &view, on_target)).unwrap();
        let worst = drawn_vs_cpu(&read_red(&target), &vae().decode(z).unwrap(), 56, 56);
        assert!(worst <= 1, "z {z:?}: drawn digit differs from the CPU decode by {worst}/255");
    }
    // More than one point is refused, not drawn.
    let err = pollster::block_on(engine().draw_digit(&[0.0; 4], &view, on_target)).unwrap_err();
    assert!(err.to_string().contains("latent point"), "{err}");
}

fn read_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn manifold_png_is_the_same_from_the_gpu_and_the_cpu() {
    let dir = common::temp_dir("manifold");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_manifold")).args(["--model", SHIPPED]).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    for (name, extra) in [("grid", vec!["--grid", "20"]), ("linear", vec!["--grid", "7", "--range", "3"]), ("point", vec!["--z", "-0.5,1.25"])] {
        let (g, c) = (dir.join(format!("{name}-gpu.png")), dir.join(format!("{name}-cpu.png")));
        run(&[&extra[..], &["--backend", "gpu", "--out", g.to_str().unwrap()]].concat());
        run(&[&extra[..], &["--backend", "cpu", "--out", c.to_str().unwrap()]].concat());
        let ((w, h, a), (w2, h2, b)) = (read_png(&g), read_png(&c));
        assert_eq!((w, h), (w2, h2));
        let worst = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
        assert!(worst <= 1, "{name}: pixels differ by {worst}/255");
        // Not a blank picture: digits have ink.
        assert!(a.iter().filter(|&&p| p > 128).count() > a.len() / 50, "{name}: almost no ink");
    }
    assert_eq!(read_png(&dir.join("grid-gpu.png")).0, 20 * 28);
    assert_eq!(read_png(&dir.join("point-gpu.png")).0, 28);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_an_adapter_the_cli_says_so_and_points_to_the_cpu_backend() {
    // No Metal on Linux (and no Vulkan on macOS): wgpu finds no adapter for the forced backend.
    let backend = if cfg!(target_os = "macos") { "vulkan" } else { "metal" };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_manifold"))
        .args(["--model", SHIPPED, "--z=0,0", "--out", "/dev/null"])
        .env("WGPU_BACKEND", backend)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no GPU adapter") && err.contains("--backend cpu"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
