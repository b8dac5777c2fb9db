// Draws one decoded digit (side x side pixel means, row-major, top row first) over the whole
// render target, each model pixel a crisp square: the page's digit comes straight from the
// decoder's output buffer, with no readback.

struct View {
    side: u32,
    // Index of the digit's first value in `pixels` (the bound range of the batch buffer).
    offset: u32,
    // Size of the render target in pixels.
    width: u32,
    height: u32,
}

@group(0) @binding(0) var<uniform> view: View;
@group(0) @binding(1) var<storage, read> pixels: array<f32>;

// One triangle that covers the viewport.
@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4f {
    let p = vec2f(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4f(p * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) pos: vec4f) -> @location(0) vec4f {
    // Framebuffer coordinates run from the top-left corner, as the image rows do.
    let x = min(u32(pos.x * f32(view.side) / f32(view.width)), view.side - 1u);
    let y = min(u32(pos.y * f32(view.side) / f32(view.height)), view.side - 1u);
    let v = clamp(pixels[view.offset + y * view.side + x], 0.0, 1.0);
    return vec4f(v, v, v, 1.0);
}
