// A dense layer for a batch: y = act(x W^T + b). The decoder is a chain of these, and the
// encoder reuses the same kernel (its mu and logvar heads run as one layer with their weights
// stacked). Layer sizes come from the model file through `dims`, never from constants here.
//
// Layout, chosen for coalesced reads on real GPUs:
// - `wt` holds W transposed ([in][out], out padded to a multiple of 4, zeros in the padding),
//   read as vec4: the invocations of a workgroup read consecutive vec4s of one row of W^T per
//   step of k.
// - Each invocation computes 4 outputs (one vec4) for ROWS batch rows, so every weight load
//   feeds 4 * ROWS multiply-adds; the ROWS inputs per k are the same address for the whole
//   workgroup (a broadcast).
// - No shared memory and no barriers: on CPU drivers (lavapipe, SwiftShader) barriers are
//   expensive, and on GPUs the weight rows stay in L1/L2 across workgroups.

struct Dims {
    rows: u32,        // batch rows in x and y
    n_in: u32,        // inputs per row (the used part of each x row)
    n_out4: u32,      // outputs per row / 4 (padded)
    in_stride: u32,   // floats between consecutive x rows
    out_stride4: u32, // vec4s between consecutive y rows
    act: u32,         // ACT_RELU, ACT_SIGMOID, or any other code for identity
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

// Pipeline-overridable constants, set from Rust when the pipeline is built (crate/gpu/dense.rs,
// its CONSTANTS): no defaults here, so a value Rust does not give fails the pipeline instead of
// drifting apart from the Rust side's dispatch sizes and activation codes.
override ROWS: u32;        // batch rows per invocation: the body below is written for 4 (a0..a3)
override WORKGROUP: u32;   // invocations per workgroup
override ACT_RELU: u32;    // activation codes in dims.act
override ACT_SIGMOID: u32;

// Compared, not switched on: not every WGSL implementation takes overrides as case selectors.
fn activate(v: vec4<f32>) -> vec4<f32> {
    if (dims.act == ACT_RELU) {
        return max(v, vec4<f32>(0.0));
    }
    if (dims.act == ACT_SIGMOID) {
        return 1.0 / (1.0 + exp(-v));
    }
    return v;
}

@compute @workgroup_size(WORKGROUP)
fn dense(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x;
    let r0 = gid.y * ROWS;
    if (o >= dims.n_out4 || r0 >= dims.rows) {
        return;
    }
    // Rows past the end re-read the last row (in bounds) and are not written.
    let last = dims.rows - 1u;
    let x0 = r0 * dims.in_stride;
    let x1 = min(r0 + 1u, last) * dims.in_stride;
    let x2 = min(r0 + 2u, last) * dims.in_stride;
    let x3 = min(r0 + 3u, last) * dims.in_stride;
    let b = bias[o];
    var a0 = b;
    var a1 = b;
    var a2 = b;
    var a3 = b;
    for (var k = 0u; k < dims.n_in; k = k + 1u) {
        let w = wt[k * dims.n_out4 + o];
        a0 = fma(vec4<f32>(x[x0 + k]), w, a0);
        a1 = fma(vec4<f32>(x[x1 + k]), w, a1);
        a2 = fma(vec4<f32>(x[x2 + k]), w, a2);
        a3 = fma(vec4<f32>(x[x3 + k]), w, a3);
    }
    let y0 = r0 * dims.out_stride4 + o;
    y[y0] = activate(a0);
    if (r0 + 1u <= last) { y[y0 + dims.out_stride4] = activate(a1); }
    if (r0 + 2u <= last) { y[y0 + 2u * dims.out_stride4] = activate(a2); }
    if (r0 + 3u <= last) { y[y0 + 3u * dims.out_stride4] = activate(a3); }
}
