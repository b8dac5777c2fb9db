// Gathers a training batch on the GPU: the images (uploaded once, as bytes packed four to a u32)
// at the step's entries of the epoch's permutation, as intensities in [0, 1].

struct Gather {
    pixels: u32,
    row_width: u32, // invocations per dispatch row (2-D grids for large batches)
}

@group(0) @binding(2) var<uniform> g: Gather;
@group(0) @binding(3) var<storage, read> images: array<u32>;
@group(0) @binding(4) var<storage, read> perm: array<u32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;

override WORKGROUP: u32;

@compute @workgroup_size(WORKGROUP)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = current();
    let t = gid.y * g.row_width + gid.x;
    if (t >= s.rows * g.pixels) {
        return;
    }
    let r = t / g.pixels;
    let byte = perm[s.batch_start + r] * g.pixels + t % g.pixels;
    let value = (images[byte / 4u] >> (8u * (byte % 4u))) & 0xffu;
    x[t] = f32(value) * (1.0 / 255.0);
}
