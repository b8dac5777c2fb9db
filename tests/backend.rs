//! The GPU-or-CPU policy (`latent_explorer::backend`), the page's and the CLI's, on whatever
//! adapter wgpu finds (Mesa lavapipe on machines without a GPU): the same results on either
//! backend, recovery from a lost device, the CPU fallback, and the timed choice of the faster.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::OnceLock;

use latent_explorer::backend::{system_clock, Backend, Clock, Preference, RACE_SAMPLES, RACE_WARMUP};
use latent_explorer::gpu::FallbackCause;
use latent_explorer::model::reparameterize;
use latent_explorer::{rng, weights, Vae};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/mnist-2d.safetensors");

fn vae() -> Vae {
    static V: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = V.get_or_init(|| std::fs::read(SHIPPED).unwrap());
    weights::from_bytes(bytes).unwrap().vae
}

/// A backend that has started its GPU, as `preference` decides.
fn started(preference: Preference, clock: Clock) -> (Backend, bool) {
    let b = Backend::new(vae(), preference, clock);
    let on_gpu = pollster::block_on(b.start_gpu());
    (b, on_gpu)
}

/// A backend on the GPU; panics with how to get an adapter if there is none.
fn on_gpu() -> Backend {
    let (b, ok) = started(Preference::Gpu, system_clock());
    assert!(ok, "{:?}: these tests need a wgpu adapter; on Debian without a GPU install Mesa's lavapipe (tests/setup.sh does)", b.note());
    b
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn latent_points(n: usize, seed: u32) -> Vec<f32> {
    (0..n * 2).map(|i| 1.5 * rng::normal(seed, (i / 2) as u32, (i % 2) as u32)).collect()
}

/// Decodes, encodes and samples on `b` and checks each against the CPU reference.
fn matches_the_cpu(b: &Backend, what: &str) {
    let cpu = vae();
    let z = latent_points(7, 3);
    let d = max_abs_diff(&pollster::block_on(b.decode(&z)).unwrap(), &cpu.decode(&z).unwrap());
    assert!(d <= 1e-4, "{what}: decode differs by {d}");
    let images = latent_explorer::dataset::to_intensities(&common::mnist().test_images[..3 * 784]);
    let (mu, logvar) = common::gaussian(pollster::block_on(b.encode(&images)).unwrap());
    let (cmu, clv) = common::gaussian(cpu.encode(&images).unwrap());
    let (dm, dl) = (max_abs_diff(&mu, &cmu), max_abs_diff(&logvar, &clv));
    assert!(dm <= 1e-4 && dl <= 1e-4, "{what}: encode differs by mu {dm}, logvar {dl}");
    let (zs, pixels) = pollster::block_on(b.sample_and_decode(&cmu, &clv, 4, 9)).unwrap();
    let cz = reparameterize(&cmu, &clv, 2, 4, 9, 0);
    let (dz, dp) = (max_abs_diff(&zs, &cz), max_abs_diff(&pixels, &cpu.decode(&cz).unwrap()));
    assert!(dz <= 1e-5 && dp <= 1e-4, "{what}: sample_and_decode differs by z {dz}, pixels {dp}");
}

#[test]
fn on_the_gpu_every_path_matches_the_cpu_reference() {
    let b = on_gpu();
    eprintln!("{}", b.describe());
    matches_the_cpu(&b, "GPU");
    assert!(b.uses_gpu() && b.note().is_none(), "the GPU was dropped: {:?}", b.note());
    assert_eq!(b.race(), None, "a GPU asked for by name is not timed");
}

/// An autoencoder (no log-variance head) on either backend: the same means, no log-variances,
/// the same decode.
#[test]
fn a_deterministic_model_encodes_without_logvar_on_either_backend() {
    let arch =
        latent_explorer::Architecture { kind: latent_explorer::ModelKind::Ae, ..latent_explorer::Architecture::mirrored(784, &[33, 9], 2) };
    let ae = Vae::init(arch, 7).unwrap();
    let images = latent_explorer::dataset::to_intensities(&common::mnist().test_images[..5 * 784]);
    let cpu = ae.encode(&images).unwrap();
    assert!(cpu.logvar.is_none());
    for preference in [Preference::Gpu, Preference::Cpu] {
        let b = Backend::new(ae.clone(), preference, system_clock());
        let on_gpu = pollster::block_on(b.start_gpu());
        assert_eq!(on_gpu, preference == Preference::Gpu, "{:?}", b.note());
        let e = pollster::block_on(b.encode(&images)).unwrap();
        assert!(e.logvar.is_none(), "{preference:?}: log-variances from a deterministic encoder");
        let dm = max_abs_diff(&e.mu, &cpu.mu);
        let z = latent_points(5, 8);
        let dd = max_abs_diff(&pollster::block_on(b.decode(&z)).unwrap(), &ae.decode(&z).unwrap());
        assert!(dm <= 1e-4 && dd <= 1e-4, "{preference:?}: mu {dm}, decode {dd}");
    }
}

#[test]
fn bad_input_is_an_error_on_either_backend_and_keeps_the_gpu() {
    let (cpu, _) = started(Preference::Cpu, system_clock());
    for b in [on_gpu(), cpu] {
        assert!(pollster::block_on(b.decode(&[0.5; 3])).is_err());
        assert!(pollster::block_on(b.encode(&[0.0; 100])).is_err());
        assert!(pollster::block_on(b.sample_and_decode(&[0.0, 0.0], &[0.0], 3, 1)).is_err());
        assert!(pollster::block_on(b.sample_and_decode(&[0.0; 3], &[0.0; 3], 3, 1)).is_err());
    }
    let b = on_gpu();
    assert!(pollster::block_on(b.decode(&[0.5; 3])).is_err());
    assert!(b.uses_gpu(), "bad input dropped the GPU: {:?}", b.note());
}

#[test]
fn a_lost_device_is_replaced_and_the_work_redone_on_the_new_one() {
    let b = on_gpu();
    let generation = b.generation();
    for n in 1..=2 {
        b.lose_gpu_for_testing(true);
        matches_the_cpu(&b, "after a lost device");
        assert!(b.uses_gpu(), "fell back instead of recovering: {:?}", b.note());
        assert_eq!(b.recoveries(), n);
        assert_ne!(b.generation(), generation, "a new device must announce itself (surfaces are made again)");
    }
}

#[test]
fn with_recovery_off_a_lost_device_falls_back_to_the_cpu() {
    let b = on_gpu();
    b.lose_gpu_for_testing(false);
    matches_the_cpu(&b, "after the fall back");
    assert!(!b.uses_gpu());
    let (cause, detail) = b.note().expect("a note saying why the CPU is used");
    assert_eq!(cause.code(), "device-lost", "{detail}");
    assert!(detail.contains("lost"), "{detail}");
    assert_eq!(b.recoveries(), 0);
    assert_eq!(b.describe(), "CPU");
}

#[test]
fn requested_cpu_never_opens_a_device() {
    let reads = Rc::new(Cell::new(0));
    let r = reads.clone();
    let (b, on_gpu) = started(
        Preference::Cpu,
        Rc::new(move || {
            r.set(r.get() + 1);
            0.0
        }),
    );
    assert!(!on_gpu && b.gpu().is_none());
    assert_eq!(b.note().map(|(c, _)| c), Some(FallbackCause::RequestedCpu));
    assert_eq!((reads.get(), b.race()), (0, None), "nothing is timed");
    matches_the_cpu(&b, "CPU");
    assert!(b.gpu().is_none());
}

/// A clock under which each timed GPU decode takes `gpu_ms` and each CPU decode `cpu_ms`,
/// whatever they really take. The backend times the GPU's decodes first, then the CPU's, reading
/// the clock just before and after each (not around the warm-ups).
fn scripted_clock(gpu_ms: f64, cpu_ms: f64) -> (Clock, Rc<Cell<usize>>) {
    let reads = Rc::new(Cell::new(0usize));
    let r = reads.clone();
    let per_backend = 2 * RACE_SAMPLES;
    let clock = Rc::new(move || {
        let i = r.get();
        r.set(i + 1);
        let (decode, end) = (i / 2, i % 2 == 1);
        let took = if i < per_backend { gpu_ms } else { cpu_ms };
        1000.0 * decode as f64 + if end { took } else { 0.0 }
    });
    (clock, reads)
}

#[test]
fn auto_keeps_the_gpu_when_it_decodes_faster() {
    let (clock, reads) = scripted_clock(0.5, 2.0);
    let (b, on_gpu) = started(Preference::Auto, clock);
    assert!(on_gpu && b.uses_gpu(), "{:?}", b.note());
    assert_eq!(reads.get(), 4 * RACE_SAMPLES, "{RACE_SAMPLES} timed decodes on each backend ({RACE_WARMUP} warm-ups before, untimed)");
    let race = b.race().expect("timings");
    assert_eq!((race.gpu_ms, race.cpu_ms), (0.5, 2.0));
    assert!(b.describe().starts_with("GPU: ") && b.describe().contains("faster here than the CPU (0.5 ms a digit, the CPU 2.0 ms)"));
    matches_the_cpu(&b, "GPU after the race");
    assert!(b.uses_gpu());
}

#[test]
fn auto_uses_the_cpu_when_it_decodes_faster() {
    let (clock, _) = scripted_clock(70.2, 3.9);
    let (b, on_gpu) = started(Preference::Auto, clock);
    assert!(!on_gpu && b.gpu().is_none());
    let (cause, detail) = b.note().expect("a note saying why the CPU is used");
    assert_eq!(cause.code(), "cpu-faster");
    assert!(detail.starts_with("the GPU adapter (") && detail.ends_with(") decoded a digit in 70.2 ms, the CPU in 3.9 ms"), "{detail}");
    assert_eq!(b.describe(), "CPU, faster here than the GPU (3.9 ms a digit, the GPU 70.2 ms)");
    matches_the_cpu(&b, "CPU after the race");
    assert!(b.gpu().is_none());
}

#[test]
fn real_timings_on_this_machine() {
    // Not a verdict on which is faster here (that depends on the machine), only that the real
    // clock gives a race that can be judged and that the backend follows it.
    let (b, on_gpu) = started(Preference::Auto, system_clock());
    let race = b.race().expect("timings");
    eprintln!("single-point decode: GPU {:.3} ms, CPU {:.3} ms -> {}", race.gpu_ms, race.cpu_ms, b.describe());
    assert!(race.gpu_ms > 0.0 && race.cpu_ms >= 0.0);
    assert_eq!(on_gpu, !race.cpu_wins());
    assert_eq!(on_gpu, b.note().is_none());
}

#[test]
fn manifold_auto_says_where_it_ran_and_why() {
    let dir = common::temp_dir("manifold-auto");
    let out = dir.join("auto.png");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_manifold"))
        .args(["--model", SHIPPED, "--grid", "4", "--backend", "auto", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{stderr}");
    assert!(out.exists());
    let gpu = stdout.contains("gpu backend");
    assert!(gpu || stdout.contains("cpu backend"), "{stdout}");
    let said = if gpu { "faster here than the CPU" } else { "cpu-faster: the GPU adapter (" };
    assert!(stderr.contains(said), "ran on the {}: {stderr}", if gpu { "GPU" } else { "CPU" });
    std::fs::remove_dir_all(&dir).unwrap();
}
