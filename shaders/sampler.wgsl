// The reparameterization sampler: z = mu + exp(logvar / 2) * eps, eps ~ N(0, I).
//
// eps comes from a counter-based generator, a pure function of (seed, sample index, dimension):
// the pcg3d hash (Jarzynski & Olano 2020) then Box-Muller. Same seed, same samples, in any
// dispatch order; crate/rng.rs is the CPU twin, and the two must stay in step.
// Sample j of item i has index `i * k + j`, as in `model::reparameterize` with index0 0.
// Large batches run in chunks: a dispatch draws samples `sample0 ..` of the batch, and `stats`
// holds their items' rows only, from item `sample0 / k` on, so no binding holds the whole batch.

struct Params {
    samples: u32,    // samples in this dispatch (rows of z)
    k: u32,          // samples per item
    latent: u32,     // dimensions
    seed: u32,
    stats_stride: u32, // floats between consecutive items in `stats`
    logvar_offset: u32, // where logvar starts within an item's row (mu starts at 0)
    row_width: u32,  // invocations per dispatch row (for 2-D dispatches of large batches)
    sample0: u32,    // the batch's number of this dispatch's first sample
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;

fn pcg3d(seed: vec3<u32>) -> vec3<u32> {
    var v = seed * 1664525u + 1013904223u;
    v.x += v.y * v.z;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    v ^= v >> vec3<u32>(16u);
    v.x += v.y * v.z;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    return v;
}

// -2 ln(u) for u in (0, 1]: an atanh series near 1, where sqrt(-2 ln u) would magnify the
// platform log's error (see crate/rng.rs).
fn neg2_ln(u: f32) -> f32 {
    if (u > 0.5) {
        let w = 1.0 - u;
        let s = w / (2.0 - w);
        let s2 = s * s;
        var p = 1.0 / 15.0;
        p = p * s2 + 1.0 / 13.0;
        p = p * s2 + 1.0 / 11.0;
        p = p * s2 + 1.0 / 9.0;
        p = p * s2 + 1.0 / 7.0;
        p = p * s2 + 1.0 / 5.0;
        p = p * s2 + 1.0 / 3.0;
        p = p * s2 + 1.0;
        return 4.0 * s * p;
    }
    return -2.0 * log(u);
}

// cos(2 pi (q + f) / 4) by Taylor polynomials on [0, pi/2): WGSL's cos may be off by 2^-11.
fn cos_turn(q: u32, f: f32) -> f32 {
    let a = f * 1.5707964;
    let a2 = a * a;
    let c = 1.0 + a2 * (-1.0 / 2.0 + a2 * (1.0 / 24.0 + a2 * (-1.0 / 720.0 + a2 * (1.0 / 40320.0 + a2 * (-1.0 / 3628800.0 + a2 * (1.0 / 479001600.0))))));
    let s = a * (1.0 + a2 * (-1.0 / 6.0 + a2 * (1.0 / 120.0 + a2 * (-1.0 / 5040.0 + a2 * (1.0 / 362880.0 + a2 * (-1.0 / 39916800.0 + a2 * (1.0 / 6227020800.0)))))));
    switch q {
        case 0u: { return c; }
        case 1u: { return -s; }
        case 2u: { return -c; }
        default: { return s; }
    }
}

fn normal(seed: u32, index: u32, dim: u32) -> f32 {
    let h = pcg3d(vec3<u32>(seed, index, dim));
    let u1 = f32((h.x >> 8u) + 1u) * (1.0 / 16777216.0); // (0, 1]
    let r = sqrt(neg2_ln(u1));
    return -r * cos_turn(h.y >> 30u, f32((h.y >> 8u) & 0x3fffffu) * (1.0 / 4194304.0));
}

// Invocations per workgroup, set from Rust when the pipeline is built (crate/gpu/sampler.rs); no
// default, so the dispatch sizes and the shader cannot drift apart.
override WORKGROUP: u32;

@compute @workgroup_size(WORKGROUP)
fn sample(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.y * p.row_width + gid.x;
    if (t >= p.samples * p.latent) {
        return;
    }
    let d = t % p.latent;
    let s = p.sample0 + t / p.latent; // sample number in the batch, = i * k + j
    let i = s / p.k - p.sample0 / p.k; // its item's row in `stats`
    let mu = stats[i * p.stats_stride + d];
    let logvar = stats[i * p.stats_stride + p.logvar_offset + d];
    z[t] = mu + exp(0.5 * logvar) * normal(p.seed, s, d);
}
