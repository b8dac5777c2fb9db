//! The drag path: one latent point decoded and drawn per input event, with nothing allocated and
//! nothing awaited per digit. Its buffers, uniforms and bind groups are made once per engine and
//! canvas; a digit is one `write_buffer` and one submit. Errors are not awaited per digit (a
//! browser may answer GPU promises on a ~100 ms timer): the device's uncaught-error record
//! reports them on the next call, which then fails like any GPU error.

use super::dense::Chain;
use super::digit_view::{DigitTarget, DigitView, GpuBatch};
use super::GpuError;

/// What [`GpuEngine::draw_digit_now`](super::GpuEngine::draw_digit_now) reuses for every digit,
/// from [`GpuEngine::drag_path`](super::GpuEngine::drag_path).
pub struct DragPath {
    pub(super) z: wgpu::Buffer,
    pub(super) latent: usize,
    pub(super) chain: Chain,
    pub(super) digit: wgpu::BindGroup,
}

impl DragPath {
    /// The bind group that draws the chain's single output row with `view` onto targets of `size`.
    pub(super) fn new(
        z: wgpu::Buffer,
        latent: usize,
        chain: Chain,
        device: &wgpu::Device,
        view: &DigitView,
        width: usize,
        size: (u32, u32),
    ) -> Self {
        let side = (width as f64).sqrt() as usize;
        let batch = GpuBatch { buffer: chain.output.clone(), rows: 1, width, stride: width.div_ceil(4) * 4 };
        let digit = view.bind(device, &batch, 0, side, size);
        DragPath { z, latent, chain, digit }
    }

    /// Checks one point's size (bad input is the caller's error, not the GPU's).
    pub(super) fn check(&self, z: &[f32]) -> Result<(), GpuError> {
        if z.len() != self.latent {
            return Err(GpuError::Input(crate::error::ModelError::InputSize {
                what: "one latent point",
                per_item: self.latent,
                found: z.len(),
            }));
        }
        Ok(())
    }

    /// Records the decode and the draw onto `target`.
    pub(super) fn record(&self, dense: &super::dense::Dense, view: &DigitView, enc: &mut wgpu::CommandEncoder, target: &DigitTarget) {
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("drag"), timestamp_writes: None });
            dense.record(&mut pass, &self.chain);
        }
        view.draw(enc, &self.digit, &target.view);
    }
}
