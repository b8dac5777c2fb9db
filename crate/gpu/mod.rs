//! The GPU engine: the VAE's decoder, encoder and reparameterization sampler as WGSL compute
//! shaders through wgpu, natively (Vulkan, Metal, DX12) and in the browser (WebGPU).
//!
//! One type, [`GpuEngine`], owns the device, the weight buffers and the pipelines. Its methods
//! are async and never block, so the same code runs on the web; native callers block at their
//! edge (the CLI uses pollster). Batches larger than the device allows in one dispatch or binding
//! are split. Every path is tested against the CPU reference in `model.rs`.
//!
//! This file is the engine's public face; the parts live beside it: `error` (what can fail and
//! what it means for a CPU fallback), `device` (the device, error scopes, buffers, chunking,
//! timers, readback), `dense` (the dense layer both networks are chains of), `sampler` (the
//! reparameterization sampler), `digit_view` (drawing a decoded digit with a render pass) and
//! `drag` (the drag path's buffers, made once).

mod dense;
mod device;
mod digit_view;
mod dispatch;
mod drag;
mod error;
mod matmul;
mod sampler;
pub mod training;

pub use digit_view::{DigitTarget, DigitView, GpuBatch};
pub use drag::DragPath;
pub use error::{FallbackCause, GpuError};
pub use matmul::MatmulKernel;

use crate::architecture::Architecture;
use crate::error::ModelError;
use crate::model::{Encoding, Vae};

use dense::{Dense, GpuLayer};
use device::Gpu;
use sampler::Sampler;

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
    /// The product kernel for batches of 64 rows or more: by default the adapter's
    /// (`MatmulKernel::for_adapter`: tiled on GPUs; CPU drivers keep the dense kernel).
    pub matmul: Option<MatmulKernel>,
}

/// The VAE on a GPU: decode, encode, sample, and draw decoded digits.
pub struct GpuEngine {
    /// The instance that found the adapter, when the engine made it (surfaces need it).
    instance: Option<wgpu::Instance>,
    adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
    gpu: Gpu,
    arch: Architecture,
    dense: Dense,
    sampler: Sampler,
    encoder: Vec<GpuLayer>,
    decoder: Vec<GpuLayer>,
    max_rows: usize,
}

/// The number of whole items of `per_item` values in `values`, or an error naming `what`.
fn items(values: &[f32], per_item: usize, what: &'static str) -> Result<usize, GpuError> {
    if !values.len().is_multiple_of(per_item) {
        return Err(ModelError::InputSize { what, per_item, found: values.len() }.into());
    }
    Ok(values.len() / per_item)
}

impl GpuEngine {
    /// Finds an adapter, opens a device and uploads the model.
    pub async fn new(vae: &Vae, options: EngineOptions) -> Result<Self, GpuError> {
        let (instance, adapter) = device::request_adapter().await?;
        let mut engine = Self::with_adapter(adapter, vae, options).await?;
        engine.instance = Some(instance);
        Ok(engine)
    }

    /// Opens a device on a given adapter and uploads the model.
    pub async fn with_adapter(adapter: wgpu::Adapter, vae: &Vae, options: EngineOptions) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        let gpu = Gpu::open(&adapter, options.limits_override).await?;
        // The limits the device enforces (the adapter's, or the override).
        let limits = gpu.device.limits();
        let arch = vae.arch().clone();

        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let kernel = options.matmul.unwrap_or_else(|| MatmulKernel::for_adapter(&info));
        let (dense, sampler) = (Dense::new(&gpu, kernel), Sampler::new(&gpu, arch.latent));
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Validation(format!("compiling the shaders: {e}")));
        }

        // Every dispatch binds weights whole and one chunk of rows of each other buffer, so
        // chunks are sized so that the widest row buffer (inputs, z, [mu | logvar], any layer's
        // padded output) stays within the largest binding and buffer the device allows.
        let (encoder, decoder) = dense::pack_vae(vae);
        let max_binding = device::largest_binding(&limits);
        if let Some(l) = encoder.iter().chain(&decoder).find(|l| 4 * l.wt.len() as u64 > max_binding) {
            return Err(GpuError::Unsupported(format!(
                "{} has {} bytes of weights; this device binds at most {max_binding}",
                l.name,
                4 * l.wt.len()
            )));
        }
        let widest = encoder.iter().chain(&decoder).map(|l| l.width()).chain([arch.input, arch.latent]).max().unwrap_or(4);
        let max_rows = device::rows_per_chunk(&limits, widest, dense::ROWS, options.max_rows_per_dispatch)?;
        let upload = |layers: Vec<dense::PackedLayer>| layers.iter().map(|l| GpuLayer::upload(&gpu, l)).collect();
        let (encoder, decoder) = (upload(encoder), upload(decoder));

        Ok(GpuEngine { instance: None, adapter, info, gpu, arch, dense, sampler, encoder, decoder, max_rows })
    }

    /// The adapter in use, e.g. "NVIDIA H100 (Vulkan)" or "llvmpipe (Vulkan, software)".
    /// Browsers may hide the adapter's name.
    pub fn adapter_name(&self) -> String {
        device::adapter_name(&self.info)
    }

    pub fn instance(&self) -> Option<&wgpu::Instance> {
        self.instance.as_ref()
    }

    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.gpu.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.gpu.queue
    }

    pub fn arch(&self) -> &Architecture {
        &self.arch
    }

    /// Rows processed per dispatch; larger batches are split into chunks of this size, small
    /// enough that every buffer a dispatch binds fits the device's binding and buffer limits.
    pub fn max_rows_per_dispatch(&self) -> usize {
        self.max_rows
    }

    /// The engine's device, for a trainer to share ([`training::GpuTrainer::on_engine`]).
    fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Replaces the model's weights with `vae`'s, of the engine's architecture (the page's
    /// training session shows its model as it learns). Later operations use them.
    pub fn set_weights(&self, vae: &Vae) -> Result<(), GpuError> {
        dense::write_vae(&self.gpu, &self.arch, &self.encoder, &self.decoder, vae)
    }

    /// Whether GPU time can be measured ([`GpuEngine::decode_timed`]).
    pub fn has_timer(&self) -> bool {
        self.gpu.has_timer()
    }

    /// The row stride of `layers`' output (`per_row` for no layers): their last padded width.
    fn stride(layers: &[GpuLayer], per_row: usize) -> usize {
        layers.last().map(GpuLayer::stride).unwrap_or(per_row)
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
        let rows = items(input, per_row, what)?;
        let gpu = &self.gpu;
        let parts = gpu
            .guarded(|| {
                let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("chain") });
                let mut parts = Vec::new();
                {
                    let mut pass = gpu.begin_pass(&mut enc, timed);
                    for c in device::chunks(rows, self.max_rows) {
                        let x = gpu.upload(what, &input[c.start * per_row..c.end * per_row], wgpu::BufferUsages::COPY_DST);
                        parts.push((self.dense.record_chain(gpu, &mut pass, layers, &x, per_row, c.len()), c.len()));
                    }
                }
                gpu.resolve_timer(&mut enc, timed);
                gpu.queue.submit([enc.finish()]);
                parts
            })
            .await?;
        Ok((parts, Self::stride(layers, per_row)))
    }

    /// Decodes latent points into a GPU buffer of pixel means (no readback): the page's hot path.
    /// A batch of several chunks is copied into one buffer, which must fit `max_buffer_size`.
    pub async fn decode_to_buffer(&self, z: &[f32]) -> Result<GpuBatch, GpuError> {
        let (parts, stride) = self.run_input(&self.decoder, z, self.arch.latent, "latent points", false).await?;
        let rows: usize = parts.iter().map(|(_, r)| r).sum();
        let width = self.arch.input;
        if let [(buffer, rows)] = parts.as_slice() {
            return Ok(GpuBatch { buffer: buffer.clone(), rows: *rows, width, stride });
        }
        let bytes = (rows * stride * 4) as u64;
        if bytes > self.gpu.device.limits().max_buffer_size {
            return Err(GpuError::Unsupported(format!(
                "{rows} decoded rows ({bytes} bytes) exceed this device's largest buffer; decode them in smaller batches"
            )));
        }
        let gpu = &self.gpu;
        let buffer = gpu
            .guarded(|| {
                let all = gpu.storage("output", rows * stride, wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST);
                let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gather") });
                let mut at = 0;
                for (b, r) in &parts {
                    let n = (r * stride * 4) as u64;
                    enc.copy_buffer_to_buffer(b, 0, &all, at, n);
                    at += n;
                }
                gpu.queue.submit([enc.finish()]);
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
            return Err(GpuError::Input(ModelError::InputSize { what: "one latent point", per_item: self.arch.latent, found: z.len() }));
        }
        let batch = self.decode_to_buffer(z).await?;
        let gpu = &self.gpu;
        gpu.guarded(|| {
            let t = target()?;
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("digit") });
            view.record(&gpu.device, &mut enc, &batch, 0, side, &t.view, t.size);
            gpu.queue.submit([enc.finish()]);
            if let Some(frame) = t.frame {
                gpu.queue.present(frame);
            }
            Ok::<(), GpuError>(())
        })
        .await??;
        gpu.work_done().await
    }

    /// Makes the drag path's buffers, uniforms and bind groups once, for drawing with `view` onto
    /// targets of `size`. Not awaited either: an error in making them shows on the first draw.
    pub fn drag_path(&self, view: &DigitView, size: (u32, u32)) -> Result<DragPath, GpuError> {
        let (d, gpu) = (self.arch.latent, &self.gpu);
        gpu.check_lost()?;
        let z = gpu.storage("drag.z", d, wgpu::BufferUsages::COPY_DST);
        let chain = self.dense.prepare_chain(gpu, &self.decoder, &z, d, 1);
        Ok(DragPath::new(z, d, chain, &gpu.device, view, self.arch.input, size))
    }

    /// Decodes one point and draws it onto the target `target()` hands out, through `path`:
    /// one buffer write and one submit, nothing allocated, nothing awaited. A GPU error of this
    /// draw is reported by the next call (or any other engine call).
    pub fn draw_digit_now(
        &self,
        path: &DragPath,
        view: &DigitView,
        z: &[f32],
        target: impl FnOnce() -> Result<DigitTarget, GpuError>,
    ) -> Result<(), GpuError> {
        path.check(z)?;
        self.gpu.check_lost()?;
        self.gpu.queue.write_buffer(&path.z, 0, bytemuck::cast_slice(z));
        let t = target()?;
        let mut enc = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("drag") });
        path.record(&self.dense, view, &mut enc, &t);
        self.gpu.queue.submit([enc.finish()]);
        if let Some(frame) = t.frame {
            self.gpu.queue.present(frame);
        }
        Ok(())
    }

    /// Reads a decoded batch back: `rows * width` pixel means.
    pub async fn read_batch(&self, batch: &GpuBatch) -> Result<Vec<f32>, GpuError> {
        Ok(self.gpu.read_rows(&[(batch.buffer.clone(), batch.rows)], batch.stride, batch.width, false).await?.0)
    }

    /// Decodes latent points (`n * latent`) to pixel means (`n * input`).
    pub async fn decode(&self, z: &[f32]) -> Result<Vec<f32>, GpuError> {
        Ok(self.decode_timed(z).await?.0)
    }

    /// [`GpuEngine::decode`], plus the GPU time of the decode in milliseconds where the adapter
    /// supports timestamp queries.
    pub async fn decode_timed(&self, z: &[f32]) -> Result<(Vec<f32>, Option<f64>), GpuError> {
        let (parts, stride) = self.run_input(&self.decoder, z, self.arch.latent, "latent points", true).await?;
        self.gpu.read_rows(&parts, stride, self.arch.input, true).await
    }

    /// Encodes images (`n * input` intensities in [0, 1]) to their means and, for a VAE, their
    /// log-variances, each `n * latent`.
    pub async fn encode(&self, images: &[f32]) -> Result<Encoding, GpuError> {
        let (parts, stride) = self.run_input(&self.encoder, images, self.arch.input, "images", false).await?;
        let d = self.arch.latent;
        if !self.arch.kind.is_variational() {
            return Ok(Encoding { mu: self.gpu.read_rows(&parts, stride, d, false).await?.0, logvar: None });
        }
        let (stats, _) = self.gpu.read_rows(&parts, stride, 2 * d, false).await?;
        let mut mu = Vec::with_capacity(stats.len() / 2);
        let mut logvar = Vec::with_capacity(stats.len() / 2);
        for row in stats.chunks_exact(2 * d) {
            mu.extend_from_slice(&row[..d]);
            logvar.extend_from_slice(&row[d..]);
        }
        Ok(Encoding { mu, logvar: Some(logvar) })
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
        let n = items(mu, d, "means")?;
        if logvar.len() != mu.len() {
            return Err(ModelError::InputSize { what: "log-variances (one per mean)", per_item: d, found: logvar.len() }.into());
        }
        let rows = n * k;
        if rows > u32::MAX as usize {
            return Err(GpuError::Unsupported(format!("{rows} samples exceed the sampler's 32-bit sample numbers")));
        }
        let stats = sampler::stats_rows(mu, logvar, d);
        let gpu = &self.gpu;
        gpu.guarded(|| {
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("sample") });
            let mut parts = Vec::new();
            {
                let mut pass = gpu.begin_pass(&mut enc, false);
                for c in device::chunks(rows, self.max_rows) {
                    // The items these samples belong to: at most c.len() of them.
                    let items = c.start / k..(c.end - 1) / k + 1;
                    let s = gpu.upload("stats", &stats[items.start * 2 * d..items.end * 2 * d], wgpu::BufferUsages::COPY_DST);
                    let z = self.sampler.record(gpu, &mut pass, &s, c.clone(), k, seed);
                    let pixels = decode.then(|| self.dense.record_chain(gpu, &mut pass, &self.decoder, &z, d, c.len()));
                    parts.push((z, c.len(), pixels));
                }
            }
            gpu.queue.submit([enc.finish()]);
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
        Ok(self.gpu.read_rows(&zs, d, d, false).await?.0)
    }

    /// Samples on the GPU and decodes the samples there too: (zs, pixels).
    pub async fn sample_and_decode(&self, mu: &[f32], logvar: &[f32], k: usize, seed: u32) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        let parts = self.run_sampler(mu, logvar, k, seed, true).await?;
        let (zs, px): (Vec<_>, Vec<_>) = parts.into_iter().map(|(z, r, p)| ((z, r), (p.expect("decoded"), r))).unzip();
        let d = self.arch.latent;
        let zs = self.gpu.read_rows(&zs, d, d, false).await?.0;
        let px = self.gpu.read_rows(&px, Self::stride(&self.decoder, d), self.arch.input, false).await?.0;
        Ok((zs, px))
    }
}
