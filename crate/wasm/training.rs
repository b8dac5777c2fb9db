//! The Train panel's bindings: `CpuTraining` (a `session::CpuSession`, run in the page's Web
//! Worker) and `GpuTraining` (a `session::GpuSession` on a WebGPU device of its own, run on the
//! page's thread, whose awaits never block it). Only translation: settings in, step results,
//! weights and model files out, errors as messages.

use std::rc::Rc;

use js_sys::{Float32Array, Promise, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::ModelError;
use crate::session::{self, CpuSession, GpuSession, Settings, Snapshot, StepResult, HIDDEN_PRESETS};
use crate::testset::{self, TestSet};
use crate::train::adam::Adam;
use crate::Vae;

use super::browser::{coded_err, to_js};

fn settings(value: JsValue) -> Result<Settings, JsValue> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| coded_err(&ModelError::Config(format!("these training settings cannot be used: {e}"))))
}

/// The training data; an error has a `testset.*` code, which the page words as the data file's.
fn data(bytes: &[u8]) -> Result<TestSet, JsValue> {
    testset::from_bytes(bytes).map_err(|e| coded_err(&e))
}

fn results(r: &[StepResult]) -> Result<JsValue, JsValue> {
    to_js(&r)
}

/// Where a run stands, for the page and for continuing it in the worker.
#[derive(Serialize)]
struct Position {
    epoch: usize,
    batch: usize,
    steps: u64,
    beta: f32,
}

fn position(s: &Snapshot) -> Position {
    Position { epoch: s.epoch, batch: s.batch, steps: s.steps(), beta: s.config.beta }
}

/// The names of the hidden-size presets, smallest first.
#[wasm_bindgen(js_name = hiddenPresets)]
pub fn hidden_presets() -> Vec<String> {
    HIDDEN_PRESETS
        .iter()
        .map(|(name, sizes)| format!("{name}:{}", sizes.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",")))
        .collect()
}

/// A run on the CPU, stepped by the Train panel's worker.
#[wasm_bindgen]
pub struct CpuTraining {
    session: CpuSession,
}

#[wasm_bindgen]
impl CpuTraining {
    /// A fresh run: `settings` is `{kind, hidden, lr, batchSize, beta, seed}`, `data` a training
    /// subset file's bytes.
    #[wasm_bindgen(constructor)]
    pub fn new(settings_value: JsValue, data_bytes: &[u8]) -> Result<CpuTraining, JsValue> {
        let config = settings(settings_value)?.config().map_err(|e| coded_err(&e))?;
        let snapshot = Snapshot::start(config).map_err(|e| coded_err(&e))?;
        Ok(CpuTraining { session: CpuSession::new(snapshot, data(data_bytes)?).map_err(|e| coded_err(&e))? })
    }

    /// Continues a run (a GPU session's last snapshot) from its weights, Adam's moments and
    /// step count, at `epoch` and `batch`.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        settings_value: JsValue,
        data_bytes: &[u8],
        params: Vec<f32>,
        m: Vec<f32>,
        v: Vec<f32>,
        steps: u64,
        epoch: usize,
        batch: usize,
    ) -> Result<CpuTraining, JsValue> {
        let config = settings(settings_value)?.config().map_err(|e| coded_err(&e))?;
        let vae = Vae::new(config.arch.clone(), params).map_err(|e| coded_err(&e))?;
        let adam = Adam { t: steps, m, v, ..Adam::new(0, config.lr) };
        let snapshot = Snapshot { config, vae, adam, epoch, batch };
        Ok(CpuTraining { session: CpuSession::new(snapshot, data(data_bytes)?).map_err(|e| coded_err(&e))? })
    }

    /// Takes `n` steps: their results `[{reconstruction, kl, rows, beta}]`, per example.
    pub fn run(&mut self, n: usize) -> Result<JsValue, JsValue> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.session.step().map_err(|e| coded_err(&e))?);
        }
        results(&out)
    }

    #[wasm_bindgen(js_name = setBeta)]
    pub fn set_beta(&mut self, beta: f32) -> Result<(), JsValue> {
        self.session.set_beta(beta).map_err(|e| coded_err(&e))
    }

    /// `{epoch, batch, steps, beta}`: beta is the one the next step uses.
    pub fn position(&self) -> Result<JsValue, JsValue> {
        to_js(&position(self.session.snapshot()))
    }

    pub fn params(&self) -> Vec<f32> {
        self.session.vae().params().to_vec()
    }

    /// Encoder means of `images` (`n * 784` intensities) with the current weights.
    pub fn embed(&self, images: &[f32]) -> Result<Vec<f32>, JsValue> {
        Ok(self.session.vae().encode(images).map_err(|e| coded_err(&e))?.mu)
    }

    /// Decodes latent points with the current weights.
    pub fn decode(&self, z: &[f32]) -> Result<Vec<f32>, JsValue> {
        self.session.vae().decode(z).map_err(|e| coded_err(&e))
    }

    /// The current weights as a model file in the project's format.
    #[wasm_bindgen(js_name = modelBytes)]
    pub fn model_bytes(&self) -> Result<Vec<u8>, JsValue> {
        session::model_bytes(self.session.snapshot(), self.session.data(), "CPU").map_err(|e| coded_err(&e))
    }
}

/// A run on a WebGPU device of its own. Its methods must be awaited one at a time.
#[wasm_bindgen]
pub struct GpuTraining {
    session: Rc<futures_util::lock::Mutex<GpuSession>>,
    data: Rc<TestSet>,
    adapter: String,
    software: bool,
}

/// `f` on the session, as a Promise.
fn with_session<F, Fut>(t: &GpuTraining, f: F) -> Promise
where
    F: FnOnce(Rc<futures_util::lock::Mutex<GpuSession>>, Rc<TestSet>) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<JsValue, JsValue>> + 'static,
{
    future_to_promise(f(t.session.clone(), t.data.clone()))
}

#[wasm_bindgen]
impl GpuTraining {
    /// Opens a WebGPU device and uploads a fresh run of `settings` on `data`. Resolves to a
    /// `GpuTraining`; rejects with why not (no WebGPU, no adapter, bad settings or data).
    pub fn start(settings_value: JsValue, data_bytes: Vec<u8>) -> Promise {
        future_to_promise(async move {
            let config = settings(settings_value)?.config().map_err(|e| coded_err(&e))?;
            let data = data(&data_bytes)?;
            let snapshot = Snapshot::start(config).map_err(|e| coded_err(&e))?;
            let session = GpuSession::new(snapshot, &data).await.map_err(|e| coded_err(&e))?;
            let (adapter, software) = (session.adapter_name(), session.is_software());
            Ok(GpuTraining { session: Rc::new(futures_util::lock::Mutex::new(session)), data: Rc::new(data), adapter, software }.into())
        })
    }

    /// The adapter, e.g. "SwiftShader Device (Subzero) (Vulkan, software)".
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    /// Whether the adapter is a software one (SwiftShader), where the CPU trains faster.
    #[wasm_bindgen(js_name = isSoftware)]
    pub fn is_software(&self) -> bool {
        self.software
    }

    /// Queues `n` steps, then resolves to the results of those the previous call queued.
    pub fn advance(&self, n: usize) -> Promise {
        with_session(self, move |s, _| async move { results(&s.lock().await.advance(n).await.map_err(|e| coded_err(&e))?) })
    }

    /// Waits for the queued steps and reads the weights back (for `embed`, `decode`, `params`,
    /// `snapshot` and `modelBytes`): resolves to the queued steps' results.
    pub fn sync(&self) -> Promise {
        with_session(self, |s, _| async move { results(&s.lock().await.sync().await.map_err(|e| coded_err(&e))?) })
    }

    /// Encoder means of `images` with the synced weights, on the GPU.
    pub fn embed(&self, images: Vec<f32>) -> Promise {
        with_session(self, move |s, _| async move {
            Ok(Float32Array::from(&s.lock().await.embed(&images).await.map_err(|e| coded_err(&e))?[..]).into())
        })
    }

    /// Decodes latent points with the synced weights, on the GPU.
    pub fn decode(&self, z: Vec<f32>) -> Promise {
        with_session(self, move |s, _| async move {
            Ok(Float32Array::from(&s.lock().await.decode(&z).await.map_err(|e| coded_err(&e))?[..]).into())
        })
    }

    #[wasm_bindgen(js_name = setBeta)]
    pub fn set_beta(&self, beta: f32) -> Promise {
        with_session(self, move |s, _| async move {
            s.lock().await.set_beta(beta).map_err(|e| coded_err(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The next step's KL weight as the device's step table holds it.
    #[wasm_bindgen(js_name = deviceBeta)]
    pub fn device_beta(&self) -> Promise {
        with_session(
            self,
            |s, _| async move { Ok(JsValue::from_f64(s.lock().await.device_beta().await.map_err(|e| coded_err(&e))? as f64)) },
        )
    }

    /// The last synced state: `{position: {epoch, batch, steps, beta}, params, m, v}`, to
    /// continue on the CPU.
    pub fn snapshot(&self) -> Promise {
        with_session(self, |s, _| async move {
            let s = s.lock().await;
            let snap = s.snapshot();
            let out = js_sys::Object::new();
            let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v);
            set("position", to_js(&position(snap))?)?;
            set("params", Float32Array::from(snap.vae.params()).into())?;
            set("m", Float32Array::from(&snap.adam.m[..]).into())?;
            set("v", Float32Array::from(&snap.adam.v[..]).into())?;
            Ok(out.into())
        })
    }

    /// The synced weights as a model file in the project's format.
    #[wasm_bindgen(js_name = modelBytes)]
    pub fn model_bytes(&self) -> Promise {
        with_session(self, |s, data| async move {
            let bytes = session::model_bytes(s.lock().await.snapshot(), &data, "WebGPU").map_err(|e| coded_err(&e))?;
            Ok(Uint8Array::from(&bytes[..]).into())
        })
    }

    /// Destroys the device, as a driver reset would (tests).
    #[wasm_bindgen(js_name = loseDeviceForTesting)]
    pub fn lose_device_for_testing(&self) -> Promise {
        with_session(self, |s, _| async move {
            s.lock().await.lose_device_for_testing();
            Ok(JsValue::UNDEFINED)
        })
    }
}
