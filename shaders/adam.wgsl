// Adam with bias correction (`train::adam`, PyTorch's defaults): the corrections fold into the
// step size and the denominator, the same operations in the same order as the CPU's. A parameter
// that is no longer finite (the test is on its bits: WGSL may assume floats are finite) marks
// the step in `bad`, which the trainer reads with the loss sums.

struct AdamParams {
    n: u32,
    row_width: u32, // invocations per dispatch row (2-D grids for large models)
}

@group(0) @binding(2) var<uniform> a: AdamParams;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> params: array<f32>;
@group(0) @binding(5) var<storage, read_write> m: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;
@group(0) @binding(7) var<storage, read_write> bad: array<atomic<u32>>;

override WORKGROUP: u32;

@compute @workgroup_size(WORKGROUP)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * a.row_width + gid.x;
    if (i >= a.n) {
        return;
    }
    let s = current();
    let g = grad[i];
    let mi = s.beta1 * m[i] + (1.0 - s.beta1) * g;
    let vi = s.beta2 * v[i] + (1.0 - s.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let pi = params[i] - s.adam_step * mi / (sqrt(vi) / s.adam_c2_sqrt + s.adam_eps);
    params[i] = pi;
    if ((bitcast<u32>(pi) & 0x7f800000u) == 0x7f800000u) {
        atomicOr(&bad[s.slot], 1u);
    }
}
