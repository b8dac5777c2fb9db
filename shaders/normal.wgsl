// The counter-based normal generator, the GPU twin of crate/rng.rs (keep the two in step): eps is
// a pure function of (seed, index, dimension), the pcg3d hash (Jarzynski & Olano 2020) then
// Box-Muller. Prepended (after atanh.wgsl) to every shader that draws noise: the sampler and the
// trainer's reparameterization.

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
        return 4.0 * s * atanh_series(s * s);
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
