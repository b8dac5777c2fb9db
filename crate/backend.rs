//! Where the model runs, GPU or CPU, and why: one policy for the page (through `wasm.rs`, which
//! only translates it to JavaScript) and the `manifold` CLI, native and wasm alike, so that
//! `cargo test` covers it on lavapipe.
//!
//! A [`Backend`] owns the model (the CPU reference, always there) and, once
//! [`Backend::start_gpu`] has opened one, a [`GpuEngine`]. Decoding, encoding and sampling run on
//! the GPU while it is in use and on the CPU otherwise, with the same results. Bad input is an
//! error on either; a GPU failure is not: the GPU is dropped, the reason kept (a
//! [`FallbackCause`] and the technical detail) and the work done on the CPU. A lost device is
//! replaced, up to [`MAX_RECOVERIES`] times. With [`Preference::Auto`] the GPU must also earn its
//! place: a few single-point decodes (the drag path) are timed on each, and the CPU is kept when
//! it is faster, as it is on software adapters such as SwiftShader.
//! wgpu on the web is not `Send`, so the state is single-threaded (`Rc`, `Cell`, `RefCell`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use crate::error::ModelError;
use crate::gpu::{EngineOptions, FallbackCause, GpuEngine, GpuError};
use crate::model::{reparameterize, Vae};

/// How many lost devices are replaced before the CPU takes over for good.
pub const MAX_RECOVERIES: u32 = 3;
/// Untimed decodes on each backend before the timed ones (shader and cache warm-up).
pub const RACE_WARMUP: usize = 2;
/// Timed single-point decodes on each backend; their medians are compared.
pub const RACE_SAMPLES: usize = 5;

/// Which backend was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// The GPU if there is one and it decodes a point faster than the CPU.
    Auto,
    /// The GPU whenever there is one, untimed (the CPU only if it cannot be had or fails).
    Gpu,
    /// The CPU reference; no GPU device is opened.
    Cpu,
}

impl Preference {
    /// The page's `?backend=` and the CLI's `--backend`: "cpu", "gpu" or "webgpu"; anything
    /// else (absent, "auto") lets the timing decide.
    pub fn from_name(name: &str) -> Self {
        match name {
            "cpu" => Preference::Cpu,
            "gpu" | "webgpu" => Preference::Gpu,
            _ => Preference::Auto,
        }
    }
}

/// Milliseconds since any fixed origin. Injected because `std::time::Instant` panics on wasm32
/// (the page passes `performance.now()`), and so that tests can make either backend look faster.
pub type Clock = Rc<dyn Fn() -> f64>;

/// The native clock: milliseconds since its creation.
#[cfg(not(target_arch = "wasm32"))]
pub fn system_clock() -> Clock {
    let start = std::time::Instant::now();
    Rc::new(move || start.elapsed().as_secs_f64() * 1e3)
}

/// The medians of the timed single-point decodes on each backend, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Race {
    pub gpu_ms: f64,
    pub cpu_ms: f64,
}

/// The median of `samples`; `None` when there are none or any is not a number.
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mid = s.len() / 2;
    Some(if s.len() % 2 == 1 { s[mid] } else { (s[mid - 1] + s[mid]) / 2.0 })
}

impl Race {
    /// The race from each backend's timings; `None` when either cannot be judged (no samples,
    /// or not finite numbers), and then the GPU is kept.
    pub fn from_samples(gpu: &[f64], cpu: &[f64]) -> Option<Race> {
        let (gpu_ms, cpu_ms) = (median(gpu)?, median(cpu)?);
        (gpu_ms.is_finite() && cpu_ms.is_finite()).then_some(Race { gpu_ms, cpu_ms })
    }

    /// Whether the CPU wins: strictly faster. A tie keeps the GPU, which leaves the page's
    /// thread free while it works.
    pub fn cpu_wins(&self) -> bool {
        self.cpu_ms < self.gpu_ms
    }

    /// The technical detail of a [`FallbackCause::CpuFaster`] verdict, naming the adapter.
    pub fn detail(&self, adapter: &str) -> String {
        format!("the GPU adapter ({adapter}) decoded a digit in {:.1} ms, the CPU in {:.1} ms", self.gpu_ms, self.cpu_ms)
    }
}

/// The model and where it runs. See the module documentation.
pub struct Backend {
    vae: Vae,
    preference: Preference,
    clock: Clock,
    gpu: RefCell<Option<Rc<GpuEngine>>>,
    /// Why the GPU is not in use, if it is not: the cause and the technical detail.
    note: RefCell<Option<(FallbackCause, String)>>,
    /// One GPU operation at a time: each pushes and pops device error scopes across awaits, and
    /// interleaved operations would pop each other's scopes.
    turn: futures_util::lock::Mutex<()>,
    /// Whether a lost device may be replaced (tests turn it off to exercise the CPU fallback).
    recover: Cell<bool>,
    recoveries: Cell<u32>,
    generation: Cell<u32>,
    race: Cell<Option<Race>>,
}

impl Backend {
    /// The model on the CPU; [`Backend::start_gpu`] moves the work to the GPU, unless `preference`
    /// is [`Preference::Cpu`]. `clock` times the race of [`Preference::Auto`].
    pub fn new(vae: Vae, preference: Preference, clock: Clock) -> Self {
        let note = (preference == Preference::Cpu).then(|| (FallbackCause::RequestedCpu, "the CPU backend was requested".to_string()));
        Backend {
            vae,
            preference,
            clock,
            gpu: RefCell::new(None),
            note: RefCell::new(note),
            turn: futures_util::lock::Mutex::new(()),
            recover: Cell::new(true),
            recoveries: Cell::new(0),
            generation: Cell::new(0),
            race: Cell::new(None),
        }
    }

    /// The CPU reference model.
    pub fn vae(&self) -> &Vae {
        &self.vae
    }

    pub fn preference(&self) -> Preference {
        self.preference
    }

    /// Opens a GPU device and uploads the model (shaders compile meanwhile, so callers start on
    /// the CPU). With [`Preference::Auto`] the GPU is then raced against the CPU ([`RACE_WARMUP`]
    /// untimed, then [`RACE_SAMPLES`] timed single-point decodes, the GPU's first) and dropped if
    /// it is slower. True when the GPU is in use; otherwise [`Backend::note`] says why not.
    pub async fn start_gpu(&self) -> bool {
        let _turn = self.turn.lock().await;
        if self.gpu().is_some() {
            return true;
        }
        if self.preference == Preference::Cpu {
            return false;
        }
        let engine = match GpuEngine::new(&self.vae, EngineOptions::default()).await {
            Ok(engine) => engine,
            Err(e) => {
                self.use_cpu(e.fallback_cause(), e.to_string());
                return false;
            }
        };
        if self.preference == Preference::Auto {
            match self.time_decodes(&engine).await {
                Ok(Some(race)) => {
                    self.race.set(Some(race));
                    if race.cpu_wins() {
                        self.use_cpu(FallbackCause::CpuFaster, race.detail(&engine.adapter_name()));
                        return false;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.use_cpu(e.fallback_cause(), e.to_string());
                    return false;
                }
            }
        }
        self.install(engine);
        true
    }

    /// Times single-point decodes on `engine`, then on the CPU: the race, if it can be judged.
    /// The clock is read just before and after each timed decode, never around the warm-ups.
    async fn time_decodes(&self, engine: &GpuEngine) -> Result<Option<Race>, GpuError> {
        let z = vec![0.0f32; self.vae.arch().latent];
        for _ in 0..RACE_WARMUP {
            engine.decode(&z).await?;
        }
        let mut gpu = Vec::with_capacity(RACE_SAMPLES);
        for _ in 0..RACE_SAMPLES {
            let t0 = (self.clock)();
            engine.decode(&z).await?;
            gpu.push((self.clock)() - t0);
        }
        for _ in 0..RACE_WARMUP {
            std::hint::black_box(self.vae.decode(&z)?);
        }
        let mut cpu = Vec::with_capacity(RACE_SAMPLES);
        for _ in 0..RACE_SAMPLES {
            let t0 = (self.clock)();
            std::hint::black_box(self.vae.decode(&z)?);
            cpu.push((self.clock)() - t0);
        }
        Ok(Race::from_samples(&gpu, &cpu))
    }

    fn install(&self, engine: GpuEngine) {
        *self.gpu.borrow_mut() = Some(Rc::new(engine));
        *self.note.borrow_mut() = None;
        self.generation.set(self.generation.get().wrapping_add(1));
    }

    /// Drops the GPU, if any: from now on the work runs on the CPU, for `cause` (`detail` is the
    /// technical text). The page uses it when the browser has no WebGPU at all.
    pub fn use_cpu(&self, cause: FallbackCause, detail: String) {
        *self.gpu.borrow_mut() = None;
        *self.note.borrow_mut() = Some((cause, detail));
    }

    /// The GPU engine while it is in use.
    pub fn gpu(&self) -> Option<Rc<GpuEngine>> {
        self.gpu.borrow().clone()
    }

    pub fn uses_gpu(&self) -> bool {
        self.gpu.borrow().is_some()
    }

    /// Why the GPU is not in use, if it is not.
    pub fn note(&self) -> Option<(FallbackCause, String)> {
        self.note.borrow().clone()
    }

    /// The timings of [`Preference::Auto`]'s race, once run.
    pub fn race(&self) -> Option<Race> {
        self.race.get()
    }

    /// Changes whenever another engine (a new device) takes over: whatever was made for the old
    /// device, such as a canvas's surface, must be made again for [`Backend::gpu`].
    pub fn generation(&self) -> u32 {
        self.generation.get()
    }

    /// How many lost devices have been replaced.
    pub fn recoveries(&self) -> u32 {
        self.recoveries.get()
    }

    /// "GPU: adapter (backend)" or "CPU", with the race's timings when they decided it.
    pub fn describe(&self) -> String {
        let race = self.race.get();
        match (self.gpu(), race) {
            (Some(g), Some(r)) => {
                format!("GPU: {}, faster here than the CPU ({:.1} ms a digit, the CPU {:.1} ms)", g.adapter_name(), r.gpu_ms, r.cpu_ms)
            }
            (Some(g), None) => format!("GPU: {}", g.adapter_name()),
            (None, Some(r)) if matches!(self.note(), Some((FallbackCause::CpuFaster, _))) => {
                format!("CPU, faster here than the GPU ({:.1} ms a digit, the GPU {:.1} ms)", r.cpu_ms, r.gpu_ms)
            }
            (None, _) => "CPU".into(),
        }
    }

    /// Destroys the GPU device, as a driver reset or a lost GPU would, to test recovery; with
    /// `allow_recovery` false the next operation must fall back to the CPU instead.
    pub fn lose_gpu_for_testing(&self, allow_recovery: bool) {
        self.recover.set(allow_recovery);
        if let Some(gpu) = self.gpu() {
            gpu.device().destroy();
            // Natively a destroyed device reports its loss at the next maintenance, as browsers
            // do once the page's task yields: until then the device is gone but not known lost.
            #[cfg(not(target_arch = "wasm32"))]
            let _ = gpu.device().poll(wgpu::PollType::Poll);
        }
    }

    /// After a lost device: a new device with the model uploaded again. `Err` says why not.
    async fn recover(&self, lost: &str) -> Result<(), String> {
        if !self.recover.get() || self.recoveries.get() >= MAX_RECOVERIES {
            return Err(format!("the GPU device was lost ({lost})"));
        }
        self.recoveries.set(self.recoveries.get() + 1);
        *self.gpu.borrow_mut() = None;
        let engine = GpuEngine::new(&self.vae, EngineOptions::default())
            .await
            .map_err(|e| format!("the GPU device was lost ({lost}) and no new one could be opened ({e})"))?;
        self.install(engine);
        Ok(())
    }

    /// Runs `op` on the GPU if it is in use: `Ok(Some(..))` on success, `Err` for bad input (the
    /// CPU would refuse it too), `Ok(None)` when there is no GPU or it just failed (then it is
    /// dropped, [`Backend::note`] says why, and the caller computes on the CPU). A lost device is
    /// replaced once and `op` retried on the new one. One GPU operation runs at a time.
    pub async fn on_gpu<T, Fut>(&self, op: impl Fn(Rc<GpuEngine>) -> Fut) -> Result<Option<T>, ModelError>
    where
        Fut: Future<Output = Result<T, GpuError>>,
    {
        let _turn = self.turn.lock().await;
        for attempt in 0..2 {
            let Some(gpu) = self.gpu() else { return Ok(None) };
            match op(gpu).await {
                Ok(v) => return Ok(Some(v)),
                Err(GpuError::Input(e)) => return Err(e),
                Err(GpuError::DeviceLost(why)) if attempt == 0 => {
                    if let Err(detail) = self.recover(&why).await {
                        self.use_cpu(FallbackCause::DeviceLost, detail);
                        return Ok(None);
                    }
                }
                Err(e) => {
                    self.use_cpu(e.fallback_cause(), e.to_string());
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// Decodes latent points (`n * latent`) to pixel means (`n * input`).
    pub async fn decode(&self, z: &[f32]) -> Result<Vec<f32>, ModelError> {
        match self.on_gpu(|gpu| async move { gpu.decode(z).await }).await? {
            Some(pixels) => Ok(pixels),
            None => self.vae.decode(z),
        }
    }

    /// Encodes images (`n * input` intensities) to (mu, logvar), each `n * latent`.
    pub async fn encode(&self, images: &[f32]) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        match self.on_gpu(|gpu| async move { gpu.encode(images).await }).await? {
            Some(stats) => Ok(stats),
            None => self.vae.encode(images),
        }
    }

    /// `k` reparameterized samples around each (mu, logvar) row, decoded: (z, pixels), the same
    /// samples on either backend (`model::reparameterize` with these arguments).
    pub async fn sample_and_decode(&self, mu: &[f32], logvar: &[f32], k: usize, seed: u32) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        if let Some(out) = self.on_gpu(|gpu| async move { gpu.sample_and_decode(mu, logvar, k, seed).await }).await? {
            return Ok(out);
        }
        let d = self.vae.arch().latent;
        if !mu.len().is_multiple_of(d) {
            return Err(ModelError::InputSize { what: "means", per_item: d, found: mu.len() });
        }
        if logvar.len() != mu.len() {
            return Err(ModelError::InputSize { what: "log-variances (one per mean)", per_item: d, found: logvar.len() });
        }
        let z = reparameterize(mu, logvar, d, k, seed, 0);
        let pixels = self.vae.decode(&z)?;
        Ok((z, pixels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts_and_nothing_to_judge() {
        assert_eq!(median(&[3.0, 1.0, 70.0, 2.0, 4.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN, 2.0]), None);
    }

    #[test]
    fn the_faster_median_wins_and_a_tie_keeps_the_gpu() {
        // One slow outlier on each side does not decide it: medians do.
        let swiftshader = Race::from_samples(&[70.2, 68.0, 71.0, 300.0, 69.5], &[3.9, 4.1, 3.8, 40.0, 3.9]).unwrap();
        assert_eq!(swiftshader, Race { gpu_ms: 70.2, cpu_ms: 3.9 });
        assert!(swiftshader.cpu_wins());
        let real_gpu = Race::from_samples(&[0.4, 0.5, 9.0], &[1.2, 0.1, 1.3]).unwrap();
        assert!(!real_gpu.cpu_wins());
        assert!(!Race { gpu_ms: 2.0, cpu_ms: 2.0 }.cpu_wins());
    }

    #[test]
    fn without_timings_there_is_no_verdict() {
        assert_eq!(Race::from_samples(&[], &[1.0]), None);
        assert_eq!(Race::from_samples(&[1.0], &[f64::INFINITY]), None);
        assert_eq!(Race::from_samples(&[f64::NAN], &[1.0]), None);
    }

    #[test]
    fn the_detail_names_the_adapter_and_both_times() {
        let r = Race { gpu_ms: 70.23, cpu_ms: 3.94 };
        assert_eq!(
            r.detail("SwiftShader Device (Subzero) (WebGPU)"),
            "the GPU adapter (SwiftShader Device (Subzero) (WebGPU)) decoded a digit in 70.2 ms, the CPU in 3.9 ms"
        );
    }

    #[test]
    fn backend_names_map_to_preferences() {
        assert_eq!(Preference::from_name("cpu"), Preference::Cpu);
        assert_eq!(Preference::from_name("webgpu"), Preference::Gpu);
        assert_eq!(Preference::from_name("gpu"), Preference::Gpu);
        assert_eq!(Preference::from_name(""), Preference::Auto);
        assert_eq!(Preference::from_name("auto"), Preference::Auto);
    }
}
