//! The JavaScript interface of the browser build: one `Explorer` object per loaded model.
//!
//! Only a translation: where the model runs, GPU or CPU, and why (the race of the two, recovery
//! from a lost device, the fall back to the CPU) is `crate::backend`, native Rust that `cargo
//! test` covers. What stays here is the browser's own: whether it has WebGPU at all, its clock,
//! the digit canvas's surface, and the conversions to JavaScript values.
//! Async methods return Promises; the state lives behind `Rc` so futures own what they use.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::backend::{Backend, Preference};
use crate::gpu::{DigitTarget, DigitView, DragPath, FallbackCause, GpuEngine, GpuError};
use crate::preprocess;
use crate::weights::{self, Embedding};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

#[wasm_bindgen]
extern "C" {
    /// The page's clock, in milliseconds (`std::time::Instant` panics on wasm32).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    /// A user-timing mark: Chrome's trace shows it inside the frame's main-thread work.
    #[wasm_bindgen(js_namespace = performance, js_name = mark)]
    fn performance_mark(name: &str);
    #[wasm_bindgen(js_namespace = performance, js_name = clearMarks)]
    fn performance_clear_marks(name: &str);
}

/// The user-timing mark dropped when a new digit is drawn (CPU: painted; GPU: its draw submitted),
/// which `npm run bench:browser` finds in Chrome's trace to time the frame that shows the digit.
pub const DIGIT_MARK: &str = "digit-drawn";

/// Drops [`DIGIT_MARK`], cleared at once: the trace keeps it, the page need not.
fn mark_digit_drawn() {
    performance_mark(DIGIT_MARK);
    performance_clear_marks(DIGIT_MARK);
}

struct Inner {
    backend: Backend,
    embedding: Option<Embedding>,
    metadata: std::collections::BTreeMap<String, String>,
    /// The digit canvas, when the GPU draws on it.
    canvas: RefCell<Option<web_sys::HtmlCanvasElement>>,
    /// Its surface, and the engine generation it was made for (`Backend::generation`): a new
    /// device after a lost one needs a new surface.
    digit: RefCell<Option<(u32, Rc<DigitSurface>)>>,
}

/// The digit canvas's WebGPU surface, configured for the engine's device.
struct DigitSurface {
    surface: wgpu::Surface<'static>,
    view: DigitView,
    size: (u32, u32),
    /// The drag path's buffers, made with the surface: a digit allocates and awaits nothing.
    path: DragPath,
}

impl DigitSurface {
    fn new(gpu: &GpuEngine, canvas: &web_sys::HtmlCanvasElement) -> Result<Self, GpuError> {
        let instance = gpu.instance().ok_or_else(|| GpuError::Surface("the engine has no instance".into()))?;
        let surface = instance.create_surface(wgpu::SurfaceTarget::Canvas(canvas.clone())).map_err(|e| GpuError::Surface(e.to_string()))?;
        let size = (canvas.width().max(1), canvas.height().max(1));
        let mut config = surface
            .get_default_config(gpu.adapter(), size.0, size.1)
            .ok_or_else(|| GpuError::Surface("the canvas does not support this adapter".into()))?;
        // Intensities are written as they are, like the CPU path paints them: no sRGB encoding.
        let formats = surface.get_capabilities(gpu.adapter()).formats;
        config.format = formats.iter().copied().find(|f| !f.is_srgb()).unwrap_or(config.format.remove_srgb_suffix());
        config.alpha_mode = wgpu::CompositeAlphaMode::Opaque;
        surface.configure(gpu.device(), &config);
        let view = DigitView::new(gpu.device(), config.format);
        let path = gpu.drag_path(&view, size)?;
        Ok(DigitSurface { surface, view, size, path })
    }

    /// Draws the digit of `z` through the drag path; a GPU error surfaces on the next call.
    fn draw(&self, gpu: &GpuEngine, z: &[f32]) -> Result<(), GpuError> {
        gpu.draw_digit_now(&self.path, &self.view, z, || {
            let frame = match self.surface.get_current_texture() {
                wgpu::CurrentSurfaceTexture::Success(t) | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
                other => return Err(GpuError::Surface(format!("no frame to draw on ({other:?})"))),
            };
            let view = frame.texture.create_view(&wgpu::TextureViewDescriptor { format: Some(self.view.format()), ..Default::default() });
            // The draw is recorded, submitted and presented in this same task, so in this frame:
            // marking after the GPU has finished would land in a later frame that shows nothing new.
            mark_digit_drawn();
            Ok(DigitTarget { view, size: self.size, frame: Some(frame) })
        })
    }
}

impl Inner {
    /// The attached canvas's surface for `gpu`, the engine in use: made again when the engine
    /// has changed since (a recovered device).
    fn digit_surface(&self, gpu: &GpuEngine) -> Result<Rc<DigitSurface>, GpuError> {
        let generation = self.backend.generation();
        if let Some((g, d)) = &*self.digit.borrow() {
            if *g == generation {
                return Ok(d.clone());
            }
        }
        *self.digit.borrow_mut() = None;
        let canvas = self.canvas.borrow().clone().ok_or_else(|| GpuError::Surface("the canvas was detached".into()))?;
        let d = Rc::new(DigitSurface::new(gpu, &canvas)?);
        *self.digit.borrow_mut() = Some((generation, d.clone()));
        Ok(d)
    }

    /// Forgets the canvas once the GPU is no longer in use (the page paints a fresh one).
    fn detach_if_on_cpu(&self) {
        if !self.backend.uses_gpu() {
            *self.digit.borrow_mut() = None;
            *self.canvas.borrow_mut() = None;
        }
    }
}

/// Whether this browser exposes WebGPU at all (`navigator.gpu`; absent in browsers without it,
/// where it is switched off, and outside secure contexts).
fn browser_has_webgpu() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|navigator| js_sys::Reflect::get(&navigator, &"gpu".into()))
        .is_ok_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    serde_wasm_bindgen::to_value(v).map_err(js_err)
}

#[wasm_bindgen]
pub struct Explorer {
    inner: Rc<Inner>,
}

#[derive(Serialize)]
struct Encoded {
    mu: Vec<f32>,
    logvar: Option<Vec<f32>>,
}

/// Why the GPU is not in use: `cause` is a [`FallbackCause`] code.
#[derive(Serialize)]
struct GpuNote<'a> {
    cause: &'static str,
    detail: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DecodeTimes {
    gpu_ms: f64,
    cpu_ms: f64,
}

#[derive(Serialize)]
struct Samples {
    z: Vec<f32>,
    pixels: Vec<f32>,
}

#[wasm_bindgen]
impl Explorer {
    /// Loads a model file (its bytes), ready on the CPU at once; [`Explorer::start_gpu`] moves
    /// the work to WebGPU when it is ready. `backend` is the page's `?backend=`: "cpu" means the
    /// GPU will not be used, "webgpu" that it is used whenever there is one, anything else that
    /// it is used if it decodes a digit faster than the CPU.
    /// Resolves to an `Explorer`; rejects with a message naming what is wrong with the file.
    pub fn load(bytes: Vec<u8>, backend: String) -> Promise {
        future_to_promise(async move {
            let file = weights::from_bytes(&bytes).map_err(|e| js_err(format!("This model file cannot be used: {e}")))?;
            let preference = Preference::from_name(&backend);
            let inner = Inner {
                backend: Backend::new(file.vae, preference, Rc::new(performance_now)),
                embedding: file.embedding,
                metadata: file.metadata,
                canvas: RefCell::new(None),
                digit: RefCell::new(None),
            };
            if preference == Preference::Cpu {
                inner.backend.use_cpu(FallbackCause::RequestedCpu, "the page was opened with ?backend=cpu".into());
            }
            Ok(Explorer { inner: Rc::new(inner) }.into())
        })
    }

    /// Opens a WebGPU device and uploads the model (shader compilation can take a while, so the
    /// page starts on the CPU), then, unless WebGPU was asked for, times a few decodes on the GPU
    /// and on the CPU and keeps the faster. Resolves to whether the GPU is now in use; if not,
    /// `gpuNote` says why.
    #[wasm_bindgen(js_name = startGpu)]
    pub fn start_gpu(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            if inner.backend.uses_gpu() {
                return Ok(JsValue::TRUE);
            }
            if inner.backend.preference() != Preference::Cpu && !browser_has_webgpu() {
                let detail =
                    "navigator.gpu is undefined: this browser has no WebGPU, it is switched off, or the page is not a secure context";
                inner.backend.use_cpu(FallbackCause::NoWebGpu, detail.into());
                return Ok(JsValue::FALSE);
            }
            Ok(JsValue::from_bool(inner.backend.start_gpu().await))
        })
    }

    /// "GPU: adapter (WebGPU)" or "CPU", with the timings when they chose it, e.g. "CPU, faster
    /// here than the GPU (3.9 ms a digit, the GPU 70.2 ms)".
    pub fn backend(&self) -> String {
        self.inner.backend.describe()
    }

    /// Whether decoding, encoding and sampling run on the GPU now.
    #[wasm_bindgen(js_name = usesGpu)]
    pub fn uses_gpu(&self) -> bool {
        self.inner.backend.uses_gpu()
    }

    /// Why the GPU is not in use, if it is not: `{cause, detail}`, `cause` one of "no-webgpu",
    /// "no-adapter", "device-lost", "requested-cpu", "gpu-failed", "cpu-faster"; `undefined`
    /// otherwise.
    #[wasm_bindgen(js_name = gpuNote)]
    pub fn gpu_note(&self) -> Result<JsValue, JsValue> {
        match self.inner.backend.note() {
            Some((cause, detail)) => to_js(&GpuNote { cause: cause.code(), detail: &detail }),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// The timings that chose the backend: `{gpuMs, cpuMs}`, the medians of single-point
    /// decodes on each; `undefined` when none were taken (a backend was asked for by name).
    #[wasm_bindgen(js_name = decodeTimes)]
    pub fn decode_times(&self) -> Result<JsValue, JsValue> {
        match self.inner.backend.race() {
            Some(r) => to_js(&DecodeTimes { gpu_ms: r.gpu_ms, cpu_ms: r.cpu_ms }),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    pub fn latent(&self) -> usize {
        self.inner.backend.vae().arch().latent
    }

    /// Image side in pixels (28 for MNIST models).
    pub fn side(&self) -> usize {
        (self.inner.backend.vae().arch().input as f64).sqrt() as usize
    }

    /// The file's metadata as an object of strings.
    pub fn metadata(&self) -> Result<JsValue, JsValue> {
        // A plain object (serde_wasm_bindgen would make a Map of it).
        self.inner.metadata.serialize(&serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true)).map_err(js_err)
    }

    /// Encoder means of the embedded data set (`n * latent`), empty if the file has none.
    #[wasm_bindgen(js_name = embeddingMu)]
    pub fn embedding_mu(&self) -> Vec<f32> {
        self.inner.embedding.as_ref().map(|e| e.mu.clone()).unwrap_or_default()
    }

    /// Class labels of the embedded data set.
    #[wasm_bindgen(js_name = embeddingLabels)]
    pub fn embedding_labels(&self) -> Vec<u8> {
        self.inner.embedding.as_ref().map(|e| e.labels.clone()).unwrap_or_default()
    }

    /// Decodes latent points (`n * latent`) to pixel means (`n * side * side`) on the current
    /// backend. Resolves to a Float32Array.
    pub fn decode(&self, z: Vec<f32>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let px = inner.backend.decode(&z).await.map_err(js_err)?;
            Ok(js_sys::Float32Array::from(&px[..]).into())
        })
    }

    /// Lets the GPU draw the decoded digit on `canvas` (a fresh canvas: it gets a WebGPU
    /// context), making the surface and the drag path's buffers. False, and the canvas untouched,
    /// when there is no GPU or it cannot draw there.
    #[wasm_bindgen(js_name = attachDigit)]
    pub fn attach_digit(&self, canvas: web_sys::HtmlCanvasElement) -> bool {
        let Some(gpu) = self.inner.backend.gpu() else { return false };
        *self.inner.canvas.borrow_mut() = Some(canvas);
        match self.inner.digit_surface(&gpu) {
            Ok(_) => true,
            Err(e) => {
                *self.inner.canvas.borrow_mut() = None;
                web_sys::console::warn_1(&format!("drawing the digit on the CPU: {e}").into());
                false
            }
        }
    }

    /// Shows the decoded digit of one latent point. With an attached canvas and a working GPU
    /// it is decoded and drawn there without a readback, and this resolves to `null` once the
    /// draw is submitted (nothing is awaited on the GPU: an error shows on the next call);
    /// otherwise it resolves to the CPU decode's pixels (a Float32Array) for the page to paint
    /// (a canvas the GPU drew on must then be replaced: it has a WebGPU context).
    pub fn show(&self, z: Vec<f32>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            if inner.canvas.borrow().is_some() {
                let (zr, inn) = (&z, &inner);
                let drawn = inner
                    .backend
                    .on_gpu(|gpu| async move {
                        let digit = inn.digit_surface(&gpu)?;
                        digit.draw(&gpu, zr)
                    })
                    .await
                    .map_err(js_err)?;
                if drawn.is_some() {
                    return Ok(JsValue::NULL);
                }
                inner.detach_if_on_cpu();
            }
            let px = inner.backend.vae().decode(&z).map_err(js_err)?;
            Ok(js_sys::Float32Array::from(&px[..]).into())
        })
    }

    /// Whether the GPU draws the digit on the attached canvas.
    #[wasm_bindgen(js_name = drawsOnGpu)]
    pub fn draws_on_gpu(&self) -> bool {
        self.inner.canvas.borrow().is_some() && self.inner.backend.uses_gpu()
    }

    /// How many times a lost GPU device has been replaced.
    pub fn recoveries(&self) -> u32 {
        self.inner.backend.recoveries()
    }

    /// Destroys the GPU device, as a driver reset or a lost GPU would, to test recovery;
    /// with `allow_recovery` false the explorer must fall back to the CPU instead.
    #[wasm_bindgen(js_name = loseGpuForTesting)]
    pub fn lose_gpu_for_testing(&self, allow_recovery: bool) {
        self.inner.backend.lose_gpu_for_testing(allow_recovery);
    }

    /// The CPU reference decode, whatever the backend (for comparisons and tests).
    #[wasm_bindgen(js_name = decodeCpu)]
    pub fn decode_cpu(&self, z: Vec<f32>) -> Result<Vec<f32>, JsValue> {
        self.inner.backend.vae().decode(&z).map_err(js_err)
    }

    /// Encodes images (`n * side * side` intensities) to `{mu, logvar}` (logvar null: deterministic).
    pub fn encode(&self, images: Vec<f32>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let e = inner.backend.encode(&images).await.map_err(js_err)?;
            to_js(&Encoded { mu: e.mu, logvar: e.logvar })
        })
    }

    /// `k` reparameterized samples around each (mu, logvar) row, decoded: `{z, pixels}`.
    #[wasm_bindgen(js_name = sampleAndDecode)]
    pub fn sample_and_decode(&self, mu: Vec<f32>, logvar: Vec<f32>, k: usize, seed: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (z, pixels) = inner.backend.sample_and_decode(&mu, &logvar, k, seed).await.map_err(js_err)?;
            to_js(&Samples { z, pixels })
        })
    }
}

/// RGBA pixels of any picture to an MNIST-like input (784 intensities), as the model expects.
#[wasm_bindgen(js_name = preprocessRgba)]
pub fn preprocess_rgba(rgba: Vec<u8>, width: usize, height: usize) -> Result<Vec<f32>, JsValue> {
    preprocess::rgba_to_mnist(&rgba, width, height).map_err(js_err)
}

// ---- Constants the page shares with the Rust side, exported so that www/ need not repeat them.

/// The largest picture `preprocessRgba` accepts, in pixels (width times height): the page
/// refuses a bigger upload with its own message before drawing it onto a canvas.
#[wasm_bindgen(js_name = maxUploadPixels)]
pub fn max_upload_pixels() -> usize {
    crate::preprocess::MAX_PIXELS
}

/// [`DIGIT_MARK`], for the mark the page drops itself when it paints a digit (the CPU path).
#[wasm_bindgen(js_name = digitMark)]
pub fn digit_mark() -> String {
    DIGIT_MARK.to_string()
}
