//! The training step's kernels other than the matrix product: their WGSL (each composed with the
//! shared step table, `shaders/step.wgsl`, and the noise generator where it draws noise), their
//! uniforms and the constants Rust gives them.

use bytemuck::{Pod, Zeroable};

use crate::architecture::Activation;
use crate::gpu::device::{Gpu, WORKGROUP};
use crate::gpu::matmul::act_code;

#[cfg(test)]
const STEP: &str = include_str!("../../../shaders/step.wgsl");
pub(super) const BATCH_WGSL: &str = concat!(include_str!("../../../shaders/step.wgsl"), include_str!("../../../shaders/batch.wgsl"));
pub(super) const LOSS_WGSL: &str = concat!(
    include_str!("../../../shaders/step.wgsl"),
    include_str!("../../../shaders/atanh.wgsl"),
    include_str!("../../../shaders/loss.wgsl")
);
pub(super) const LATENT_WGSL: &str = concat!(
    include_str!("../../../shaders/step.wgsl"),
    include_str!("../../../shaders/atanh.wgsl"),
    include_str!("../../../shaders/normal.wgsl"),
    include_str!("../../../shaders/activation.wgsl"),
    include_str!("../../../shaders/latent.wgsl")
);
pub(super) const COLUMN_SUMS_WGSL: &str = include_str!("../../../shaders/column_sums.wgsl");
pub(super) const ADAM_WGSL: &str = concat!(include_str!("../../../shaders/step.wgsl"), include_str!("../../../shaders/adam.wgsl"));
pub(super) const ADVANCE_WGSL: &str = include_str!("../../../shaders/advance.wgsl");

/// `LossParams::loss` for binary cross-entropy (any other value is squared error).
pub(super) const LOSS_BCE: u32 = 1;

pub(super) const WORKGROUP_ONLY: [(&str, f64); 1] = [("WORKGROUP", WORKGROUP as f64)];
pub(super) const LOSS_CONSTANTS: [(&str, f64); 2] = [("LOSS_BCE", LOSS_BCE as f64), ("ACT_SIGMOID", act_code(Activation::Sigmoid) as f64)];
pub(super) const LATENT_CONSTANTS: [(&str, f64); 3] = [
    ("WORKGROUP", WORKGROUP as f64),
    ("ACT_RELU", act_code(Activation::Relu) as f64),
    ("ACT_SIGMOID", act_code(Activation::Sigmoid) as f64),
];

/// One step's entry of the step table: `step.wgsl`'s `Step`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Step {
    pub batch_start: u32,
    pub rows: u32,
    pub slot: u32,
    pub eps_seed: u32,
    pub scale: f32,
    pub kl_scale: f32,
    pub adam_step: f32,
    pub adam_c2_sqrt: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub adam_eps: f32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct Gather {
    pub pixels: u32,
    pub row_width: u32,
    pub pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct LossParams {
    pub pixels: u32,
    pub loss: u32,
    pub out_act: u32,
    pub rows: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct LatentParams {
    pub latent: u32,
    pub variational: u32,
    pub mu_act: u32,
    pub logvar_act: u32,
    pub rows: u32,
    pub pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct Columns {
    pub rows: u32,
    pub cols: u32,
    pub src_off: u32,
    pub dst_off: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct AdamParams {
    pub n: u32,
    pub row_width: u32,
    pub pad: [u32; 2],
}

/// Every training pipeline but the product's.
pub(super) struct Kernels {
    pub gather: wgpu::ComputePipeline,
    pub reconstruction: wgpu::ComputePipeline,
    pub step_sums: wgpu::ComputePipeline,
    pub reparameterize: wgpu::ComputePipeline,
    pub reparameterize_backward: wgpu::ComputePipeline,
    pub column_sums: wgpu::ComputePipeline,
    pub adam: wgpu::ComputePipeline,
    pub advance: wgpu::ComputePipeline,
}

impl Kernels {
    /// Builds the pipelines (inside the caller's error scope: a failure shows there).
    pub fn new(gpu: &Gpu) -> Self {
        Kernels {
            gather: gpu.compute_pipeline(BATCH_WGSL, "gather", &WORKGROUP_ONLY),
            reconstruction: gpu.compute_pipeline(LOSS_WGSL, "reconstruction", &LOSS_CONSTANTS),
            step_sums: gpu.compute_pipeline(LOSS_WGSL, "step_sums", &LOSS_CONSTANTS),
            reparameterize: gpu.compute_pipeline(LATENT_WGSL, "reparameterize", &LATENT_CONSTANTS),
            reparameterize_backward: gpu.compute_pipeline(LATENT_WGSL, "reparameterize_backward", &LATENT_CONSTANTS),
            column_sums: gpu.compute_pipeline(COLUMN_SUMS_WGSL, "column_sums", &WORKGROUP_ONLY),
            adam: gpu.compute_pipeline(ADAM_WGSL, "adam", &WORKGROUP_ONLY),
            advance: gpu.compute_pipeline(ADVANCE_WGSL, "advance", &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::device::assert_overrides_match;

    #[test]
    fn each_shader_declares_the_constants_rust_gives_it() {
        assert_overrides_match(BATCH_WGSL, &WORKGROUP_ONLY);
        assert_overrides_match(LOSS_WGSL, &LOSS_CONSTANTS);
        assert_overrides_match(LATENT_WGSL, &LATENT_CONSTANTS);
        assert_overrides_match(COLUMN_SUMS_WGSL, &WORKGROUP_ONLY);
        assert_overrides_match(ADAM_WGSL, &WORKGROUP_ONLY);
        assert_overrides_match(ADVANCE_WGSL, &[]);
    }

    #[test]
    fn the_step_table_entry_matches_the_shaders_struct() {
        // step.wgsl's Step: 12 four-byte fields, in this order.
        let fields: Vec<&str> = STEP
            .split("struct Step {")
            .nth(1)
            .and_then(|s| s.split('}').next())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().split(':').next().filter(|f| !f.is_empty()))
            .collect();
        assert_eq!(
            fields,
            [
                "batch_start",
                "rows",
                "slot",
                "eps_seed",
                "scale",
                "kl_scale",
                "adam_step",
                "adam_c2_sqrt",
                "beta1",
                "beta2",
                "adam_eps",
                "pad"
            ]
        );
        assert_eq!(std::mem::size_of::<Step>(), 4 * fields.len());
    }
}
