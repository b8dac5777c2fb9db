//! The GPU engine: the VAE's decoder, encoder and reparameterization sampler as WGSL compute
//! shaders through wgpu, natively (Vulkan, Metal, DX12) and in the browser (WebGPU).
//!
//! One type owns the device, the weight buffers and the pipelines. Its methods are async and
//! never block, so the same code runs on the web; native callers block at their edge (the CLI
//! uses pollster). Batches larger than the device allows in one dispatch or binding are split.
//! Every path is tested against the CPU reference in `model.rs`.

use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::architecture::{Activation, Architecture};
use crate::digit_view::DigitView;
use crate::model::Vae;

/// Shaders are shared by native and web builds, straight from `shaders/`.
const DENSE_WGSL: &str = include_str!("../shaders/decoder.wgsl");
const SAMPLER_WGSL: &str = include_str!("../shaders/sampler.wgsl");

/// Batch rows per invocation in `decoder.wgsl` (its `ROWS`).
const ROWS_PER_INVOCATION: usize = 4;
const WORKGROUP: usize = 64;

/// Why the GPU path is unavailable or failed. The caller can fall back to the CPU reference.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found ({0})")]
    NoAdapter(String),
    #[error("the GPU adapter refused a device: {0}")]
    RequestDevice(String),
    #[error("the GPU adapter cannot run this model: {0}")]
    Unsupported(String),
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("the GPU ran out of memory: {0}")]
    OutOfMemory(String),
    #[error("GPU validation error: {0}")]
    Validation(String),
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
    #[error("the canvas could not be drawn on: {0}")]
    Surface(String),
    #[error(transparent)]
    Input(#[from] crate::error::ModelError),
}

/// Why work runs on the CPU instead of the GPU: a stable code for the page to put into words
/// for people, while the technical detail (an error's text) travels beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackCause {
    /// The browser has no WebGPU at all (no `navigator.gpu`).
    NoWebGpu,
    /// WebGPU is there but offered no adapter.
    NoAdapter,
    /// The GPU device was lost and not replaced.
    DeviceLost,
    /// The CPU backend was asked for.
    RequestedCpu,
    /// Any other GPU failure: a refused device, out of memory, a validation error, ...
    GpuFailed,
    /// The GPU works, but the CPU decodes a point faster (a software adapter, say).
    CpuFaster,
}

impl FallbackCause {
    /// "no-webgpu", "no-adapter", "device-lost", "requested-cpu", "gpu-failed" or "cpu-faster".
    pub fn code(self) -> &'static str {
        match self {
            FallbackCause::NoWebGpu => "no-webgpu",
            FallbackCause::NoAdapter => "no-adapter",
            FallbackCause::DeviceLost => "device-lost",
            FallbackCause::RequestedCpu => "requested-cpu",
            FallbackCause::GpuFailed => "gpu-failed",
            FallbackCause::CpuFaster => "cpu-faster",
        }
    }
}

impl GpuError {
    /// What this error means for a caller that falls back to the CPU because of it.
    pub fn fallback_cause(&self) -> FallbackCause {
        match self {
            GpuError::NoAdapter(_) => FallbackCause::NoAdapter,
            GpuError::DeviceLost(_) => FallbackCause::DeviceLost,
            _ => FallbackCause::GpuFailed,
        }
    }
}

/// Options for [`GpuEngine::new`].
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Caps the rows per dispatch below the device's own limit (tests use it to exercise the
    /// splitting of large batches without huge inputs).
    pub max_rows_per_dispatch: Option<usize>,
    /// Device limits to request instead of the adapter's own (none may exceed the adapter's).
    /// Tests lower `max_storage_buffer_binding_size` and `max_buffer_size` so that the device
    /// itself enforces the limits the batch splitting must respect.
    pub limits_override: Option<wgpu::Limits>,
}

/// A dense layer on the GPU: W transposed and padded to whole vec4 columns.
struct GpuLayer {
    name: String,
    wt: wgpu::Buffer,
    bias: wgpu::Buffer,
    n_in: usize,
    n_out: usize,
    act: u32,
}

impl GpuLayer {
    fn n_out4(&self) -> usize {
        self.n_out.div_ceil(4)
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DenseDims {
    rows: u32,
    n_in: u32,
    n_out4: u32,
    in_stride: u32,
    out_stride4: u32,
    act: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SampleParams {
    samples: u32,
    k: u32,
    latent: u32,
    seed: u32,
    stats_stride: u32,
    logvar_offset: u32,
    row_width: u32,
    sample0: u32,
}

/// Decoded pixels left on the GPU, for a render pass to draw without a readback.
pub struct GpuBatch {
    /// `rows` rows of `stride` f32 values, row-major (usage STORAGE | COPY_SRC).
    pub buffer: wgpu::Buffer,
    pub rows: usize,
    /// Values per row: the model's output size.
    pub width: usize,
    /// Floats from one row to the next: `width` padded to whole vec4s (the padding is not data).
    pub stride: usize,
}

/// Where [`GpuEngine::draw_digit`] draws: a texture view of `size` pixels, and the surface
/// frame it belongs to, if any (presented after the draw).
pub struct DigitTarget {
    pub view: wgpu::TextureView,
    pub size: (u32, u32),
    pub frame: Option<wgpu::SurfaceTexture>,
}

/// Timestamp queries, where the adapter has them, to measure GPU time (benchmarks).
struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    period_ns: f32,
}

pub struct GpuEngine {
    /// The instance that found the adapter, when the engine made it (surfaces need it).
    instance: Option<wgpu::Instance>,
    adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    arch: Architecture,
    dense: wgpu::ComputePipeline,
    sampler: wgpu::ComputePipeline,
    encoder: Vec<GpuLayer>,
    decoder: Vec<GpuLayer>,
    max_rows: usize,
    max_workgroups: u32,
    timer: Option<Timer>,
    lost: Arc<Mutex<Option<String>>>,
}

fn act_code(a: Activation) -> u32 {
    match a {
        Activation::Identity => 0,
        Activation::Relu => 1,
        Activation::Sigmoid => 2,
    }
}

impl GpuEngine {
    /// Finds an adapter, opens a device and uploads the model.
    pub async fn new(vae: &Vae, options: EngineOptions) -> Result<Self, GpuError> {
        #[cfg(target_arch = "wasm32")]
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        // Natively WGPU_BACKEND (vulkan, metal, dx12) may pick the backend.
        #[cfg(not(target_arch = "wasm32"))]
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let power = wgpu::PowerPreference::HighPerformance;
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions { power_preference: power, ..Default::default() })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let mut engine = Self::with_adapter(adapter, vae, options).await?;
        engine.instance = Some(instance);
        Ok(engine)
    }

    /// Opens a device on a given adapter and uploads the model.
    pub async fn with_adapter(adapter: wgpu::Adapter, vae: &Vae, options: EngineOptions) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        let downlevel = adapter.get_downlevel_capabilities();
        if !downlevel.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
            return Err(GpuError::Unsupported(format!("{} has no compute shaders", info.name)));
        }
        let limits = options.limits_override.clone().unwrap_or_else(|| adapter.limits());
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let features = if timestamps { wgpu::Features::TIMESTAMP_QUERY } else { wgpu::Features::empty() };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("latent-explorer"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        let lost = Arc::new(Mutex::new(None));
        {
            let lost = lost.clone();
            device.set_device_lost_callback(move |reason, message| {
                if let Ok(mut l) = lost.lock() {
                    *l = Some(format!("{reason:?}: {message}"));
                }
            });
        }

        // The limits the device enforces (the adapter's, or the override).
        let limits = device.limits();
        let arch = vae.arch().clone();

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = |src: &str, entry: &str| {
            let module = device
                .create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(entry), source: wgpu::ShaderSource::Wgsl(src.into()) });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let dense = pipeline(DENSE_WGSL, "dense");
        let sampler = pipeline(SAMPLER_WGSL, "sample");
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Validation(format!("compiling the shaders: {e}")));
        }

        let upload = |label: &str, data: &[f32]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        // W [out, in] -> W^T [in, out4 * 4], zero padded; bias padded likewise.
        let layer = |label: &str, rows: Vec<(&[f32], &[f32])>, n_in: usize, act: Activation| {
            let n_out: usize = rows.iter().map(|(_, b)| b.len()).sum();
            let width = n_out.div_ceil(4) * 4;
            let mut wt = vec![0.0f32; n_in * width];
            let mut bias = vec![0.0f32; width];
            let mut o = 0;
            for (w, b) in rows {
                for (r, &bv) in b.iter().enumerate() {
                    for k in 0..n_in {
                        wt[k * width + o + r] = w[r * n_in + k];
                    }
                    bias[o + r] = bv;
                }
                o += b.len();
            }
            GpuLayer { name: label.to_string(), wt: upload(label, &wt), bias: upload(label, &bias), n_in, n_out, act: act_code(act) }
        };
        let lay = vae.layout();
        let plain = |&i: &usize| {
            let (l, w, b) = vae.layer(i);
            layer(&l.name, vec![(w, b)], l.n_in, l.activation)
        };
        let mut encoder: Vec<GpuLayer> = lay.encoder.iter().map(plain).collect();
        // The two heads as one layer: outputs [mu (latent) | logvar (latent)].
        let (mu_spec, mu_w, mu_b) = vae.layer(lay.mu);
        let (_, lv_w, lv_b) = vae.layer(lay.logvar);
        encoder.push(layer("encoder.heads", vec![(mu_w, mu_b), (lv_w, lv_b)], mu_spec.n_in, Activation::Identity));
        let decoder: Vec<GpuLayer> = lay.decoder.iter().map(plain).collect();

        // Every dispatch binds weights whole and one chunk of rows of each other buffer, so
        // chunks are sized so that the widest row buffer (inputs, z, [mu | logvar], any layer's
        // padded output) stays within the largest binding and buffer the device allows.
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        if let Some(l) = encoder.iter().chain(&decoder).find(|l| l.wt.size() > max_binding) {
            return Err(GpuError::Unsupported(format!(
                "{} has {} bytes of weights; this device binds at most {max_binding}",
                l.name,
                l.wt.size()
            )));
        }
        let widest = encoder.iter().chain(&decoder).map(|l| l.n_out4() * 4).chain([arch.input, arch.latent]).max().unwrap_or(4);
        let by_binding = (max_binding / (4 * widest as u64)) as usize;
        if by_binding == 0 {
            return Err(GpuError::Unsupported(format!(
                "one row of {widest} values exceeds this device's largest binding ({max_binding} bytes)"
            )));
        }
        let by_grid = limits.max_compute_workgroups_per_dimension as usize * ROWS_PER_INVOCATION;
        let mut max_rows = by_grid.min(by_binding);
        if let Some(cap) = options.max_rows_per_dispatch {
            max_rows = max_rows.min(cap.max(1));
        }

        let timer = timestamps.then(|| Timer {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("timer"), ty: wgpu::QueryType::Timestamp, count: 2 }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timer.resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            period_ns: queue.get_timestamp_period(),
        });

        Ok(GpuEngine {
            instance: None,
            adapter,
            device,
            queue,
            info,
            arch,
            dense,
            sampler,
            encoder,
            decoder,
            max_rows,
            max_workgroups: limits.max_compute_workgroups_per_dimension,
            timer,
            lost,
        })
    }

    /// The adapter in use, e.g. "NVIDIA H100 (Vulkan)" or "llvmpipe (Vulkan, software)".
    /// Browsers may hide the adapter's name.
    pub fn adapter_name(&self) -> String {
        let kind = if self.info.device_type == wgpu::DeviceType::Cpu { ", software" } else { "" };
        let name = if self.info.name.is_empty() { "unnamed adapter" } else { &self.info.name };
        let backend = match self.info.backend {
            wgpu::Backend::BrowserWebGpu => "WebGPU".to_string(),
            other => format!("{other:?}"),
        };
        format!("{name} ({backend}{kind})")
    }

    pub fn instance(&self) -> Option<&wgpu::Instance> {
        self.instance.as_ref()
    }

    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub fn arch(&self) -> &Architecture {
        &self.arch
    }

    /// Rows processed per dispatch; larger batches are split into chunks of this size, small
    /// enough that every buffer a dispatch binds fits the device's binding and buffer limits.
    pub fn max_rows_per_dispatch(&self) -> usize {
        self.max_rows
    }

    /// Whether GPU time can be measured ([`GpuEngine::decode_timed`]).
    pub fn has_timer(&self) -> bool {
        self.timer.is_some()
    }

    fn check_lost(&self) -> Result<(), GpuError> {
        match self.lost.lock().ok().and_then(|l| l.clone()) {
            Some(reason) => Err(GpuError::DeviceLost(reason)),
            None => Ok(()),
        }
    }

    fn storage(&self, label: &str, floats: usize, extra: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (floats.max(4) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        })
    }

    fn upload(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        let data: &[f32] = if data.is_empty() { &[0.0; 4] } else { data };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// `0..rows` in chunks of at most `max_rows` rows. Every buffer a dispatch binds (except the
    /// weights) holds one chunk, never the whole batch, so no binding outgrows the device.
    fn chunks(&self, rows: usize) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        (0..rows).step_by(self.max_rows).map(move |s| s..rows.min(s + self.max_rows))
    }

    /// A compute pass, with timestamps around it when `timed` and the adapter has them.
    fn begin_pass<'e>(&self, enc: &'e mut wgpu::CommandEncoder, timed: bool) -> wgpu::ComputePass<'e> {
        let timestamp_writes = match (&self.timer, timed) {
            (Some(t), true) => Some(wgpu::ComputePassTimestampWrites {
                query_set: &t.queries,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            }),
            _ => None,
        };
        enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("vae"), timestamp_writes })
    }

    /// Records a chain of dense layers over the `rows` rows of `x` (row stride `in_stride`) into
    /// a pass; returns the new buffer the last layer writes (`rows` rows of its padded width).
    fn record_chain(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        layers: &[GpuLayer],
        x: &wgpu::Buffer,
        in_stride: usize,
        rows: usize,
    ) -> wgpu::Buffer {
        let layout = self.dense.get_bind_group_layout(0);
        let mut input = (x.clone(), in_stride);
        for (li, l) in layers.iter().enumerate() {
            let last = li + 1 == layers.len();
            let width = l.n_out4() * 4;
            let extra = if last { wgpu::BufferUsages::COPY_SRC } else { wgpu::BufferUsages::empty() };
            let y = self.storage(if last { "output" } else { "activations" }, rows * width, extra);
            let dims = DenseDims {
                rows: rows as u32,
                n_in: l.n_in as u32,
                n_out4: l.n_out4() as u32,
                in_stride: input.1 as u32,
                out_stride4: l.n_out4() as u32,
                act: l.act,
            };
            let uniform = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("dims"),
                contents: bytemuck::bytes_of(&dims),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("dense"),
                layout: &layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: input.0.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: l.wt.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: l.bias.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 4, resource: y.as_entire_binding() },
                ],
            });
            pass.set_pipeline(&self.dense);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(l.n_out4().div_ceil(WORKGROUP) as u32, rows.div_ceil(ROWS_PER_INVOCATION) as u32, 1);
            input = (y, width);
        }
        input.0
    }

    /// Reads rows back from chunk buffers (each `(buffer, rows)`, rows of `stride` floats),
    /// keeping the first `width` values of each row: the one place where the vec4 padding of
    /// GPU rows is dropped. Also reads the timer when `timed`.
    async fn read_rows(
        &self,
        parts: &[(wgpu::Buffer, usize)],
        stride: usize,
        width: usize,
        timed: bool,
    ) -> Result<(Vec<f32>, Option<f64>), GpuError> {
        let timer = self.timer.as_ref().filter(|_| timed);
        let staging = |bytes: u64| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: bytes.max(8).div_ceil(8) * 8,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        // One staging buffer per chunk, so none is larger than a chunk's own buffer.
        let mut copies = Vec::with_capacity(parts.len() + 1);
        for (buffer, rows) in parts {
            let bytes = (rows * stride * 4) as u64;
            let s = staging(bytes);
            if bytes > 0 {
                enc.copy_buffer_to_buffer(buffer, 0, &s, 0, bytes);
            }
            copies.push((s, bytes));
        }
        if let Some(t) = timer {
            let s = staging(16);
            enc.copy_buffer_to_buffer(&t.resolve, 0, &s, 0, 16);
            copies.push((s, 16));
        }
        self.queue.submit([enc.finish()]);
        let mut done = Vec::with_capacity(copies.len());
        for (s, _) in &copies {
            let (tx, rx) = futures_channel::oneshot::channel();
            s.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            done.push(rx);
        }
        // Natively, drive the device until the maps complete; on the web the browser does.
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        for rx in done {
            rx.await
                .map_err(|_| GpuError::Readback("the map callback was dropped".into()))?
                .map_err(|e| GpuError::Readback(e.to_string()))?;
        }
        self.check_lost()?;
        let mut values = Vec::with_capacity(parts.iter().map(|(_, r)| r * width).sum());
        let mut gpu_ms = None;
        for (i, (s, bytes)) in copies.iter().enumerate() {
            let view = s.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
            let data = &view[..*bytes as usize];
            if i < parts.len() {
                let floats: &[f32] = bytemuck::cast_slice(data);
                if stride == width {
                    values.extend_from_slice(floats);
                } else {
                    floats.chunks_exact(stride).for_each(|r| values.extend_from_slice(&r[..width]));
                }
            } else if let Some(t) = timer {
                let ts: &[u64] = bytemuck::cast_slice(data);
                gpu_ms = Some(ts[1].saturating_sub(ts[0]) as f64 * t.period_ns as f64 / 1e6);
            }
            drop(view);
            s.unmap();
        }
        Ok((values, gpu_ms))
    }

    /// Runs `f` (which records and submits work) inside out-of-memory and validation error
    /// scopes, turning a failure into an error the caller can fall back from.
    async fn guarded<T>(&self, f: impl FnOnce() -> T) -> Result<T, GpuError> {
        self.check_lost()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = validation.pop().await;
        let o = oom.pop().await;
        if let Some(e) = o {
            return Err(GpuError::OutOfMemory(e.to_string()));
        }
        if let Some(e) = v {
            return Err(GpuError::Validation(e.to_string()));
        }
        self.check_lost()?;
        Ok(out)
    }

    fn check(&self, values: &[f32], per_item: usize, what: &'static str) -> Result<usize, GpuError> {
        if !values.len().is_multiple_of(per_item) {
            return Err(crate::error::ModelError::InputSize { what, per_item, found: values.len() }.into());
        }
        Ok(values.len() / per_item)
    }

    /// Checks that `input` holds whole rows of `per_row` values, then runs a layer chain over it
    /// chunk by chunk (each chunk uploaded on its own): the output chunks `(buffer, rows)` and
    /// their row stride.
    async fn run_input(
        &self,
        layers: &[GpuLayer],
        input: &[f32],
        per_row: usize,
        what: &'static str,
        timed: bool,
    ) -> Result<(Vec<(wgpu::Buffer, usize)>, usize), GpuError> {
        let rows = self.check(input, per_row, what)?;
        let stride = layers.last().map(|l| l.n_out4() * 4).unwrap_or(per_row);
        let parts = self
            .guarded(|| {
                let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("chain") });
                let mut parts = Vec::new();
                {
                    let mut pass = self.begin_pass(&mut enc, timed);
                    for c in self.chunks(rows) {
                        let x = self.upload(what, &input[c.start * per_row..c.end * per_row]);
                        parts.push((self.record_chain(&mut pass, layers, &x, per_row, c.len()), c.len()));
                    }
                }
                if let (Some(t), true) = (&self.timer, timed) {
                    enc.resolve_query_set(&t.queries, 0..2, &t.resolve, 0);
                }
                self.queue.submit([enc.finish()]);
                parts
            })
            .await?;
        Ok((parts, stride))
    }

    /// Decodes latent points into a GPU buffer of pixel means (no readback): the page's hot path.
    /// A batch of several chunks is copied into one buffer, which must fit `max_buffer_size`.
    pub async fn decode_to_buffer(&self, z: &[f32]) -> Result<GpuBatch, GpuError> {
        let (mut parts, stride) = self.run_input(&self.decoder, z, self.arch.latent, "latent points", false).await?;
        let rows: usize = parts.iter().map(|(_, r)| r).sum();
        let width = self.arch.input;
        if parts.len() == 1 {
            let (buffer, rows) = parts.pop().unwrap();
            return Ok(GpuBatch { buffer, rows, width, stride });
        }
        let bytes = (rows * stride * 4) as u64;
        if bytes > self.device.limits().max_buffer_size {
            return Err(GpuError::Unsupported(format!(
                "{rows} decoded rows ({bytes} bytes) exceed this device's largest buffer; decode them in smaller batches"
            )));
        }
        let buffer = self
            .guarded(|| {
                let all = self.storage("output", rows * stride, wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST);
                let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gather") });
                let mut at = 0;
                for (b, r) in &parts {
                    let n = (r * stride * 4) as u64;
                    enc.copy_buffer_to_buffer(b, 0, &all, at, n);
                    at += n;
                }
                self.queue.submit([enc.finish()]);
                all
            })
            .await?;
        Ok(GpuBatch { buffer, rows, width, stride })
    }

    /// Decodes one latent point and draws it with `view`'s render pass straight from the
    /// decoder's output buffer, on the target `target()` hands out (called just before the draw
    /// is recorded: a canvas's texture must be drawn in the task that acquires it). Resolves once
    /// the GPU has finished, so a caller that awaits each call never queues more than one frame.
    pub async fn draw_digit(
        &self,
        z: &[f32],
        view: &DigitView,
        target: impl FnOnce() -> Result<DigitTarget, GpuError>,
    ) -> Result<(), GpuError> {
        let side = (self.arch.input as f64).sqrt() as usize;
        if z.len() != self.arch.latent || side * side != self.arch.input {
            return Err(GpuError::Input(crate::error::ModelError::InputSize {
                what: "one latent point",
                per_item: self.arch.latent,
                found: z.len(),
            }));
        }
        let batch = self.decode_to_buffer(z).await?;
        self.guarded(|| {
            let t = target()?;
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("digit") });
            view.record(&self.device, &mut enc, &batch, 0, side, &t.view, t.size);
            self.queue.submit([enc.finish()]);
            if let Some(frame) = t.frame {
                self.queue.present(frame);
            }
            Ok::<(), GpuError>(())
        })
        .await??;
        self.work_done().await
    }

    /// Waits until the GPU has finished everything submitted so far.
    async fn work_done(&self) -> Result<(), GpuError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        rx.await.map_err(|_| GpuError::Readback("the GPU never reported finishing".into()))?;
        self.check_lost()
    }

    /// Reads a decoded batch back: `rows * width` pixel means.
    pub async fn read_batch(&self, batch: &GpuBatch) -> Result<Vec<f32>, GpuError> {
        Ok(self.read_rows(&[(batch.buffer.clone(), batch.rows)], batch.stride, batch.width, false).await?.0)
    }

    /// Decodes latent points (`n * latent`) to pixel means (`n * input`).
    pub async fn decode(&self, z: &[f32]) -> Result<Vec<f32>, GpuError> {
        Ok(self.decode_timed(z).await?.0)
    }

    /// [`GpuEngine::decode`], plus the GPU time of the decode in milliseconds where the adapter
    /// supports timestamp queries.
    pub async fn decode_timed(&self, z: &[f32]) -> Result<(Vec<f32>, Option<f64>), GpuError> {
        let (parts, stride) = self.run_input(&self.decoder, z, self.arch.latent, "latent points", true).await?;
        self.read_rows(&parts, stride, self.arch.input, true).await
    }

    /// Encodes images (`n * input` intensities in [0, 1]) to (mu, logvar), each `n * latent`.
    pub async fn encode(&self, images: &[f32]) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        let (parts, stride) = self.run_input(&self.encoder, images, self.arch.input, "images", false).await?;
        let d = self.arch.latent;
        let (stats, _) = self.read_rows(&parts, stride, 2 * d, false).await?;
        let mut mu = Vec::with_capacity(stats.len() / 2);
        let mut logvar = Vec::with_capacity(stats.len() / 2);
        for row in stats.chunks_exact(2 * d) {
            mu.extend_from_slice(&row[..d]);
            logvar.extend_from_slice(&row[d..]);
        }
        Ok((mu, logvar))
    }

    /// Records the sampler for samples `samples` (numbered `i * k + j` over the whole batch) of
    /// `k` per item; `stats` holds [mu | logvar] rows from item `samples.start / k` on. Returns
    /// the new buffer of `samples.len()` rows of `latent` values.
    fn record_sampler(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        stats: &wgpu::Buffer,
        samples: std::ops::Range<usize>,
        k: usize,
        seed: u32,
    ) -> wgpu::Buffer {
        let d = self.arch.latent;
        let total = samples.len() * d;
        let z = self.storage("z", total, wgpu::BufferUsages::COPY_SRC);
        let groups = total.div_ceil(WORKGROUP).max(1);
        let gx = groups.min(self.max_workgroups as usize);
        let gy = groups.div_ceil(gx);
        let params = SampleParams {
            samples: samples.len() as u32,
            k: k as u32,
            latent: d as u32,
            seed,
            stats_stride: 2 * d as u32,
            logvar_offset: d as u32,
            row_width: (gx * WORKGROUP) as u32,
            sample0: samples.start as u32,
        };
        let uniform = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("sample.params"),
            contents: bytemuck::bytes_of(&params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("sample"),
            layout: &self.sampler.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: stats.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: z.as_entire_binding() },
            ],
        });
        pass.set_pipeline(&self.sampler);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(gx as u32, gy as u32, 1);
        z
    }

    /// Records the sampler chunk by chunk (`k` samples per row of (mu, logvar)), each chunk's
    /// samples into their own buffer and, with `decode`, decoded into another: per chunk
    /// (z, rows, pixels). The samples' stats are uploaded per chunk too.
    async fn run_sampler(
        &self,
        mu: &[f32],
        logvar: &[f32],
        k: usize,
        seed: u32,
        decode: bool,
    ) -> Result<Vec<(wgpu::Buffer, usize, Option<wgpu::Buffer>)>, GpuError> {
        let d = self.arch.latent;
        let n = self.check(mu, d, "means")?;
        if logvar.len() != mu.len() {
            return Err(
                crate::error::ModelError::InputSize { what: "log-variances (one per mean)", per_item: d, found: logvar.len() }.into()
            );
        }
        let rows = n * k;
        if rows > u32::MAX as usize {
            return Err(GpuError::Unsupported(format!("{rows} samples exceed the sampler's 32-bit sample numbers")));
        }
        let mut stats = Vec::with_capacity(2 * mu.len());
        for i in 0..n {
            stats.extend_from_slice(&mu[i * d..(i + 1) * d]);
            stats.extend_from_slice(&logvar[i * d..(i + 1) * d]);
        }
        self.guarded(|| {
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("sample") });
            let mut parts = Vec::new();
            {
                let mut pass = self.begin_pass(&mut enc, false);
                for c in self.chunks(rows) {
                    // The items these samples belong to: at most c.len() of them.
                    let items = c.start / k..(c.end - 1) / k + 1;
                    let s = self.upload("stats", &stats[items.start * 2 * d..items.end * 2 * d]);
                    let z = self.record_sampler(&mut pass, &s, c.clone(), k, seed);
                    let pixels = decode.then(|| self.record_chain(&mut pass, &self.decoder, &z, d, c.len()));
                    parts.push((z, c.len(), pixels));
                }
            }
            self.queue.submit([enc.finish()]);
            parts
        })
        .await
    }

    /// `k` reparameterized samples `z = mu + exp(logvar / 2) * eps` per row of (mu, logvar):
    /// `n * k * latent` values, sample `j` of row `i` drawn with index `i * k + j`, exactly as
    /// `model::reparameterize(mu, logvar, latent, k, seed, 0)` on the CPU.
    pub async fn sample(&self, mu: &[f32], logvar: &[f32], k: usize, seed: u32) -> Result<Vec<f32>, GpuError> {
        let parts = self.run_sampler(mu, logvar, k, seed, false).await?;
        let zs: Vec<_> = parts.into_iter().map(|(z, r, _)| (z, r)).collect();
        let d = self.arch.latent;
        Ok(self.read_rows(&zs, d, d, false).await?.0)
    }

    /// Samples on the GPU and decodes the samples there too: (zs, pixels).
    pub async fn sample_and_decode(&self, mu: &[f32], logvar: &[f32], k: usize, seed: u32) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        let parts = self.run_sampler(mu, logvar, k, seed, true).await?;
        let (zs, px): (Vec<_>, Vec<_>) = parts.into_iter().map(|(z, r, p)| ((z, r), (p.expect("decoded"), r))).unzip();
        let d = self.arch.latent;
        let stride = self.decoder.last().map(|l| l.n_out4() * 4).unwrap_or(d);
        let zs = self.read_rows(&zs, d, d, false).await?.0;
        let px = self.read_rows(&px, stride, self.arch.input, false).await?.0;
        Ok((zs, px))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_fallback_causes() {
        let cause = |e: GpuError| e.fallback_cause().code();
        assert_eq!(cause(GpuError::NoAdapter("noop support not compiled in".into())), "no-adapter");
        assert_eq!(cause(GpuError::DeviceLost("Destroyed".into())), "device-lost");
        for e in [
            GpuError::RequestDevice("x".into()),
            GpuError::Unsupported("x".into()),
            GpuError::OutOfMemory("x".into()),
            GpuError::Validation("x".into()),
            GpuError::Readback("x".into()),
            GpuError::Surface("x".into()),
        ] {
            assert_eq!(cause(e), "gpu-failed");
        }
        use FallbackCause::*;
        let codes = [NoWebGpu, NoAdapter, DeviceLost, RequestedCpu, GpuFailed].map(FallbackCause::code);
        assert_eq!(codes, ["no-webgpu", "no-adapter", "device-lost", "requested-cpu", "gpu-failed"]);
    }
}
