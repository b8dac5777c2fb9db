// The reparameterization sampler: z = mu + exp(logvar / 2) * eps, eps ~ N(0, I).
//
// eps comes from normal.wgsl's counter-based generator (prepended to this file when the pipeline
// is built): same seed, same samples, in any dispatch order.
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
