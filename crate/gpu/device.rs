//! The wgpu plumbing under the engine, independent of any model: finding an adapter, opening a
//! device and watching for its loss, error scopes around recorded work, buffer helpers, the
//! chunking of large batches, timestamp timers and reading rows back. It exists so that the dense
//! layers, the sampler and the engine record their work through one place that knows the device.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use super::error::GpuError;

/// Invocations per workgroup of every compute shader: their `WORKGROUP` override.
pub(super) const WORKGROUP: u32 = 64;

/// Finds an adapter (natively WGPU_BACKEND, e.g. vulkan, metal or dx12, may pick the backend).
pub(super) async fn request_adapter() -> Result<(wgpu::Instance, wgpu::Adapter), GpuError> {
    #[cfg(target_arch = "wasm32")]
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    #[cfg(not(target_arch = "wasm32"))]
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let power = wgpu::PowerPreference::HighPerformance;
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions { power_preference: power, ..Default::default() })
        .await
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
    Ok((instance, adapter))
}

/// How an adapter is named to users, e.g. "NVIDIA H100 (Vulkan)" or "llvmpipe (Vulkan,
/// software)". Browsers may hide the adapter's name.
pub(super) fn adapter_name(info: &wgpu::AdapterInfo) -> String {
    let kind = if info.device_type == wgpu::DeviceType::Cpu { ", software" } else { "" };
    let name = if info.name.is_empty() { "unnamed adapter" } else { &info.name };
    let backend = match info.backend {
        wgpu::Backend::BrowserWebGpu => "WebGPU".to_string(),
        other => format!("{other:?}"),
    };
    format!("{name} ({backend}{kind})")
}

/// Timestamp queries, where the adapter has them, to measure GPU time (benchmarks).
#[derive(Clone)]
struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    period_ns: f32,
}

/// An open device and its queue, with the helpers all GPU work is recorded and read through.
/// Clones share the device (the trainer and the engine can work on one).
#[derive(Clone)]
pub(super) struct Gpu {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    /// The device's limit on workgroups per dispatch dimension.
    pub(super) max_workgroups: u32,
    timer: Option<Timer>,
    lost: Arc<Mutex<Option<String>>>,
    /// The first error no error scope caught (the drag path awaits none): reported by the next
    /// [`Gpu::check_lost`], so a failed draw costs one frame, not a GPU round trip per digit.
    uncaught: Arc<Mutex<Option<String>>>,
}

impl Gpu {
    /// Opens a device on `adapter` with `limits` (the adapter's own when `None`; none may exceed
    /// them), with timestamp queries where the adapter has them.
    pub(super) async fn open(adapter: &wgpu::Adapter, limits: Option<wgpu::Limits>) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        if !adapter.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
            return Err(GpuError::Unsupported(format!("{} has no compute shaders", info.name)));
        }
        let limits = limits.unwrap_or_else(|| adapter.limits());
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let features = if timestamps { wgpu::Features::TIMESTAMP_QUERY } else { wgpu::Features::empty() };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("latent-explorer"),
                required_features: features,
                required_limits: limits,
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
        let uncaught = Arc::new(Mutex::new(None));
        {
            let uncaught = uncaught.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                if let Ok(mut u) = uncaught.lock() {
                    u.get_or_insert_with(|| e.to_string());
                }
            }));
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
        let max_workgroups = device.limits().max_compute_workgroups_per_dimension;
        Ok(Gpu { device, queue, max_workgroups, timer, lost, uncaught })
    }

    pub(super) fn has_timer(&self) -> bool {
        self.timer.is_some()
    }

    /// A lost device, or an error that no scope caught since (see `uncaught`).
    pub(super) fn check_lost(&self) -> Result<(), GpuError> {
        if let Some(reason) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(GpuError::DeviceLost(reason));
        }
        match self.uncaught.lock().ok().and_then(|u| u.clone()) {
            Some(e) => Err(GpuError::Validation(format!("{e} (in an earlier unchecked draw)"))),
            None => Ok(()),
        }
    }

    /// A compute pipeline for `entry` of the WGSL `src`, its pipeline-overridable constants set
    /// from `constants`. A shader declares its overrides without defaults, so a constant missing
    /// here (or one the shader does not declare) fails the pipeline: Rust is their one source.
    pub(super) fn compute_pipeline(&self, src: &str, entry: &str, constants: &[(&str, f64)]) -> wgpu::ComputePipeline {
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(entry), source: wgpu::ShaderSource::Wgsl(src.into()) });
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants, ..Default::default() },
            cache: None,
        })
    }

    /// A storage buffer of `floats` values (at least 4, rounded up to whole vec4s so that it can
    /// be read as `array<vec4<f32>>`), zeroed.
    pub(super) fn storage(&self, label: &str, floats: usize, extra: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (floats.max(4).div_ceil(4) * 16) as u64,
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        })
    }

    /// A storage buffer holding `data`, then zeros up to whole vec4s (4 zeros when empty:
    /// bindings cannot be empty), so that it can be read as `array<vec4<f32>>`.
    pub(super) fn upload(&self, label: &str, data: &[f32], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let padded;
        let data: &[f32] = if data.is_empty() {
            &[0.0; 4]
        } else if !data.len().is_multiple_of(4) {
            padded = [data, &[0.0; 3][..4 - data.len() % 4]].concat();
            &padded
        } else {
            data
        };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE | usage,
        })
    }

    /// A uniform buffer holding `value`.
    pub(super) fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    /// A compute pass, with timestamps around it when `timed` and the adapter has them.
    pub(super) fn begin_pass<'e>(&self, enc: &'e mut wgpu::CommandEncoder, timed: bool) -> wgpu::ComputePass<'e> {
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

    /// Records resolving a timed pass's timestamps (when `timed` and the adapter has them), for
    /// [`Gpu::read_rows`] to read.
    pub(super) fn resolve_timer(&self, enc: &mut wgpu::CommandEncoder, timed: bool) {
        if let (Some(t), true) = (&self.timer, timed) {
            enc.resolve_query_set(&t.queries, 0..2, &t.resolve, 0);
        }
    }

    /// Runs `f` (which records and submits work) inside out-of-memory and validation error
    /// scopes, turning a failure into an error the caller can fall back from.
    pub(super) async fn guarded<T>(&self, f: impl FnOnce() -> T) -> Result<T, GpuError> {
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

    /// Waits until the GPU has finished everything submitted so far.
    pub(super) async fn work_done(&self) -> Result<(), GpuError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        rx.await.map_err(|_| GpuError::Readback("the GPU never reported finishing".into()))?;
        self.check_lost()
    }

    /// Reads rows back from chunk buffers (each `(buffer, rows)`, rows of `stride` floats),
    /// keeping the first `width` values of each row: the one place where the vec4 padding of
    /// GPU rows is dropped. Also reads the timer when `timed`.
    pub(super) async fn read_rows(
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
}

/// The largest storage buffer a dispatch can bind whole: the smaller of the device's binding and
/// buffer limits.
pub(super) fn largest_binding(limits: &wgpu::Limits) -> u64 {
    limits.max_storage_buffer_binding_size.min(limits.max_buffer_size)
}

/// Rows per dispatch. Every dispatch binds one chunk of rows of each row buffer, so a chunk of
/// the widest row (`widest` floats) must fit the largest binding, and its rows (`rows_per_group`
/// per workgroup) the dispatch grid; `cap` lowers it further (tests use it).
pub(super) fn rows_per_chunk(limits: &wgpu::Limits, widest: usize, rows_per_group: usize, cap: Option<usize>) -> Result<usize, GpuError> {
    let max_binding = largest_binding(limits);
    let by_binding = (max_binding / (4 * widest.max(1) as u64)) as usize;
    if by_binding == 0 {
        return Err(GpuError::Unsupported(format!(
            "one row of {widest} values exceeds this device's largest binding ({max_binding} bytes)"
        )));
    }
    let by_grid = limits.max_compute_workgroups_per_dimension as usize * rows_per_group;
    let max_rows = by_grid.min(by_binding);
    Ok(match cap {
        Some(cap) => max_rows.min(cap.max(1)),
        None => max_rows,
    })
}

/// `0..rows` in chunks of at most `max_rows` rows. Every buffer a dispatch binds (except the
/// weights) holds one chunk, never the whole batch, so no binding outgrows the device.
pub(super) fn chunks(rows: usize, max_rows: usize) -> impl Iterator<Item = Range<usize>> {
    (0..rows).step_by(max_rows.max(1)).map(move |s| s..rows.min(s + max_rows))
}

/// Asserts that the WGSL `src` declares exactly the pipeline-overridable constants `constants`
/// names, none with a default (so that a value Rust stops giving fails the pipeline): a check of
/// the text, with no device; `tests/gpu.rs` builds the pipelines on one.
#[cfg(test)]
pub(super) fn assert_overrides_match(src: &str, constants: &[(&str, f64)]) {
    let mut declared: Vec<&str> = src
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("override "))
        .map(|rest| {
            let decl = rest.split("//").next().unwrap_or_default();
            assert!(!decl.contains('='), "an override with a default: {rest}");
            decl.split(':').next().unwrap_or_default().trim()
        })
        .collect();
    let mut given: Vec<&str> = constants.iter().map(|(name, _)| *name).collect();
    declared.sort_unstable();
    given.sort_unstable();
    assert_eq!(declared, given, "the shader's overrides and the constants Rust gives them");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_once_the_last_one_partial() {
        let c: Vec<_> = chunks(1030, 100).collect();
        assert_eq!(c.len(), 11);
        assert_eq!((c[0].clone(), c[10].clone()), (0..100, 1000..1030));
        assert!(c.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(chunks(0, 100).count(), 0);
        assert_eq!(chunks(3, 100).map(|c| (c.start, c.end)).collect::<Vec<_>>(), [(0, 3)]);
    }

    #[test]
    fn chunk_rows_respect_the_binding_the_grid_and_the_cap() {
        let mut limits = wgpu::Limits { max_storage_buffer_binding_size: 2048, max_buffer_size: 4096, ..Default::default() };
        // 2 KiB bindings of 28-float rows: 18 rows.
        assert_eq!(rows_per_chunk(&limits, 28, 4, None).unwrap(), 18);
        assert_eq!(rows_per_chunk(&limits, 28, 4, Some(5)).unwrap(), 5);
        assert_eq!(rows_per_chunk(&limits, 28, 4, Some(0)).unwrap(), 1);
        limits.max_compute_workgroups_per_dimension = 2;
        assert_eq!(rows_per_chunk(&limits, 28, 4, None).unwrap(), 8);
        assert!(matches!(rows_per_chunk(&limits, 1000, 4, None), Err(GpuError::Unsupported(_))));
    }
}
