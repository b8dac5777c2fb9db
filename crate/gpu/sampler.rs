//! The reparameterization sampler z = mu + exp(logvar / 2) * eps (`shaders/sampler.wgsl`, the
//! GPU twin of `rng.rs`): the [mu | logvar] rows it reads, its parameters, and the recording of
//! one dispatch over a chunk of samples.

use std::ops::Range;

use super::device::{Gpu, WORKGROUP};

/// The sampler with the noise generator it draws from prepended.
const SAMPLER_WGSL: &str = concat!(
    include_str!("../../shaders/atanh.wgsl"),
    include_str!("../../shaders/normal.wgsl"),
    include_str!("../../shaders/sampler.wgsl")
);

/// The values of `sampler.wgsl`'s pipeline-overridable constants (it gives them no defaults).
pub(super) const CONSTANTS: [(&str, f64); 1] = [("WORKGROUP", WORKGROUP as f64)];

/// The shader's `Params` uniform.
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

/// Item `i`'s mean then its log-variance, item after item: the rows (`2 * d` values each) the
/// sampler reads. `mu` and `logvar` hold the same number of whole rows of `d` values.
pub(super) fn stats_rows(mu: &[f32], logvar: &[f32], d: usize) -> Vec<f32> {
    let mut stats = Vec::with_capacity(2 * mu.len());
    for (m, lv) in mu.chunks_exact(d.max(1)).zip(logvar.chunks_exact(d.max(1))) {
        stats.extend_from_slice(m);
        stats.extend_from_slice(lv);
    }
    stats
}

/// The sampler's pipeline, for samples of `latent` values.
pub(super) struct Sampler {
    pipeline: wgpu::ComputePipeline,
    latent: usize,
}

impl Sampler {
    /// Builds the pipeline (inside the caller's error scope: a failure shows there).
    pub(super) fn new(gpu: &Gpu, latent: usize) -> Self {
        Sampler { pipeline: gpu.compute_pipeline(SAMPLER_WGSL, "sample", &CONSTANTS), latent }
    }

    /// Records the sampler for samples `samples` (numbered `i * k + j` over the whole batch) of
    /// `k` per item; `stats` holds [mu | logvar] rows from item `samples.start / k` on. Returns
    /// the new buffer of `samples.len()` rows of `latent` values.
    pub(super) fn record(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        stats: &wgpu::Buffer,
        samples: Range<usize>,
        k: usize,
        seed: u32,
    ) -> wgpu::Buffer {
        let d = self.latent;
        let total = samples.len() * d;
        let z = gpu.storage("z", total, wgpu::BufferUsages::COPY_SRC);
        let workgroup = WORKGROUP as usize;
        let groups = total.div_ceil(workgroup).max(1);
        let gx = groups.min(gpu.max_workgroups as usize);
        let gy = groups.div_ceil(gx);
        let params = SampleParams {
            samples: samples.len() as u32,
            k: k as u32,
            latent: d as u32,
            seed,
            stats_stride: 2 * d as u32,
            logvar_offset: d as u32,
            row_width: (gx * workgroup) as u32,
            sample0: samples.start as u32,
        };
        let uniform = gpu.uniform("sample.params", &params);
        let bind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("sample"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: stats.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: z.as_entire_binding() },
            ],
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(gx as u32, gy as u32, 1);
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_rows_put_each_items_logvar_after_its_mean() {
        let (mu, logvar) = ([1.0, 2.0, 3.0, 4.0], [-1.0, -2.0, -3.0, -4.0]);
        assert_eq!(stats_rows(&mu, &logvar, 2), [1.0, 2.0, -1.0, -2.0, 3.0, 4.0, -3.0, -4.0]);
        assert!(stats_rows(&[], &[], 2).is_empty());
    }

    #[test]
    fn the_shader_declares_the_constants_rust_gives_it() {
        crate::gpu::device::assert_overrides_match(SAMPLER_WGSL, &CONSTANTS);
    }
}
