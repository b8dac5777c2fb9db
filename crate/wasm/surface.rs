//! The digit canvas's WebGPU surface: the GPU draws the decoded digit there without a readback.

use crate::gpu::{DigitTarget, DigitView, DragPath, GpuEngine, GpuError};

use super::browser::mark_digit_drawn;

/// The digit canvas's WebGPU surface, configured for the engine's device.
pub(super) struct DigitSurface {
    surface: wgpu::Surface<'static>,
    view: DigitView,
    size: (u32, u32),
    /// The drag path's buffers, made with the surface: a digit allocates and awaits nothing.
    path: DragPath,
}

impl DigitSurface {
    pub(super) fn new(gpu: &GpuEngine, canvas: &web_sys::HtmlCanvasElement) -> Result<Self, GpuError> {
        let instance = gpu.instance().ok_or_else(|| GpuError::Surface("the engine has no instance".into()))?;
        let surface = instance.create_surface(wgpu::SurfaceTarget::Canvas(canvas.clone())).map_err(|e| GpuError::Surface(e.to_string()))?;
        let size = (canvas.width().max(1), canvas.height().max(1));
        let mut config = surface
            .get_default_config(gpu.adapter(), size.0, size.1)
            .ok_or_else(|| GpuError::Surface("the canvas does not support this adapter".into()))?;
        // Intensities are written as they are, like the CPU path paints them: no sRGB encoding.
        let formats = surface.get_capabilities(gpu.adapter()).formats;
        config.format = formats.iter().copied().find(|f| !f.is_srgb()).unwrap_or(config.format.remove_srgb_suffix());
        config.alpha_mode = wgpu::CompositeAlphaMode::Opaque;
        surface.configure(gpu.device(), &config);
        let view = DigitView::new(gpu.device(), config.format);
        let path = gpu.drag_path(&view, size)?;
        Ok(DigitSurface { surface, view, size, path })
    }

    /// Draws the digit of `z` through the drag path; a GPU error surfaces on the next call.
    pub(super) fn draw(&self, gpu: &GpuEngine, z: &[f32]) -> Result<(), GpuError> {
        gpu.draw_digit_now(&self.path, &self.view, z, || {
            let frame = match self.surface.get_current_texture() {
                wgpu::CurrentSurfaceTexture::Success(t) | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
                other => return Err(GpuError::Surface(format!("no frame to draw on ({other:?})"))),
            };
            let view = frame.texture.create_view(&wgpu::TextureViewDescriptor { format: Some(self.view.format()), ..Default::default() });
            // The draw is recorded, submitted and presented in this same task, so in this frame:
            // marking after the GPU has finished would land in a later frame that shows nothing new.
            mark_digit_drawn();
            Ok(DigitTarget { view, size: self.size, frame: Some(frame) })
        })
    }
}
