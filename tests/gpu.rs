//! Every GPU path against the CPU reference, on whatever adapter wgpu finds (Mesa lavapipe on
//! machines without a GPU; tests/setup.sh installs it).

mod common;

use std::sync::OnceLock;

use latent_explorer::gpu::{DigitTarget, DigitView, EngineOptions, GpuBatch, GpuEngine};
use latent_explorer::model::reparameterize;
use latent_explorer::{rng, weights, Architecture, Vae};

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
    latent_points_in(2, n, seed)
}

fn latent_points_in(d: usize, n: usize, seed: u32) -> Vec<f32> {
    (0..n * d).map(|i| 1.5 * rng::normal(seed, (i / d) as u32, (i % d) as u32)).collect()
}

#[test]
fn the_pipelines_build_with_the_constants_rust_gives_the_shaders() {
    // dense.wgsl and sampler.wgsl declare their overrides (rows per invocation, workgroup size,
    // activation codes) without defaults: a value the engine does not give, or one a shader does
    // not declare, fails building the pipelines, and so the engine.
    for (name, vae) in [("shipped", vae()), ("odd widths", odd_vae())] {
        if let Err(e) = pollster::block_on(GpuEngine::new(vae, EngineOptions::default())) {
            panic!("{name} model: {e}");
        }
    }
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
    let (mu, logvar) = common::gaussian(pollster::block_on(capped.encode(&images)).unwrap());
    let (cmu, clv) = common::gaussian(vae().encode(&images).unwrap());
    assert!(max_abs_diff(&mu, &cmu) <= 1e-4 && max_abs_diff(&logvar, &clv) <= 1e-4);
}

#[test]
fn encoder_matches_the_cpu_reference_on_test_images() {
    let data = common::mnist();
    for (start, n) in [(0, 1), (17, 7), (1000, 1024)] {
        let images = latent_explorer::dataset::to_intensities(&data.test_images[start * 784..(start + n) * 784]);
        let (mu, logvar) = common::gaussian(pollster::block_on(engine().encode(&images)).unwrap());
        let (cmu, clv) = common::gaussian(vae().encode(&images).unwrap());
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
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - 0.5 * r
    } else {
        0.5 * r
    }
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
    let worst = eps.iter().enumerate().map(|(t, &g)| (g - rng::normal(31337, (t / 2) as u32, (t % 2) as u32)).abs()).fold(0.0, f32::max);
    eprintln!("max |gpu - cpu| over 1e6 draws: {worst:.2e}");
    assert!(worst <= 1e-5, "GPU and CPU generators differ by {worst}");
}

#[test]
fn sample_and_decode_matches_reparameterize_then_decode_on_the_cpu() {
    let images = latent_explorer::dataset::to_intensities(&common::mnist().test_images[..3 * 784]);
    let (mu, logvar) = common::gaussian(vae().encode(&images).unwrap());
    let (zs, pixels) = pollster::block_on(engine().sample_and_decode(&mu, &logvar, 16, 5)).unwrap();
    let cz = reparameterize(&mu, &logvar, 2, 16, 5, 0);
    assert!(max_abs_diff(&zs, &cz) <= 1e-5, "samples differ by {}", max_abs_diff(&zs, &cz));
    let diff = max_abs_diff(&pixels, &vae().decode(&cz).unwrap());
    assert!(diff <= 1e-4, "decoded samples differ by {diff}");
}

/// The page's ELBO display draws its K samples with the GPU sampler; `elbo` must use the very
/// same z for the same image, K and seed.
#[test]
fn the_elbo_uses_the_gpu_samplers_noise() {
    let x = latent_explorer::dataset::to_intensities(&common::mnist().test_images[784..2 * 784]);
    let terms = latent_explorer::elbo::elbo(vae(), &x, 12, 9).unwrap();
    let (zs, _) = pollster::block_on(engine().sample_and_decode(&terms.mu, terms.logvar.as_deref().expect("a VAE"), 12, 9)).unwrap();
    assert!(max_abs_diff(&zs, &terms.z) <= 1e-5, "the ELBO's samples differ from the sampler's by {}", max_abs_diff(&zs, &terms.z));
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

fn digit_target(engine: &GpuEngine, width: u32, height: u32) -> wgpu::Texture {
    engine.device().create_texture(&wgpu::TextureDescriptor {
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
fn read_red(engine: &GpuEngine, texture: &wgpu::Texture) -> Vec<u8> {
    let (device, queue) = (engine.device(), engine.queue());
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

/// Largest difference in 1/255 steps between a drawn digit and the CPU decode `want` (a side x
/// side image), each model pixel covering a (w/side x h/side) block of the target.
fn drawn_vs_cpu(shown: &[u8], want: &[f32], w: usize, h: usize) -> i32 {
    let side = (want.len() as f64).sqrt() as usize;
    assert_eq!(side * side, want.len());
    let mut worst = 0;
    for y in 0..h {
        for x in 0..w {
            let expected = (want[(y * side / h) * side + x * side / w] * 255.0).round() as i32;
            worst = worst.max((shown[y * w + x] as i32 - expected).abs());
        }
    }
    worst
}

/// Draws row `row` of `batch` on a new `w x h` target and returns its largest difference from
/// the CPU decode `want`, in 1/255 steps.
fn draw_row(engine: &GpuEngine, view: &DigitView, batch: &GpuBatch, row: usize, (w, h): (u32, u32), want: &[f32]) -> i32 {
    let side = (want.len() as f64).sqrt() as usize;
    let target = digit_target(engine, w, h);
    let mut enc = engine.device().create_command_encoder(&Default::default());
    view.record(engine.device(), &mut enc, batch, row, side, &target.create_view(&Default::default()), (w, h));
    engine.queue().submit([enc.finish()]);
    drawn_vs_cpu(&read_red(engine, &target), want, w as usize, h as usize)
}

#[test]
fn the_render_pass_draws_the_decoded_digit_from_the_gpu_buffer() {
    let z = latent_points(3, 9);
    let batch = pollster::block_on(engine().decode_to_buffer(&z)).unwrap();
    let cpu = vae().decode(&z).unwrap();
    let view = DigitView::new(engine().device(), wgpu::TextureFormat::Rgba8Unorm);
    for (row, (w, h)) in [(0, (28, 28)), (1, (28, 28)), (2, (84, 56))] {
        let worst = draw_row(engine(), &view, &batch, row, (w, h), &cpu[row * 784..(row + 1) * 784]);
        eprintln!("digit {row} drawn at {w}x{h}: max |gpu - cpu| = {worst}/255");
        assert!(worst <= 1, "digit {row} at {w}x{h} differs from the CPU decode by {worst}/255");
    }
}

#[test]
fn draw_digit_decodes_and_draws_one_point_without_a_readback() {
    let view = DigitView::new(engine().device(), wgpu::TextureFormat::Rgba8Unorm);
    let target = digit_target(engine(), 56, 56);
    let on_target = || Ok(DigitTarget { view: target.create_view(&Default::default()), size: (56, 56), frame: None });
    for z in latent_points(2, 21).chunks(2) {
        pollster::block_on(engine().draw_digit(z, &view, on_target)).unwrap();
        let worst = drawn_vs_cpu(&read_red(engine(), &target), &vae().decode(z).unwrap(), 56, 56);
        assert!(worst <= 1, "z {z:?}: drawn digit differs from the CPU decode by {worst}/255");
    }
    // More than one point is refused, not drawn.
    let err = pollster::block_on(engine().draw_digit(&[0.0; 4], &view, on_target)).unwrap_err();
    assert!(err.to_string().contains("latent point"), "{err}");
}

#[test]
fn the_drag_path_draws_each_point_with_buffers_made_once() {
    let view = DigitView::new(engine().device(), wgpu::TextureFormat::Rgba8Unorm);
    let target = digit_target(engine(), 56, 56);
    let path = engine().drag_path(&view, (56, 56)).unwrap();
    for z in latent_points(5, 33).chunks(2) {
        let on_target = || Ok(DigitTarget { view: target.create_view(&Default::default()), size: (56, 56), frame: None });
        engine().draw_digit_now(&path, &view, z, on_target).unwrap();
        let worst = drawn_vs_cpu(&read_red(engine(), &target), &vae().decode(z).unwrap(), 56, 56);
        assert!(worst <= 1, "z {z:?}: the drag path's digit differs from the CPU decode by {worst}/255");
    }
    let on_target = || Ok(DigitTarget { view: target.create_view(&Default::default()), size: (56, 56), frame: None });
    let err = engine().draw_digit_now(&path, &view, &[0.0; 3], on_target).unwrap_err();
    assert!(err.to_string().contains("latent point"), "{err}");
}

#[test]
fn a_failed_drag_draw_is_reported_by_the_next_call_not_awaited() {
    // Its own engine: the error it provokes stays recorded on the device.
    let engine = engine_with(EngineOptions::default());
    let view = DigitView::new(engine.device(), wgpu::TextureFormat::Rgba8Unorm);
    let path = engine.drag_path(&view, (28, 28)).unwrap();
    // A target of another format than the view's pipeline: a validation error, which no scope
    // catches on the drag path.
    let wrong = engine.device().create_texture(&wgpu::TextureDescriptor {
        label: Some("wrong format"),
        size: wgpu::Extent3d { width: 28, height: 28, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba16Float,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
        view_formats: &[],
    });
    let on_wrong = || Ok(DigitTarget { view: wrong.create_view(&Default::default()), size: (28, 28), frame: None });
    engine.draw_digit_now(&path, &view, &[0.0, 0.0], on_wrong).unwrap();
    engine.device().poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let good = digit_target(&engine, 28, 28);
    let on_good = || Ok(DigitTarget { view: good.create_view(&Default::default()), size: (28, 28), frame: None });
    let err = engine.draw_digit_now(&path, &view, &[0.0, 0.0], on_good).unwrap_err();
    assert!(err.to_string().contains("earlier unchecked draw"), "{err}");
    // Every other call reports it too, so the backend falls back to the CPU.
    assert!(pollster::block_on(engine.decode(&[0.0, 0.0])).is_err());
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
    for (name, extra) in
        [("grid", vec!["--grid", "20"]), ("linear", vec!["--grid", "7", "--range", "3"]), ("point", vec!["--z", "-0.5,1.25"])]
    {
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

// --- A model whose widths are not multiples of 4 -------------------------------------------

/// 5x5 = 25 outputs, hidden 13 and 7, latent 3: no width is a multiple of 4, so every GPU row
/// carries vec4 padding. Weights are scaled up so that pixels differ from one another and a
/// row read from the wrong offset shows.
fn odd_vae() -> &'static Vae {
    static V: OnceLock<Vae> = OnceLock::new();
    V.get_or_init(|| {
        let mut v = Vae::init(Architecture::mirrored(25, &[13, 7], 3), 5).unwrap();
        v.params_mut().iter_mut().for_each(|p| *p *= 3.0);
        v
    })
}

fn odd_engine_with(options: EngineOptions) -> GpuEngine {
    pollster::block_on(GpuEngine::new(odd_vae(), options)).unwrap()
}

fn odd_engine() -> &'static GpuEngine {
    static E: OnceLock<GpuEngine> = OnceLock::new();
    E.get_or_init(|| odd_engine_with(EngineOptions::default()))
}

/// `n` 5x5 images of intensities in [0, 1).
fn odd_images(n: usize, seed: u32) -> Vec<f32> {
    (0..n * 25).map(|i| (rng::pcg3d(seed, i as u32, 0)[0] >> 8) as f32 / 16_777_216.0).collect()
}

/// Checks decode, decode_to_buffer + read_batch, encode, sample and sample_and_decode of the
/// odd model on `e` against the CPU reference, tensor by tensor: the largest error seen.
fn odd_paths_match_the_cpu(e: &GpuEngine, n: usize, k: usize, what: &str) -> f32 {
    let v = odd_vae();
    let z = latent_points_in(3, n, n as u32);
    let cpu = v.decode(&z).unwrap();
    let decoded = pollster::block_on(e.decode(&z)).unwrap();
    let d_decode = max_abs_diff(&decoded, &cpu);
    let mut worst = d_decode;
    if n * 28 * 4 <= e.device().limits().max_buffer_size as usize {
        let batch = pollster::block_on(e.decode_to_buffer(&z)).unwrap();
        assert_eq!((batch.rows, batch.width, batch.stride), (n, 25, 28));
        let read = pollster::block_on(e.read_batch(&batch)).unwrap();
        worst = worst.max(max_abs_diff(&read, &cpu));
    }
    let images = odd_images(n, 3);
    let (mu, logvar) = common::gaussian(pollster::block_on(e.encode(&images)).unwrap());
    let (cmu, clv) = common::gaussian(v.encode(&images).unwrap());
    let (d_mu, d_lv) = (max_abs_diff(&mu, &cmu), max_abs_diff(&logvar, &clv));
    let zs = pollster::block_on(e.sample(&cmu, &clv, k, 17)).unwrap();
    let czs = reparameterize(&cmu, &clv, 3, k, 17, 0);
    let d_sample = max_abs_diff(&zs, &czs);
    let (zs2, pixels) = pollster::block_on(e.sample_and_decode(&cmu, &clv, k, 23)).unwrap();
    let czs2 = reparameterize(&cmu, &clv, 3, k, 23, 0);
    let d_z2 = max_abs_diff(&zs2, &czs2);
    let d_px = max_abs_diff(&pixels, &v.decode(&czs2).unwrap());
    eprintln!("{what}: n {n}, k {k}: max |gpu - cpu| decode {d_decode:.2e}, mu {d_mu:.2e}, logvar {d_lv:.2e}, sample {d_sample:.2e}, sample_and_decode z {d_z2:.2e} pixels {d_px:.2e}");
    assert!(worst <= 1e-4, "{what}: decoded pixels differ by {worst}");
    assert!(d_mu <= 1e-4 && d_lv <= 1e-4, "{what}: mu {d_mu}, logvar {d_lv}");
    assert!(d_sample <= 1e-5 && d_z2 <= 1e-5, "{what}: samples differ by {d_sample}, {d_z2}");
    assert!(d_px <= 1e-4, "{what}: decoded samples differ by {d_px}");
    worst.max(d_mu).max(d_lv).max(d_px)
}

#[test]
fn odd_widths_match_the_cpu_reference_on_every_path() {
    for (n, k) in [(1, 1), (7, 3), (33, 5)] {
        odd_paths_match_the_cpu(odd_engine(), n, k, "odd widths");
    }
}

#[test]
fn odd_widths_digit_view_draws_every_row_of_a_batch() {
    let e = odd_engine();
    let z = latent_points_in(3, 3, 41);
    let cpu = odd_vae().decode(&z).unwrap();
    let batch = pollster::block_on(e.decode_to_buffer(&z)).unwrap();
    let view = DigitView::new(e.device(), wgpu::TextureFormat::Rgba8Unorm);
    for (row, size) in [(0, (5, 5)), (1, (5, 5)), (2, (20, 15))] {
        let worst = draw_row(e, &view, &batch, row, size, &cpu[row * 25..(row + 1) * 25]);
        eprintln!("odd digit {row} drawn at {size:?}: max |gpu - cpu| = {worst}/255");
        assert!(worst <= 1, "odd digit {row} at {size:?} differs from the CPU decode by {worst}/255");
    }
    let target = digit_target(e, 10, 10);
    let on_target = || Ok(DigitTarget { view: target.create_view(&Default::default()), size: (10, 10), frame: None });
    pollster::block_on(e.draw_digit(&z[3..6], &view, on_target)).unwrap();
    let worst = drawn_vs_cpu(&read_red(e, &target), &cpu[25..50], 10, 10);
    assert!(worst <= 1, "draw_digit on the odd model differs from the CPU decode by {worst}/255");
}

// --- Batches larger than the device's bindings ----------------------------------------------

/// The device's own limits with the largest storage binding and buffer lowered: the device
/// then rejects any binding or buffer above them, as a smaller GPU would.
fn lowered_limits(binding: u64, buffer: u64) -> wgpu::Limits {
    let mut limits = engine().device().limits();
    limits.max_storage_buffer_binding_size = binding;
    limits.max_buffer_size = buffer;
    limits
}

#[test]
fn large_batches_stay_within_a_lowered_binding_limit() {
    // 2 MiB bindings (the largest weights, 784 x 512, take 1.6 MB) and 8 MiB buffers: 668 rows
    // of 784 pixels per binding, so every batch below is split, the last chunk partial.
    const BINDING: u64 = 2 << 20;
    let options = EngineOptions { limits_override: Some(lowered_limits(BINDING, 8 << 20)), ..Default::default() };
    let e = engine_with(options);
    assert_eq!(e.device().limits().max_storage_buffer_binding_size, BINDING);
    assert!((e.max_rows_per_dispatch() * 784 * 4) as u64 <= BINDING);

    let z = latent_points(1500, 77);
    let cpu = vae().decode(&z).unwrap();
    let d_decode = max_abs_diff(&pollster::block_on(e.decode(&z)).unwrap(), &cpu);
    // One 4.7 MB buffer for the page, more than one binding: read back, and its last digit drawn.
    let batch = pollster::block_on(e.decode_to_buffer(&z)).unwrap();
    assert!(batch.buffer.size() > BINDING);
    let d_batch = max_abs_diff(&pollster::block_on(e.read_batch(&batch)).unwrap(), &cpu);
    let view = DigitView::new(e.device(), wgpu::TextureFormat::Rgba8Unorm);
    let drawn = draw_row(&e, &view, &batch, 1499, (28, 28), &cpu[1499 * 784..]);

    let images = latent_explorer::dataset::to_intensities(&common::mnist().test_images[..1500 * 784]);
    let (mu, logvar) = common::gaussian(pollster::block_on(e.encode(&images)).unwrap());
    let (cmu, clv) = common::gaussian(vae().encode(&images).unwrap());
    let (d_mu, d_lv) = (max_abs_diff(&mu, &cmu), max_abs_diff(&logvar, &clv));

    // 100 items x 16 samples: chunks end inside an item's samples.
    let (m, lv) = (&cmu[..200], &clv[..200]);
    let (zs, pixels) = pollster::block_on(e.sample_and_decode(m, lv, 16, 5)).unwrap();
    let cz = reparameterize(m, lv, 2, 16, 5, 0);
    let d_z = max_abs_diff(&zs, &cz);
    let d_px = max_abs_diff(&pixels, &vae().decode(&cz).unwrap());
    // 300k samples (2.4 MB of z) from the sampler alone.
    let d_sample = max_abs_diff(&pollster::block_on(e.sample(m, lv, 3000, 9)).unwrap(), &reparameterize(m, lv, 2, 3000, 9, 0));

    eprintln!("2 MiB bindings: max |gpu - cpu| decode {d_decode:.2e}, read_batch {d_batch:.2e}, drawn {drawn}/255, mu {d_mu:.2e}, logvar {d_lv:.2e}, sample_and_decode z {d_z:.2e} pixels {d_px:.2e}, sample {d_sample:.2e}");
    assert!(d_decode <= 1e-4 && d_batch <= 1e-4, "decode {d_decode}, read_batch {d_batch}");
    assert!(drawn <= 1, "last digit drawn {drawn}/255 off");
    assert!(d_mu <= 1e-4 && d_lv <= 1e-4, "mu {d_mu}, logvar {d_lv}");
    assert!(d_z <= 1e-5 && d_px <= 1e-4 && d_sample <= 1e-5, "z {d_z}, pixels {d_px}, sample {d_sample}");
}

#[test]
fn tiny_device_limits_split_every_path_of_the_odd_model() {
    // 2 KiB bindings, 4 KiB buffers: 18 rows of 28 floats per chunk; 200 items of stats
    // (4.8 KB) and 600 samples are split too.
    let options = EngineOptions { limits_override: Some(lowered_limits(2048, 4096)), ..Default::default() };
    let e = odd_engine_with(options);
    assert_eq!(e.max_rows_per_dispatch(), 2048 / (28 * 4));
    odd_paths_match_the_cpu(&e, 200, 3, "2 KiB limits");
    // A batch for the page must fit in one buffer: larger ones are an error, not a panic.
    assert!(pollster::block_on(e.decode_to_buffer(&latent_points_in(3, 100, 1))).is_err());
    // A batch of two chunks, gathered into one buffer larger than a binding, still draws its
    // last digit.
    let z = latent_points_in(3, 18 + 5, 8);
    let cpu = odd_vae().decode(&z).unwrap();
    let batch = pollster::block_on(e.decode_to_buffer(&z)).unwrap();
    assert!(batch.buffer.size() > 2048);
    assert!(max_abs_diff(&pollster::block_on(e.read_batch(&batch)).unwrap(), &cpu) <= 1e-4);
    let view = DigitView::new(e.device(), wgpu::TextureFormat::Rgba8Unorm);
    let drawn = draw_row(&e, &view, &batch, 22, (5, 5), &cpu[22 * 25..]);
    assert!(drawn <= 1, "last odd digit drawn {drawn}/255 off");
}

#[test]
fn large_batches_on_the_tiled_product_match_the_cpu_reference() {
    // GPUs decode and encode batches of 64 rows or more with matmul.wgsl's tiled kernel; forced
    // here on whatever adapter runs the tests. 1000 points in chunks of 300 (the last 100) and
    // 1030 in chunks of 100 (the last 30 on the dense kernel): no size a multiple of a tile.
    for (n, cap) in [(1000, 300), (1030, 100), (4096, 4096)] {
        let e = engine_with(EngineOptions {
            max_rows_per_dispatch: Some(cap),
            matmul: Some(latent_explorer::gpu::MatmulKernel::Tiled),
            ..Default::default()
        });
        let z = latent_points(n, n as u32);
        let diff = max_abs_diff(&pollster::block_on(e.decode(&z)).unwrap(), &vae().decode(&z).unwrap());
        eprintln!("tiled decode of {n} in chunks of {cap}: max |gpu - cpu| = {diff:.2e}");
        assert!(diff <= 1e-4, "tiled decode of {n}: max abs difference {diff}");
        let images = latent_explorer::dataset::to_intensities(&common::mnist().test_images[..n.min(1000) * 784]);
        let (mu, logvar) = common::gaussian(pollster::block_on(e.encode(&images)).unwrap());
        let (cmu, clv) = common::gaussian(vae().encode(&images).unwrap());
        let (dm, dl) = (max_abs_diff(&mu, &cmu), max_abs_diff(&logvar, &clv));
        assert!(dm <= 1e-4 && dl <= 1e-4, "tiled encode of {n}: mu {dm}, logvar {dl}");
    }
    // Widths that are not whole vec4s (13, 7, 25 outputs): the padded rows between layers.
    let options = EngineOptions { matmul: Some(latent_explorer::gpu::MatmulKernel::Tiled), ..Default::default() };
    let e = pollster::block_on(GpuEngine::new(odd_vae(), options)).unwrap();
    let z = latent_points_in(3, 300, 5);
    let diff = max_abs_diff(&pollster::block_on(e.decode(&z)).unwrap(), &odd_vae().decode(&z).unwrap());
    assert!(diff <= 1e-4, "tiled decode, odd widths: max abs difference {diff}");
}
