//! The JavaScript interface of the browser build: one `Explorer` object per loaded model.
//!
//! Decoding, encoding and sampling run on WebGPU through the GPU engine when the browser has it,
//! and on the CPU reference (the same Rust, compiled to wasm) when it does not, or when the GPU
//! fails mid-session: the explorer then records why and carries on on the CPU without a reload.
//! Async methods return Promises; the state lives behind `Rc` so futures own what they use.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::gpu::{EngineOptions, GpuEngine};
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
    /// Why the GPU is not in use, if it is not.
    gpu_note: RefCell<Option<String>>,
    /// One GPU operation at a time: each pushes and pops device error scopes across awaits,
    /// and interleaved operations would pop each other's scopes.
    gpu_lock: futures_util::lock::Mutex<()>,
}

impl Inner {
    fn gpu(&self) -> Option<Rc<GpuEngine>> {
        self.gpu.borrow().clone()
    }

    /// Drops the GPU after a failure; later calls use the CPU.
    fn fall_back(&self, why: String) {
        *self.gpu.borrow_mut() = None;
        *self.gpu_note.borrow_mut() = Some(why);
    }
}

/// Runs `op` on the GPU if there is one: `Ok(Some(..))` on success, `Err` for bad input (the
/// CPU would refuse it too), `Ok(None)` when there is no GPU or it just failed (then the GPU is
/// dropped and the caller computes on the CPU). One GPU operation runs at a time.
async fn on_gpu<T, Fut>(inner: &Inner, op: impl FnOnce(Rc<GpuEngine>) -> Fut) -> Result<Option<T>, JsValue>
where
    Fut: std::future::Future<Output = Result<T, crate::gpu::GpuError>>,
{
    let Some(gpu) = inner.gpu() else { return Ok(None) };
    let result = {
        let _turn = inner.gpu_lock.lock().await;
        op(gpu).await
    };
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e @ crate::gpu::GpuError::Input(_)) => Err(js_err(e)),
        Err(e) => {
            inner.fall_back(format!("the GPU failed ({e}); continuing on the CPU"));
            Ok(None)
        }
    }
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

#[derive(Serialize)]
struct Samples {
    z: Vec<f32>,
    pixels: Vec<f32>,
}

#[wasm_bindgen]
impl Explorer {
    /// Loads a model file (its bytes). `backend` is "webgpu", "cpu" or "" (WebGPU if available).
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
            };
            if backend == "cpu" {
                *inner.gpu_note.borrow_mut() = Some("the CPU backend was requested".into());
            } else {
                match GpuEngine::new(&inner.vae, EngineOptions::default()).await {
                    Ok(engine) => *inner.gpu.borrow_mut() = Some(Rc::new(engine)),
                    Err(e) => *inner.gpu_note.borrow_mut() = Some(e.to_string()),
                }
            }
            Ok(Explorer { inner: Rc::new(inner) }.into())
        })
    }

    /// "GPU: adapter (WebGPU)" or "CPU".
    pub fn backend(&self) -> String {
        match self.inner.gpu() {
            Some(g) => format!("GPU: {}", g.adapter_name()),
            None => "CPU".into(),
        }
    }

    /// Why the GPU is not in use (no WebGPU, an error, or a request), if it is not.
    #[wasm_bindgen(js_name = gpuNote)]
    pub fn gpu_note(&self) -> Option<String> {
        self.inner.gpu_note.borrow().clone()
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
        to_js(&self.inner.metadata)
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
            if mu.len() % d != 0 || logvar.len() != mu.len() {
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
