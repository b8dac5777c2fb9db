//! Counter-based random numbers: every value is a pure function of (seed, index, dimension).
//!
//! No generator state to carry means the GPU sampler, the CPU fallback and the trainer draw
//! the same numbers in any order or thread layout, and a checkpoint only needs the seed.
//! The hash is `pcg3d` from Jarzynski & Olano, "Hash Functions for GPU Rendering" (JCGT 2020),
//! chosen because it is cheap in WGSL (integer multiply-add only) and passes TestU01 BigCrush.
//! `shaders/normal.wgsl` (with `atanh.wgsl`) implements the same functions; keep the two in step.

/// Mixes three 32-bit words into three well-distributed 32-bit words.
#[inline]
pub fn pcg3d(x: u32, y: u32, z: u32) -> [u32; 3] {
    let mut v = [
        x.wrapping_mul(1664525).wrapping_add(1013904223),
        y.wrapping_mul(1664525).wrapping_add(1013904223),
        z.wrapping_mul(1664525).wrapping_add(1013904223),
    ];
    v[0] = v[0].wrapping_add(v[1].wrapping_mul(v[2]));
    v[1] = v[1].wrapping_add(v[2].wrapping_mul(v[0]));
    v[2] = v[2].wrapping_add(v[0].wrapping_mul(v[1]));
    v[0] ^= v[0] >> 16;
    v[1] ^= v[1] >> 16;
    v[2] ^= v[2] >> 16;
    v[0] = v[0].wrapping_add(v[1].wrapping_mul(v[2]));
    v[1] = v[1].wrapping_add(v[2].wrapping_mul(v[0]));
    v[2] = v[2].wrapping_add(v[0].wrapping_mul(v[1]));
    v
}

/// A new seed for an independent stream (e.g. one per epoch) derived from a base seed.
pub fn derive_seed(seed: u32, stream: u32) -> u32 {
    pcg3d(seed, stream, 0x5eed_5eed)[0]
}

/// A uniform integer in `0..n` (Lemire's multiply-shift; bias below 2^-32 * n).
pub fn uniform_below(seed: u32, index: u32, n: u32) -> u32 {
    ((pcg3d(seed, index, 0x0a11_0ca7)[0] as u64 * n as u64) >> 32) as u32
}

/// A standard normal draw for (seed, index, dim), by Box-Muller on two hashed uniforms.
///
/// Written so the CPU and any GPU agree to ~1e-6: GPU `log` and `cos` are only loosely specified
/// (WGSL promises 2^-11 for cos), and `sqrt(-2 ln u)` magnifies a log error when `u` is near 1.
/// So `-2 ln u1` uses an atanh series near 1, and `cos` uses exact integer quadrant reduction and
/// Taylor polynomials, on both sides; only `ln` far from 1 and `sqrt` come from the platform.
#[inline]
pub fn normal(seed: u32, index: u32, dim: u32) -> f32 {
    let h = pcg3d(seed, index, dim);
    // u1 in (0, 1] so the log is finite.
    let u1 = ((h[0] >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
    let r = neg2_ln(u1).sqrt();
    // The angle 2*pi*u2 with u2 = (h[1] >> 8) / 2^24: its top 2 bits are the quadrant.
    -r * cos_turn(h[1] >> 30, ((h[1] >> 8) & 0x3f_ffff) as f32 * (1.0 / 4_194_304.0))
}

/// `-2 ln(u)` for `u` in (0, 1].
#[inline]
fn neg2_ln(u: f32) -> f32 {
    if u > 0.5 {
        // ln(u) = -2 atanh(s), s = (1 - u) / (1 + u) in [0, 1/3); 1 - u is exact here.
        let w = 1.0 - u;
        let s = w / (2.0 - w);
        4.0 * s * atanh_series(s * s)
    } else {
        -2.0 * u.ln()
    }
}

/// `atanh(s) / s` as a polynomial in `s2 = s^2`, for s in [0, 1/3] (error below 2e-8).
#[inline(always)]
pub(crate) fn atanh_series(s2: f32) -> f32 {
    let p = 1.0 / 15.0;
    let p = p * s2 + 1.0 / 13.0;
    let p = p * s2 + 1.0 / 11.0;
    let p = p * s2 + 1.0 / 9.0;
    let p = p * s2 + 1.0 / 7.0;
    let p = p * s2 + 1.0 / 5.0;
    let p = p * s2 + 1.0 / 3.0;
    p * s2 + 1.0
}

/// `cos(2 pi (q + f) / 4)` for quadrant `q` in 0..4 and `f` in [0, 1).
#[inline]
fn cos_turn(q: u32, f: f32) -> f32 {
    let a = f * std::f32::consts::FRAC_PI_2;
    let a2 = a * a;
    // Taylor series on [0, pi/2): errors below 1e-8.
    let c = 1.0
        + a2 * (-1.0 / 2.0
            + a2 * (1.0 / 24.0 + a2 * (-1.0 / 720.0 + a2 * (1.0 / 40_320.0 + a2 * (-1.0 / 3_628_800.0 + a2 * (1.0 / 479_001_600.0))))));
    let s = a
        * (1.0
            + a2 * (-1.0 / 6.0
                + a2 * (1.0 / 120.0
                    + a2 * (-1.0 / 5040.0 + a2 * (1.0 / 362_880.0 + a2 * (-1.0 / 39_916_800.0 + a2 * (1.0 / 6_227_020_800.0)))))));
    match q {
        0 => c,
        1 => -s,
        2 => -c,
        _ => s,
    }
}

/// A random permutation of `0..n` (Fisher-Yates driven by `uniform_below`).
pub fn permutation(seed: u32, n: usize) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = uniform_below(seed, i as u32, i as u32 + 1) as usize;
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from an independent implementation of the same definition (Python with unbounded
    /// integers masked to 32 bits, `math.log` and `math.cos` in f64): pcg3d as in Jarzynski &
    /// Olano's paper, then -sqrt(-2 ln u1) cos(2 pi u2) with u1 = (h0 >> 8 + 1) / 2^24 and
    /// u2 = (h1 >> 8) / 2^24. A change to a constant, a shift or the counters' roles fails here.
    #[test]
    fn pcg3d_and_normal_match_an_independent_implementation() {
        assert_eq!(pcg3d(0, 0, 0), [0x9bafd7c6, 0xa8e88a6b, 0x3f15482c]);
        assert_eq!(pcg3d(7, 123, 1), [0xca0090a1, 0x62382604, 0x4675c4df]);
        assert_eq!(pcg3d(0xdeadbeef, 0xffffffff, 7), [0x665d0a95, 0x6c801012, 0xcfc9a8f5]);
        let expected = [
            ((7, 123, 1), 0.5124995514416997),
            ((8, 123, 1), 0.5552739640264732),
            ((7, 124, 1), 1.6512158438707172),
            ((7, 123, 0), -1.2659341099061585),
            ((0, 0, 0), 0.5354614600238993),
            ((42, 99999, 1), 0.6639434026167251),
            ((3, 5, 0), -0.034141250782606304),
            ((0xdeadbeef, 0xffffffff, 7), 1.2018610550247983),
        ];
        for ((seed, index, dim), want) in expected {
            let got = normal(seed, index, dim) as f64;
            assert!((got - want).abs() < 2e-6, "normal({seed}, {index}, {dim}) = {got}, expected {want}");
        }
    }

    #[test]
    fn the_portable_pieces_match_libm() {
        for i in 1..=1000 {
            let u = i as f32 / 1000.0;
            let (a, b) = (neg2_ln(u) as f64, -2.0 * (u as f64).ln());
            assert!((a - b).abs() <= 1e-6 * b.max(1e-3), "{u}: {a} vs {b}");
        }
        for q in 0..4 {
            for i in 0..1000 {
                let f = i as f32 / 1000.0;
                let want = (std::f64::consts::FRAC_PI_2 * (q as f64 + f as f64)).cos();
                assert!((cos_turn(q, f) as f64 - want).abs() < 3e-7, "q {q} f {f}");
            }
        }
    }

    #[test]
    fn normal_has_unit_moments() {
        let n = 200_000u32;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for i in 0..n {
            let x = normal(42, i / 2, i % 2) as f64;
            s1 += x;
            s2 += x * x;
        }
        let mean = s1 / n as f64;
        let var = s2 / n as f64 - mean * mean;
        // Standard errors: 1/sqrt(n) = 0.0022 for the mean, sqrt(2/n) = 0.0032 for the variance.
        assert!(mean.abs() < 0.011, "mean {mean}");
        assert!((var - 1.0).abs() < 0.016, "variance {var}");
    }

    #[test]
    fn permutation_is_a_permutation_and_depends_on_the_seed() {
        let p = permutation(3, 1000);
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
        assert_ne!(p, permutation(4, 1000));
        assert_eq!(p, permutation(3, 1000));
    }
}
