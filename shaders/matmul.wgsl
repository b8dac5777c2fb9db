// C = A B over strided operands, with an epilogue: the dense layers of training (forward,
// backward, weight gradients) and of large-batch decoding are all this one product.
//
// A(i, k) = a[a_off + i * a_si + k * a_sk] and B(k, j) = b[b_off + k * b_sk + j * b_sj], so the
// three products of a dense layer need no transposed copies: the forward x W^T (W is [out][in]),
// the backward dY W and the weight gradient dY^T X. C is row-major from c_off with row stride
// c_si. The epilogue, per element: add C's old value (accumulate), add bias[bias_off + j] and
// apply the activation `act` (forward), or multiply by the activation's slope at the layer's
// output aux(i, j) (backward: the ReLU mask, the sigmoid's o (1 - o)).
//
// Two kernels: `matmul_tiled` (64x64 tiles in workgroup memory, 16x16 invocations of 4x4
// outputs each in four named vec4 accumulators: a function-scope array indexed in loops spills
// on NVIDIA, 25x slower, see shared/docs/toolchain.md), the default, and `matmul_blocked`, 4x4
// outputs per invocation straight from memory with no barriers (slower on lavapipe too).

struct Dims {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    a_si: u32,
    a_sk: u32,
    b_off: u32,
    b_sk: u32,
    b_sj: u32,
    c_off: u32,
    c_si: u32,
    bias_off: u32,
    accumulate: u32, // 1: add C's old value
    bias: u32,       // 1: add the bias
    act: u32,        // forward activation code (ACT_*; any other code is identity)
    act_back: u32,   // backward: multiply by this activation's slope at aux (identity: nothing)
    aux_off: u32,
    aux_si: u32,
    a_vec: u32,      // how the tiled kernel reads A: VEC_K, VEC_MN (vec4s along k or i) or scalars
    b_vec: u32,      // likewise for B (along k or j)
}

@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;
// The same buffers as a and b, read as vec4s where `a_vec` and `b_vec` say it is aligned.
@group(0) @binding(6) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> b4: array<vec4<f32>>;

// Set from Rust when the pipeline is built (crate/gpu/matmul.rs), no defaults: the blocked
// kernel's workgroup size and the codes of `a_vec` and `b_vec` (any other: scalar reads).
// activation.wgsl, prepended, brings `activate` and `slope`.
override WORKGROUP: u32;
override VEC_K: u32;
override VEC_MN: u32;

fn finish(i: u32, j: u32, acc: f32) {
    if (i >= d.m || j >= d.n) {
        return;
    }
    let at = d.c_off + i * d.c_si + j;
    var v = acc;
    if (d.accumulate != 0u) {
        v = v + c[at];
    }
    if (d.bias != 0u) {
        v = v + bias[d.bias_off + j];
    }
    v = activate(v, d.act);
    if (d.act_back == ACT_RELU || d.act_back == ACT_SIGMOID) {
        v = v * slope(aux[d.aux_off + i * d.aux_si + j], d.act_back);
    }
    c[at] = v;
}

fn finish_row(i: u32, j0: u32, acc: vec4<f32>) {
    finish(i, j0, acc.x);
    finish(i, j0 + 1u, acc.y);
    finish(i, j0 + 2u, acc.z);
    finish(i, j0 + 3u, acc.w);
}

fn load_a(i: u32, k: u32) -> f32 {
    if (i >= d.m || k >= d.k) {
        return 0.0;
    }
    return a[d.a_off + i * d.a_si + k * d.a_sk];
}

fn load_b(k: u32, j: u32) -> f32 {
    if (k >= d.k || j >= d.n) {
        return 0.0;
    }
    return b[d.b_off + k * d.b_sk + j * d.b_sj];
}

// Tiles of 16 k by 64 rows (A) and 16 k by 64 columns (B), as vec4s of 4 rows or columns; each k
// row padded to 17 vec4s, so that invocations storing the same column of consecutive k rows
// (the loads along a contiguous k) hit different banks.
const TILE_ROW: u32 = 17u;
var<workgroup> tile_a: array<vec4<f32>, 272>;
var<workgroup> tile_b: array<vec4<f32>, 272>;

// Stores 4 values of one row (A) or column (B) at consecutive k from k0 + kq.
fn store_a_k(ii: u32, kq: u32, v: vec4<f32>) {
    tile_a[kq * TILE_ROW + ii / 4u][ii % 4u] = v.x;
    tile_a[(kq + 1u) * TILE_ROW + ii / 4u][ii % 4u] = v.y;
    tile_a[(kq + 2u) * TILE_ROW + ii / 4u][ii % 4u] = v.z;
    tile_a[(kq + 3u) * TILE_ROW + ii / 4u][ii % 4u] = v.w;
}

fn store_b_k(jj: u32, kq: u32, v: vec4<f32>) {
    tile_b[kq * TILE_ROW + jj / 4u][jj % 4u] = v.x;
    tile_b[(kq + 1u) * TILE_ROW + jj / 4u][jj % 4u] = v.y;
    tile_b[(kq + 2u) * TILE_ROW + jj / 4u][jj % 4u] = v.z;
    tile_b[(kq + 3u) * TILE_ROW + jj / 4u][jj % 4u] = v.w;
}

// The A tile for k0.. (64 rows by 16 k): one vec4 per invocation where A is aligned for it
// (Rust checks the offset, the strides and that the vec4s never straddle the matrix's edge),
// else 4 scalars, consecutive invocations reading along whichever index is contiguous.
fn fill_a(t: u32, i0: u32, k0: u32) {
    if (d.a_vec == VEC_K) {
        let ii = t / 4u;
        let kq = (t % 4u) * 4u;
        var v = vec4<f32>(0.0);
        if (i0 + ii < d.m && k0 + kq < d.k) {
            v = a4[(d.a_off + (i0 + ii) * d.a_si + k0 + kq) / 4u];
        }
        store_a_k(ii, kq, v);
        return;
    }
    if (d.a_vec == VEC_MN) {
        let kk = t / 16u;
        let iq = (t % 16u) * 4u;
        var v = vec4<f32>(0.0);
        if (i0 + iq < d.m && k0 + kk < d.k) {
            v = a4[(d.a_off + (k0 + kk) * d.a_sk + i0 + iq) / 4u];
        }
        tile_a[kk * TILE_ROW + iq / 4u] = v;
        return;
    }
    for (var e = 0u; e < 4u; e = e + 1u) {
        let idx = t + e * 256u;
        var ii = idx % 64u;
        var kk = idx / 64u;
        if (d.a_sk == 1u) {
            kk = idx % 16u;
            ii = idx / 16u;
        }
        tile_a[kk * TILE_ROW + ii / 4u][ii % 4u] = load_a(i0 + ii, k0 + kk);
    }
}

// The B tile for k0.. (16 k by 64 columns), as `fill_a`.
fn fill_b(t: u32, j0: u32, k0: u32) {
    if (d.b_vec == VEC_K) {
        let jj = t / 4u;
        let kq = (t % 4u) * 4u;
        var v = vec4<f32>(0.0);
        if (j0 + jj < d.n && k0 + kq < d.k) {
            v = b4[(d.b_off + (j0 + jj) * d.b_sj + k0 + kq) / 4u];
        }
        store_b_k(jj, kq, v);
        return;
    }
    if (d.b_vec == VEC_MN) {
        let kb = t / 16u;
        let jq = (t % 16u) * 4u;
        var v = vec4<f32>(0.0);
        if (j0 + jq < d.n && k0 + kb < d.k) {
            v = b4[(d.b_off + (k0 + kb) * d.b_sk + j0 + jq) / 4u];
        }
        tile_b[kb * TILE_ROW + jq / 4u] = v;
        return;
    }
    for (var e = 0u; e < 4u; e = e + 1u) {
        let idx = t + e * 256u;
        var jj = idx % 64u;
        var kb = idx / 64u;
        if (d.b_sj != 1u) {
            kb = idx % 16u;
            jj = idx / 16u;
        }
        tile_b[kb * TILE_ROW + jj / 4u][jj % 4u] = load_b(k0 + kb, j0 + jj);
    }
}

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.y * 16u + lid.x;
    let i0 = wg.y * 64u;
    let j0 = wg.x * 64u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < d.k; k0 = k0 + 16u) {
        fill_a(t, i0, k0);
        fill_b(t, j0, k0);
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            let av = tile_a[kk * TILE_ROW + lid.y];
            let bv = tile_b[kk * TILE_ROW + lid.x];
            acc0 = fma(vec4<f32>(av.x), bv, acc0);
            acc1 = fma(vec4<f32>(av.y), bv, acc1);
            acc2 = fma(vec4<f32>(av.z), bv, acc2);
            acc3 = fma(vec4<f32>(av.w), bv, acc3);
        }
        workgroupBarrier();
    }
    let i = i0 + lid.y * 4u;
    let j = j0 + lid.x * 4u;
    finish_row(i, j, acc0);
    finish_row(i + 1u, j, acc1);
    finish_row(i + 2u, j, acc2);
    finish_row(i + 3u, j, acc3);
}

// 4x4 outputs per invocation, no workgroup memory: invocation (x, y) of the grid computes rows
// 4y.. and columns 4x.. .
@compute @workgroup_size(WORKGROUP)
fn matmul_blocked(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * 4u;
    let j = gid.x * 4u;
    if (i >= d.m || j >= d.n) {
        return;
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < d.k; k = k + 1u) {
        let bv = vec4<f32>(load_b(k, j), load_b(k, j + 1u), load_b(k, j + 2u), load_b(k, j + 3u));
        acc0 = fma(vec4<f32>(load_a(i, k)), bv, acc0);
        acc1 = fma(vec4<f32>(load_a(i + 1u, k)), bv, acc1);
        acc2 = fma(vec4<f32>(load_a(i + 2u, k)), bv, acc2);
        acc3 = fma(vec4<f32>(load_a(i + 3u, k)), bv, acc3);
    }
    finish_row(i, j, acc0);
    finish_row(i + 1u, j, acc1);
    finish_row(i + 2u, j, acc2);
    finish_row(i + 3u, j, acc3);
}
