//! The whole training step on the GPU: gather the batch, forward through the encoder, sample,
//! decode, the loss and its gradient, backward through every layer, Adam. Every dispatch of a
//! step is prepared once (`program.rs`); a step reads its batch, noise seed and Adam constants from
//! a step table written once per epoch ([`Step`]), so recording steps uploads nothing and
//! reads nothing back except the loss sums of a group of steps, which the caller collects after
//! the next group is queued.
//!
//! Async like the rest of the engine, so the page can train with it too; the native trainer
//! (`train::gpu_step`) drives it with pollster. Every tensor of a step is tested against the CPU
//! reference's `loss_and_grad` and Adam (`tests/gpu_training.rs`).

mod kernels;
mod program;

use std::ops::Range;

pub use kernels::Step;

use crate::architecture::Architecture;
use crate::model::{ParamLayout, Vae};

use super::device::{self, Gpu};
use super::dispatch::Dispatch;
use super::error::GpuError;
use super::matmul::{Matmul, MatmulKernel};
use kernels::Kernels;
use program::Buffers;

/// Options for [`GpuTrainer::new`].
#[derive(Clone, Debug, Default)]
pub struct TrainerOptions {
    /// The product kernel; by default tiled, on every adapter: on lavapipe (2 cores) the default
    /// model trains at about 490 examples/s on it and 287 on the blocked kernel.
    pub matmul: Option<MatmulKernel>,
}

/// What a trainer starts from: `vae`'s parameters, Adam's moments `m` and `v`, and the training
/// images (bytes, whole images of `vae`'s input size), for batches of up to `max_rows` examples
/// and epochs of up to `max_steps` steps.
#[derive(Clone, Copy)]
pub struct TrainerStart<'a> {
    pub vae: &'a Vae,
    pub m: &'a [f32],
    pub v: &'a [f32],
    pub images: &'a [u8],
    pub max_rows: usize,
    pub max_steps: usize,
}

/// One step's loss sums over its batch, and whether every parameter stayed finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoss {
    pub reconstruction: f64,
    pub kl: f64,
    pub finite: bool,
}

/// Steps that have been submitted; [`GpuTrainer::losses`] reads their loss sums.
pub struct Submitted {
    slots: Range<usize>,
    staging: wgpu::Buffer,
    index: wgpu::SubmissionIndex,
}

/// A model, its Adam moments and the training images on the GPU, ready to take steps.
pub struct GpuTrainer {
    gpu: Gpu,
    info: wgpu::AdapterInfo,
    kernels: Kernels,
    matmul: Matmul,
    bufs: Buffers,
    /// Step programs by batch rows (an epoch has at most two sizes: full and last).
    programs: Vec<(usize, Vec<Dispatch>)>,
    lay: ParamLayout,
    arch: Architecture,
    max_rows: usize,
    max_steps: usize,
    n_train: usize,
}

impl GpuTrainer {
    /// Finds an adapter and uploads what `start` holds.
    pub async fn new(start: TrainerStart<'_>, options: TrainerOptions) -> Result<Self, GpuError> {
        let (_instance, adapter) = device::request_adapter().await?;
        Self::with_adapter(adapter, start, options).await
    }

    /// [`GpuTrainer::new`] on a given adapter.
    pub async fn with_adapter(adapter: wgpu::Adapter, start: TrainerStart<'_>, options: TrainerOptions) -> Result<Self, GpuError> {
        let gpu = Gpu::open(&adapter, None).await?;
        Self::on_device(gpu, adapter.get_info(), start, options).await
    }

    /// [`GpuTrainer::new`] on the device of a running engine (the page's: a browser's adapter
    /// opens one device), leaving the engine as it was.
    pub async fn on_engine(engine: &super::GpuEngine, start: TrainerStart<'_>, options: TrainerOptions) -> Result<Self, GpuError> {
        Self::on_device(engine.gpu().clone(), engine.adapter().get_info(), start, options).await
    }

    async fn on_device(gpu: Gpu, info: wgpu::AdapterInfo, start: TrainerStart<'_>, options: TrainerOptions) -> Result<Self, GpuError> {
        let TrainerStart { vae, m, v, images, max_rows, max_steps } = start;
        let arch = vae.arch().clone();
        let lay = vae.layout().clone();
        let px = arch.input;
        if m.len() != lay.len || v.len() != lay.len {
            return Err(GpuError::Unsupported(format!(
                "Adam's moments hold {} and {} values; the model has {} parameters",
                m.len(),
                v.len(),
                lay.len
            )));
        }
        if px == 0 || !images.len().is_multiple_of(px) || images.is_empty() {
            return Err(GpuError::Unsupported(format!("{} bytes of training images are not whole images of {px} pixels", images.len())));
        }
        let n_train = images.len() / px;
        if max_rows == 0 || max_rows > u16::MAX as usize || max_steps == 0 {
            return Err(GpuError::Unsupported(format!("batches of {max_rows} rows: the GPU trainer takes 1 to {}", u16::MAX)));
        }
        if images.len() > u32::MAX as usize / 2 {
            return Err(GpuError::Unsupported(format!(
                "{} bytes of training images exceed the GPU trainer's 32-bit indices",
                images.len()
            )));
        }
        let limits = gpu.device.limits();
        let largest = device::largest_binding(&limits);
        let biggest = [images.len() as u64, 4 * lay.len as u64, 4 * (max_rows * px) as u64].into_iter().max().unwrap_or(0);
        if biggest > largest {
            return Err(GpuError::Unsupported(format!(
                "the training data needs a {biggest}-byte buffer; this device binds at most {largest} bytes"
            )));
        }
        let kernel = options.matmul.unwrap_or(MatmulKernel::Tiled);
        let mut packed = vec![0u32; images.len().div_ceil(4)];
        for (w, chunk) in packed.iter_mut().zip(images.chunks(4)) {
            *w = chunk.iter().enumerate().fold(0, |acc, (i, &b)| acc | (b as u32) << (8 * i));
        }
        let (kernels, matmul, bufs) = gpu
            .guarded(|| {
                let kernels = Kernels::new(&gpu);
                let matmul = Matmul::new(&gpu, kernel);
                let bufs = Buffers::new(&gpu, &lay, &arch, vae.params(), m, v, &packed, n_train, max_rows, max_steps);
                (kernels, matmul, bufs)
            })
            .await?;
        Ok(GpuTrainer { gpu, info, kernels, matmul, bufs, programs: Vec::new(), lay, arch, max_rows, max_steps, n_train })
    }

    /// The adapter in use, e.g. "NVIDIA H100 (Vulkan)".
    pub fn adapter_name(&self) -> String {
        device::adapter_name(&self.info)
    }

    /// Whether the adapter is a software one (lavapipe, SwiftShader): the CPU runs faster there.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The product kernel in use.
    pub fn matmul_kernel(&self) -> MatmulKernel {
        self.matmul.kernel
    }

    /// Starts an epoch: writes its permutation of the training images and its step table, and
    /// points the step cursor at step `first` (a resumed epoch starts partway).
    pub fn begin_epoch(&mut self, perm: &[u32], steps: &[Step], first: usize) -> Result<(), GpuError> {
        self.gpu.check_lost()?;
        if perm.len() != self.n_train || steps.len() > self.max_steps || first > steps.len() {
            return Err(GpuError::Unsupported(format!(
                "an epoch of {} steps over {} images, from step {first}: the trainer was made for {} images and at most {} steps",
                steps.len(),
                perm.len(),
                self.n_train,
                self.max_steps
            )));
        }
        if let Some(s) =
            steps.iter().find(|s| s.rows == 0 || s.rows as usize > self.max_rows || (s.batch_start + s.rows) as usize > self.n_train)
        {
            return Err(GpuError::Unsupported(format!("a step of {} rows from {} does not fit the epoch", s.rows, s.batch_start)));
        }
        let q = &self.gpu.queue;
        q.write_buffer(&self.bufs.perm, 0, bytemuck::cast_slice(perm));
        if !steps.is_empty() {
            q.write_buffer(&self.bufs.steps, 0, bytemuck::cast_slice(steps));
        }
        q.write_buffer(&self.bufs.cursor, 0, bytemuck::bytes_of(&(first as u32)));
        let mut enc = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("train.epoch") });
        enc.clear_buffer(&self.bufs.bad, 0, None);
        q.submit([enc.finish()]);
        Ok(())
    }

    /// Rewrites the step table from step `from` on (a changed beta applies from the next step
    /// not yet submitted; submitted steps keep the values they were queued with, since queue
    /// writes land between submissions).
    pub fn update_steps(&mut self, steps: &[Step], from: usize) -> Result<(), GpuError> {
        self.gpu.check_lost()?;
        if steps.len() > self.max_steps || from > steps.len() {
            return Err(GpuError::Unsupported(format!("steps {from}.. of a table of {} (at most {})", steps.len(), self.max_steps)));
        }
        if from < steps.len() {
            let offset = (from * std::mem::size_of::<Step>()) as u64;
            self.gpu.queue.write_buffer(&self.bufs.steps, offset, bytemuck::cast_slice(&steps[from..]));
        }
        Ok(())
    }

    /// Reads entry `slot` of the step table back from the device: what the GPU uses (or used)
    /// for that step, e.g. its KL weight `kl_scale / scale`.
    pub async fn read_step(&self, slot: usize) -> Result<Step, GpuError> {
        let words = std::mem::size_of::<Step>() / 4;
        if slot >= self.max_steps {
            return Err(GpuError::Unsupported(format!("step {slot} of a table of {}", self.max_steps)));
        }
        let (all, _) = self.gpu.read_rows(&[(self.bufs.steps.clone(), self.max_steps)], words, words, false).await?;
        Ok(bytemuck::pod_read_unaligned(bytemuck::cast_slice(&all[slot * words..(slot + 1) * words])))
    }

    /// Destroys the device, as a driver reset would, to test what happens then.
    pub fn lose_device_for_testing(&self) {
        self.gpu.device.destroy();
        // Natively the loss is reported at the next maintenance, as browsers do once the task
        // yields.
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.gpu.device.poll(wgpu::PollType::Poll);
    }

    /// Makes the step program for batches of `rows` unless it exists.
    fn program(&mut self, rows: usize) {
        if !self.programs.iter().any(|(r, _)| *r == rows) {
            let p = program::step_program(&self.gpu, &self.kernels, &self.matmul, &self.lay, &self.arch, &self.bufs, rows);
            self.programs.push((rows, p));
        }
    }

    /// Records and submits steps `slots` of the epoch's table `steps` (the table given to
    /// [`GpuTrainer::begin_epoch`]; the cursor must be at `slots.start`) in one command buffer,
    /// and queues the copy of their loss sums for [`GpuTrainer::losses`]. Awaits nothing.
    pub fn submit(&mut self, steps: &[Step], slots: Range<usize>) -> Result<Submitted, GpuError> {
        self.gpu.check_lost()?;
        let n = slots.len();
        for i in slots.clone() {
            self.program(steps[i].rows as usize);
        }
        let staging = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("train.losses"),
            size: (12 * n.max(1)) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("train.steps") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("train"), timestamp_writes: None });
            for s in &steps[slots.clone()] {
                if let Some((_, program)) = self.programs.iter().find(|(r, _)| *r == s.rows as usize) {
                    program.iter().for_each(|d| d.record(&mut pass));
                }
            }
        }
        if n > 0 {
            enc.copy_buffer_to_buffer(&self.bufs.step_loss, (8 * slots.start) as u64, &staging, 0, (8 * n) as u64);
            enc.copy_buffer_to_buffer(&self.bufs.bad, (4 * slots.start) as u64, &staging, (8 * n) as u64, (4 * n) as u64);
        }
        let index = self.gpu.queue.submit([enc.finish()]);
        Ok(Submitted { slots, staging, index })
    }

    /// The loss sums of submitted steps, once the GPU has run them.
    pub async fn losses(&self, s: Submitted) -> Result<Vec<StepLoss>, GpuError> {
        let n = s.slots.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        s.staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.gpu
            .device
            .poll(wgpu::PollType::Wait { submission_index: Some(s.index), timeout: None })
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        #[cfg(target_arch = "wasm32")]
        let _ = s.index;
        let mapped = rx.await.map_err(|_| GpuError::Readback("the map callback was dropped".into()))?;
        // A lost device fails the map: say so rather than that the map failed.
        self.gpu.check_lost()?;
        mapped.map_err(|e| GpuError::Readback(e.to_string()))?;
        let view = s.staging.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
        let sums: &[f32] = bytemuck::cast_slice(&view[..8 * n]);
        let bad: &[u32] = bytemuck::cast_slice(&view[8 * n..12 * n]);
        Ok((0..n).map(|i| StepLoss { reconstruction: sums[2 * i] as f64, kl: sums[2 * i + 1] as f64, finite: bad[i] == 0 }).collect())
    }

    /// Reads the parameters and Adam's moments back (for a checkpoint, or the model file).
    pub async fn read_state(&self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>), GpuError> {
        let n = self.lay.len;
        let parts = [(self.bufs.params.clone(), n), (self.bufs.m.clone(), n), (self.bufs.v.clone(), n)];
        let (all, _) = self.gpu.read_rows(&parts, 1, 1, false).await?;
        let (p, rest) = all.split_at(n);
        let (m, v) = rest.split_at(n);
        Ok((p.to_vec(), m.to_vec(), v.to_vec()))
    }

    /// Reads back the gradient of the last step (parameter-shaped, before its Adam update).
    pub async fn read_gradient(&self) -> Result<Vec<f32>, GpuError> {
        Ok(self.gpu.read_rows(&[(self.bufs.grad.clone(), self.lay.len)], 1, 1, false).await?.0)
    }
}
