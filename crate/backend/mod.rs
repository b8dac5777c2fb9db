//! Where the model runs, GPU or CPU, and why: one policy for the page (through `wasm/`, which
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
use crate::model::{reparameterize, Encoding, Vae};

mod race;
#[cfg(not(target_arch = "wasm32"))]
pub use race::system_clock;
pub use race::{median, Clock, Preference, Race, RACE_SAMPLES, RACE_WARMUP};

/// Where a backend runs its work ([`Backend::summary`]).
#[derive(Clone, Debug)]
pub struct Summary {
    /// The GPU adapter's name; `None` on the CPU.
    pub gpu: Option<String>,
    /// The timings of the race that chose it, when one did.
    pub race: Option<Race>,
}

/// How many lost devices are replaced before the CPU takes over for good.
pub const MAX_RECOVERIES: u32 = 3;
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

    /// Where the work runs: the GPU's adapter name, or none for the CPU, with the race's timings
    /// when they decided it (the page words this in the reader's language).
    pub fn summary(&self) -> Summary {
        let cpu_won = matches!(self.note(), Some((FallbackCause::CpuFaster, _)));
        let gpu = self.gpu().map(|g| g.adapter_name());
        let race = self.race.get().filter(|_| gpu.is_some() || cpu_won);
        Summary { gpu, race }
    }

    /// "GPU: adapter (backend)" or "CPU", with the race's timings when they decided it.
    pub fn describe(&self) -> String {
        match self.summary() {
            Summary { gpu: Some(g), race: Some(r) } => {
                format!("GPU: {g}, faster here than the CPU ({:.1} ms a digit, the CPU {:.1} ms)", r.gpu_ms, r.cpu_ms)
            }
            Summary { gpu: Some(g), race: None } => format!("GPU: {g}"),
            Summary { gpu: None, race: Some(r) } => {
                format!("CPU, faster here than the GPU ({:.1} ms a digit, the GPU {:.1} ms)", r.cpu_ms, r.gpu_ms)
            }
            Summary { gpu: None, race: None } => "CPU".into(),
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

    /// Encodes images (`n * input` intensities) to their means and (a VAE's only) log-variances.
    pub async fn encode(&self, images: &[f32]) -> Result<Encoding, ModelError> {
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
