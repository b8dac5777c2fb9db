//! The `Explorer` class: one loaded model, where it runs, and what the page asks of it.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::backend::{Backend, Preference};
use crate::gpu::{FallbackCause, GpuEngine, GpuError};
use crate::weights::{self, Embedding};

use super::browser::{browser_has_webgpu, coded_err, js_err, performance_now, to_js};
use super::surface::DigitSurface;

pub(super) struct Inner {
    pub(super) backend: Backend,
    embedding: Option<Embedding>,
    metadata: std::collections::BTreeMap<String, String>,
    /// The digit canvas, when the GPU draws on it.
    canvas: RefCell<Option<web_sys::HtmlCanvasElement>>,
    /// Its surface, and the engine generation it was made for (`Backend::generation`): a new
    /// device after a lost one needs a new surface.
    digit: RefCell<Option<(u32, Rc<DigitSurface>)>>,
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

#[wasm_bindgen]
pub struct Explorer {
    pub(super) inner: Rc<Inner>,
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
#[serde(rename_all = "camelCase")]
struct BackendInfo {
    gpu: Option<String>,
    gpu_ms: Option<f64>,
    cpu_ms: Option<f64>,
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
    /// Resolves to an `Explorer`; rejects with an error naming what is wrong with the file, with its
    /// code and parameters for the page to word ([`crate::error_code`]).
    pub fn load(bytes: Vec<u8>, backend: String) -> Promise {
        future_to_promise(async move {
            let file = weights::from_bytes(&bytes).map_err(|e| coded_err(&e))?;
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

    /// Where the work runs, for the page to word: `{gpu, gpuMs, cpuMs}`, `gpu` the adapter's
    /// name or null for the CPU, the timings those of the race that chose it, or null.
    #[wasm_bindgen(js_name = backendInfo)]
    pub fn backend_info(&self) -> Result<JsValue, JsValue> {
        let s = self.inner.backend.summary();
        to_js(&BackendInfo { gpu: s.gpu, gpu_ms: s.race.map(|r| r.gpu_ms), cpu_ms: s.race.map(|r| r.cpu_ms) })
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

    /// Input size in pixels (784 for MNIST models).
    pub fn input(&self) -> usize {
        self.inner.backend.vae().arch().input
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
            let px = inner.backend.decode(&z).await.map_err(|e| coded_err(&e))?;
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
                    .map_err(|e| coded_err(&e))?;
                if drawn.is_some() {
                    return Ok(JsValue::NULL);
                }
                inner.detach_if_on_cpu();
            }
            let px = inner.backend.vae().decode(&z).map_err(|e| coded_err(&e))?;
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
        self.inner.backend.vae().decode(&z).map_err(|e| coded_err(&e))
    }

    /// Encodes images (`n * side * side` intensities) to `{mu, logvar}` (logvar null: deterministic).
    pub fn encode(&self, images: Vec<f32>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let e = inner.backend.encode(&images).await.map_err(|e| coded_err(&e))?;
            to_js(&Encoded { mu: e.mu, logvar: e.logvar })
        })
    }

    /// `k` reparameterized samples around each (mu, logvar) row, decoded: `{z, pixels}`.
    #[wasm_bindgen(js_name = sampleAndDecode)]
    pub fn sample_and_decode(&self, mu: Vec<f32>, logvar: Vec<f32>, k: usize, seed: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (z, pixels) = inner.backend.sample_and_decode(&mu, &logvar, k, seed).await.map_err(|e| coded_err(&e))?;
            to_js(&Samples { z, pixels })
        })
    }
}
