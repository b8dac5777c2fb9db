// The trainer's reparameterization z = mu + exp(logvar / 2) eps with eps from normal.wgsl (the
// same numbers as `model::reparameterize_into`: example r of the step has noise index
// batch_start + r), each example's closed-form KL(q(z|x) || N(0, I)), and the backward pass
// through both. A deterministic encoder (autoencoder) has z = mu and no KL.

struct LatentParams {
    latent: u32,
    variational: u32, // 1 for a VAE
    mu_act: u32,      // the heads' activation codes, for their backward
    logvar_act: u32,
    rows: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(2) var<uniform> p: LatentParams;
@group(0) @binding(3) var<storage, read> mu: array<f32>;
@group(0) @binding(4) var<storage, read> logvar: array<f32>;
@group(0) @binding(5) var<storage, read_write> eps: array<f32>;
@group(0) @binding(6) var<storage, read_write> z: array<f32>;
@group(0) @binding(7) var<storage, read_write> row_kl: array<f32>;
@group(0) @binding(8) var<storage, read> dz: array<f32>;
@group(0) @binding(9) var<storage, read_write> dmu: array<f32>;
@group(0) @binding(10) var<storage, read_write> dlogvar: array<f32>;

override WORKGROUP: u32;
// One invocation per example: its z, eps and KL.
@compute @workgroup_size(WORKGROUP)
fn reparameterize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = current();
    let r = gid.x;
    if (r >= p.rows) {
        return;
    }
    var kl = 0.0;
    for (var j = 0u; j < p.latent; j = j + 1u) {
        let i = r * p.latent + j;
        let m = mu[i];
        if (p.variational != 0u) {
            let lv = logvar[i];
            let e = normal(s.eps_seed, s.batch_start + r, j);
            eps[i] = e;
            z[i] = m + exp(0.5 * lv) * e;
            kl = kl - 0.5 * (1.0 + lv - m * m - exp(lv));
        } else {
            z[i] = m;
        }
    }
    row_kl[r] = kl;
}

// One invocation per value: d(loss)/d(head pre-activations) from d(loss)/dz, plus the KL's own
// gradient, as in `backprop::shard_deltas`.
@compute @workgroup_size(WORKGROUP)
fn reparameterize_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = current();
    let i = gid.x;
    if (i >= p.rows * p.latent) {
        return;
    }
    let m = mu[i];
    if (p.variational != 0u) {
        let lv = logvar[i];
        let sd = exp(0.5 * lv);
        dmu[i] = (dz[i] + s.kl_scale * m) * slope(m, p.mu_act);
        dlogvar[i] = (dz[i] * eps[i] * 0.5 * sd + s.kl_scale * 0.5 * (sd * sd - 1.0)) * slope(lv, p.logvar_act);
    } else {
        dmu[i] = dz[i] * slope(m, p.mu_act);
    }
}
