//! Draws a decoded digit from the GPU buffer the decoder wrote, with a render pass, so the
//! page's hot path (drag, decode, show) never copies pixels back to the CPU. Shared by the
//! browser (a canvas surface) and the native tests (an offscreen texture). It owns the types it
//! draws from and into ([`GpuBatch`], [`DigitTarget`]), so it depends on nothing else of the
//! engine.

use wgpu::util::DeviceExt;

const DIGIT_WGSL: &str = include_str!("../../shaders/digit.wgsl");

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

/// Where [`GpuEngine::draw_digit`](super::GpuEngine::draw_digit) draws: a texture view of `size`
/// pixels, and the surface frame it belongs to, if any (presented after the draw).
pub struct DigitTarget {
    pub view: wgpu::TextureView,
    pub size: (u32, u32),
    pub frame: Option<wgpu::SurfaceTexture>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct View {
    side: u32,
    /// The digit's first value, counted from the start of the bound range.
    offset: u32,
    width: u32,
    height: u32,
}

/// The render pipeline that draws one digit of a [`GpuBatch`] over a whole target.
pub struct DigitView {
    pipeline: wgpu::RenderPipeline,
    format: wgpu::TextureFormat,
}

impl DigitView {
    /// A pipeline that draws into targets of `format`. Use a non-sRGB format: the values are
    /// the model's intensities, written as they are (as the CPU path paints them).
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("digit"),
            source: wgpu::ShaderSource::Wgsl(DIGIT_WGSL.into()),
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("digit"),
            layout: None,
            vertex: wgpu::VertexState { module: &module, entry_point: Some("vs"), compilation_options: Default::default(), buffers: &[] },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState { format, blend: None, write_mask: wgpu::ColorWrites::ALL })],
            }),
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        });
        DigitView { pipeline, format }
    }

    pub fn format(&self) -> wgpu::TextureFormat {
        self.format
    }

    /// Records drawing digit `row` of `batch` (whose rows hold `side * side` values, `batch.stride`
    /// floats apart) over the whole `target` of `width x height` pixels. Only that row is bound
    /// (from the aligned offset before it), so a batch larger than the device's largest storage
    /// binding still draws.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        device: &wgpu::Device,
        enc: &mut wgpu::CommandEncoder,
        batch: &GpuBatch,
        row: usize,
        side: usize,
        target: &wgpu::TextureView,
        size: (u32, u32),
    ) {
        let bind = self.bind(device, batch, row, side, size);
        self.draw(enc, &bind, target);
    }

    /// The bind group that draws digit `row` of `batch` onto a target of `width x height`: made
    /// once and reused by a caller that draws from the same buffer again and again (the drag).
    pub fn bind(&self, device: &wgpu::Device, batch: &GpuBatch, row: usize, side: usize, (width, height): (u32, u32)) -> wgpu::BindGroup {
        debug_assert!(row < batch.rows && side * side <= batch.width && batch.width <= batch.stride);
        let first = (row * batch.stride * 4) as u64;
        let align = device.limits().min_storage_buffer_offset_alignment as u64;
        let base = first / align * align;
        let bytes = first - base + (side * side * 4) as u64;
        let view = View { side: side as u32, offset: ((first - base) / 4) as u32, width: width.max(1), height: height.max(1) };
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("digit.view"),
            contents: bytemuck::bytes_of(&view),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("digit"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &batch.buffer,
                        offset: base,
                        size: wgpu::BufferSize::new(bytes),
                    }),
                },
            ],
        })
    }

    /// Records drawing with a bind group from [`DigitView::bind`] over the whole `target`.
    pub fn draw(&self, enc: &mut wgpu::CommandEncoder, bind: &wgpu::BindGroup, target: &wgpu::TextureView) {
        let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("digit"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: target,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color::BLACK), store: wgpu::StoreOp::Store },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind, &[]);
        pass.draw(0..3, 0..1);
    }
}
