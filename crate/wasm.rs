//! The JavaScript interface of the browser build: one `Explorer` object per loaded model.
//!
//! Decoding, encoding and sampling run on the CPU reference (the same Rust, compiled to wasm)
//! from the start, and on WebGPU through the GPU engine once `startGpu` has opened it. A lost
//! device is replaced by a new one when the browser gives one; when it does not, or the GPU fails
//! otherwise, the explorer records why (a cause code and the technical detail, for the page to
//! put into words) and carries on on the CPU, all without a reload.
//! Async methods return Promises; the state lives behind `Rc` so futures own what they use.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::gpu::{DigitTarget, DigitView, EngineOptions, FallbackCause, GpuEngine, GpuError};
use crate::model::{reparameterize, Vae};
use crate::preprocess;
use crate::weights::{self, Embedding};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

struct Inner {
    vae: Vae,
    embedding: Option<Embedding>,
    metadata: std::collections::BTreeMap<String, String>,
    gpu: RefCell<Option<Rc<GpuEngine>>>,
    /// Why the GPU is not in use, if it is not: the cause and the technical detail.
    gpu_note: RefCell<Option<(FallbackCause, String)>>,
    /// One GPU operation at a time: each pushes and pops device error scopes across awaits,
    /// and interleaved operations would pop each other's scopes.
    gpu_lock: futures_util::lock::Mutex<()>,
    /// The digit canvas, when the GPU draws on it, and its surface for the current device.
    canvas: RefCell<Option<web_sys::HtmlCanvasElement>>,
    digit: RefCell<Option<Rc<DigitSurface>>>,
    /// Whether a lost device may be replaced (tests turn it off to exercise the CPU fallback).
    recover: Cell<bool>,
    recoveries: Cell<u32>,
}

/// The digit canvas's WebGPU surface, configured for the engine's device.
struct DigitSurface {
    surface: wgpu::Surface<'static>,
    view: DigitView,
    size: (u32, u32),
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
        Ok(DigitSurface { surface, view: DigitView::new(gpu.device(), config.format), size })
    }

    async fn draw(&self, gpu: &GpuEngine, z: &[f32]) -> Result<(), GpuError> {
        gpu.draw_digit(z, &self.view, || {
            let frame = match self.surface.get_current_texture() {
                wgpu::CurrentSurfaceTexture::Success(t) | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
                other => return Err(GpuError::Surface(format!("no frame to draw on ({other:?})"))),
            };
            let view = frame.texture.create_view(&wgpu::TextureViewDescriptor { format: Some(self.view.format()), ..Default::default() });
            Ok(DigitTarget { view, size: self.size, frame: Some(frame) })
        })
        .await
    }
}

impl Inner {
    fn gpu(&self) -> Option<Rc<GpuEngine>> {
        self.gpu.borrow().clone()
    }

    /// Drops the GPU after a failure; later calls use the CPU.
    fn fall_back(&self, cause: FallbackCause, detail: String) {
        *self.gpu.borrow_mut() = None;
        *self.digit.borrow_mut() = None;
        *self.gpu_note.borrow_mut() = Some((cause, detail));
    }

    /// After a lost device: a new device and the model uploaded again, and the digit canvas
    /// configured for it. `Err` says why not.
    async fn recover(&self, lost: &str) -> Result<(), String> {
        if !self.recover.get() || self.recoveries.get() >= 3 {
            return Err(format!("the GPU device was lost ({lost})"));
        }
        self.recoveries.set(self.recoveries.get() + 1);
        let engine = GpuEngine::new(&self.vae, EngineOptions::default())
            .await
            .map_err(|e| format!("the GPU device was lost ({lost}) and no new one could be opened ({e})"))?;
        let digit = match self.canvas.borrow().as_ref() {
            Some(c) => Some(Rc::new(DigitSurface::new(&engine, c).map_err(|e| format!("the GPU device was lost ({lost}); {e}"))?)),
            None => None,
        };
        *self.gpu.borrow_mut() = Some(Rc::new(engine));
        *self.digit.borrow_mut() = digit;
        *self.gpu_note.borrow_mut() = None;
        Ok(())
    }
}

/// Runs `op` on the GPU if there is one: `Ok(Some(..))` on success, `Err` for bad input (the
/// CPU would refuse it too), `Ok(None)` when there is no GPU or it just failed (then the GPU is
/// dropped and the caller computes on the CPU). A lost device is replaced once and `op` retried.
/// One GPU operation runs at a time.
async fn on_gpu<T, Fut>(inner: &Inner, op: impl Fn(Rc<GpuEngine>) -> Fut) -> Result<Option<T>, JsValue>
where
    Fut: std::future::Future<Output = Result<T, GpuError>>,
{
    let _turn = inner.gpu_lock.lock().await;
    for attempt in 0..2 {
        let Some(gpu) = inner.gpu() else { return Ok(None) };
        match op(gpu).await {
            Ok(v) => return Ok(Some(v)),
            Err(e @ GpuError::Input(_)) => return Err(js_err(e)),
            Err(GpuError::DeviceLost(why)) if attempt == 0 => {
                if let Err(detail) = inner.recover(&why).await {
                    inner.fall_back(FallbackCause::DeviceLost, detail);
                    return Ok(None);
                }
            }
            Err(e) => {
                inner.fall_back(e.fallback_cause(), e.to_string());
                return Ok(None);
            }
        }
    }
    Ok(None)
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
    logvar: Vec<f32>,
}

/// Why the GPU is not in use: `cause` is a [`FallbackCause`] code.
#[derive(Serialize)]
struct GpuNote<'a> {
    cause: &'static str,
    detail: &'a str,
}

#[derive(Serialize)]
struct Samples {
    z: Vec<f32>,
    pixels: Vec<f32>,
}

#[wasm_bindgen]
impl Explorer {
    /// Loads a model file (its bytes), ready on the CPU at once; [`Explorer::start_gpu`] moves
    /// the work to WebGPU when it is ready. `backend` "cpu" means the GPU will not be used.
    /// Resolves to an `Explorer`; rejects with a message naming what is wrong with the file.
    pub fn load(bytes: Vec<u8>, backend: String) -> Promise {
        future_to_promise(async move {
            let file = weights::from_bytes(&bytes).map_err(|e| js_err(format!("This model file cannot be used: {e}")))?;
            let inner = Inner {
                vae: file.vae,
                embedding: file.embedding,
                metadata: file.metadata,
                gpu: RefCell::new(None),
                gpu_note: RefCell::new(None),
                gpu_lock: futures_util::lock::Mutex::new(()),
                canvas: RefCell::new(None),
                digit: RefCell::new(None),
                recover: Cell::new(true),
                recoveries: Cell::new(0),
            };
            if backend == "cpu" {
                *inner.gpu_note.borrow_mut() = Some((FallbackCause::RequestedCpu, "the page was opened with ?backend=cpu".into()));
            }
            Ok(Explorer { inner: Rc::new(inner) }.into())
        })
    }

    /// Opens a WebGPU device and uploads the model (shader compilation can take a while, so the
    /// page starts on the CPU). Resolves to whether the GPU is now in use; if not, `gpuNote` says why.
    #[wasm_bindgen(js_name = startGpu)]
    pub fn start_gpu(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            if inner.gpu().is_some() {
                return Ok(JsValue::TRUE);
            }
            if !browser_has_webgpu() {
                let detail =
                    "navigator.gpu is undefined: this browser has no WebGPU, it is switched off, or the page is not a secure context";
                *inner.gpu_note.borrow_mut() = Some((FallbackCause::NoWebGpu, detail.into()));
                return Ok(JsValue::FALSE);
            }
            match GpuEngine::new(&inner.vae, EngineOptions::default()).await {
                Ok(engine) => {
                    *inner.gpu.borrow_mut() = Some(Rc::new(engine));
                    *inner.gpu_note.borrow_mut() = None;
                    Ok(JsValue::TRUE)
                }
                Err(e) => {
                    *inner.gpu_note.borrow_mut() = Some((e.fallback_cause(), e.to_string()));
                    Ok(JsValue::FALSE)
                }
            }
        })
    }

    /// "GPU: adapter (WebGPU)" or "CPU".
    pub fn backend(&self) -> String {
        match self.inner.gpu() {
            Some(g) => format!("GPU: {}", g.adapter_name()),
            None => "CPU".into(),
        }
    }

    /// Whether decoding, encoding and sampling run on the GPU now.
    #[wasm_bindgen(js_name = usesGpu)]
    pub fn uses_gpu(&self) -> bool {
        self.inner.gpu().is_some()
    }

    /// Why the GPU is not in use, if it is not: `{cause, detail}`, `cause` one of "no-webgpu",
    /// "no-adapter", "device-lost", "requested-cpu", "gpu-failed"; `undefined` otherwise.
    #[wasm_bindgen(js_name = gpuNote)]
    pub fn gpu_note(&self) -> Result<JsValue, JsValue> {
        match &*self.inner.gpu_note.borrow() {
            Some((cause, detail)) => to_js(&GpuNote { cause: cause.code(), detail }),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    pub fn latent(&self) -> usize {
        self.inner.vae.arch().latent
    }

    /// Image side in pixels (28 for MNIST models).
    pub fn side(&self) -> usize {
        (self.inner.vae.arch().input as f64).sqrt() as usize
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
            let zr = &z;
            if let Some(px) = on_gpu(&inner, |gpu| async move { gpu.decode(zr).await }).await? {
                return Ok(js_sys::Float32Array::from(&px[..]).into());
            }
            let px = inner.vae.decode(&z).map_err(js_err)?;
            Ok(js_sys::Float32Array::from(&px[..]).into())
        })
    }

    /// Lets the GPU draw the decoded digit on `canvas` (a fresh canvas: it gets a WebGPU
    /// context). False, and the canvas untouched, when there is no GPU or it cannot draw there.
    #[wasm_bindgen(js_name = attachDigit)]
    pub fn attach_digit(&self, canvas: web_sys::HtmlCanvasElement) -> bool {
        let Some(gpu) = self.inner.gpu() else { return false };
        match DigitSurface::new(&gpu, &canvas) {
            Ok(d) => {
                *self.inner.digit.borrow_mut() = Some(Rc::new(d));
                *self.inner.canvas.borrow_mut() = Some(canvas);
                true
            }
            Err(e) => {
                web_sys::console::warn_1(&format!("drawing the digit on the CPU: {e}").into());
                false
            }
        }
    }

    /// Shows the decoded digit of one latent point. With an attached canvas and a working GPU
    /// it is decoded and drawn there without a readback, and this resolves to `null` once the
    /// GPU has finished; otherwise it resolves to the CPU decode's pixels (a Float32Array) for
    /// the page to paint (a canvas the GPU drew on must then be replaced: it has a WebGPU context).
    pub fn show(&self, z: Vec<f32>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            if inner.digit.borrow().is_some() {
                let (zr, inn) = (&z, &inner);
                let drawn = on_gpu(&inner, |gpu| async move {
                    let digit = inn.digit.borrow().clone().ok_or_else(|| GpuError::Surface("the canvas was detached".into()))?;
                    digit.draw(&gpu, zr).await
                })
                .await?;
                if drawn.is_some() {
                    return Ok(JsValue::NULL);
                }
            }
            let px = inner.vae.decode(&z).map_err(js_err)?;
            Ok(js_sys::Float32Array::from(&px[..]).into())
        })
    }

    /// Whether the GPU draws the digit on the attached canvas.
    #[wasm_bindgen(js_name = drawsOnGpu)]
    pub fn draws_on_gpu(&self) -> bool {
        self.inner.digit.borrow().is_some() && self.inner.gpu().is_some()
    }

    /// How many times a lost GPU device has been replaced.
    pub fn recoveries(&self) -> u32 {
        self.inner.recoveries.get()
    }

    /// Destroys the GPU device, as a driver reset or a lost GPU would, to test recovery;
    /// with `allow_recovery` false the explorer must fall back to the CPU instead.
    #[wasm_bindgen(js_name = loseGpuForTesting)]
    pub fn lose_gpu_for_testing(&self, allow_recovery: bool) {
        self.inner.recover.set(allow_recovery);
        if let Some(gpu) = self.inner.gpu() {
            gpu.device().destroy();
        }
    }

    /// The CPU reference decode, whatever the backend (for comparisons and tests).
    #[wasm_bindgen(js_name = decodeCpu)]
    pub fn decode_cpu(&self, z: Vec<f32>) -> Result<Vec<f32>, JsValue> {
        self.inner.vae.decode(&z).map_err(js_err)
    }

    /// Encodes images (`n * side * side` intensities) to `{mu, logvar}`.
    pub fn encode(&self, images: Vec<f32>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let x = &images;
            if let Some((mu, logvar)) = on_gpu(&inner, |gpu| async move { gpu.encode(x).await }).await? {
                return to_js(&Encoded { mu, logvar });
            }
            let (mu, logvar) = inner.vae.encode(&images).map_err(js_err)?;
            to_js(&Encoded { mu, logvar })
        })
    }

    /// `k` reparameterized samples around each (mu, logvar) row, decoded: `{z, pixels}`.
    #[wasm_bindgen(js_name = sampleAndDecode)]
    pub fn sample_and_decode(&self, mu: Vec<f32>, logvar: Vec<f32>, k: usize, seed: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (m, lv) = (&mu, &logvar);
            if let Some((z, pixels)) = on_gpu(&inner, |gpu| async move { gpu.sample_and_decode(m, lv, k, seed).await }).await? {
                return to_js(&Samples { z, pixels });
            }
            let d = inner.vae.arch().latent;
            if !mu.len().is_multiple_of(d) || logvar.len() != mu.len() {
                return Err(js_err("mu and logvar must hold the same whole number of latent points"));
            }
            let z = reparameterize(&mu, &logvar, d, k, seed, 0);
            let pixels = inner.vae.decode(&z).map_err(js_err)?;
            to_js(&Samples { z, pixels })
        })
    }
}

/// RGBA pixels of any picture to an MNIST-like input (784 intensities), as the model expects.
#[wasm_bindgen(js_name = preprocessRgba)]
pub fn preprocess_rgba(rgba: Vec<u8>, width: usize, height: usize) -> Result<Vec<f32>, JsValue> {
    preprocess::rgba_to_mnist(&rgba, width, height).map_err(js_err)
}
