//! Counter-based random numbers: every value is a pure function of (seed, index, dimension).
//!
//! No generator state to carry means the GPU sampler, the CPU fallback and the trainer draw
//! the same numbers in any order or thread layout, and a checkpoint only needs the seed.
//! The hash is `pcg3d` from Jarzynski & Olano, "Hash Functions for GPU Rendering" (JCGT 2020),
//! chosen because it is cheap in WGSL (integer multiply-add only) and passes TestU01 BigCrush.
//! `shaders/sampler.wgsl` implements the same functions; keep the two in step.

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
#[inline]
pub fn normal(seed: u32, index: u32, dim: u32) -> f32 {
    let h = pcg3d(seed, index, dim);
    // u1 in (0, 1] so the log is finite; u2 in [0, 1).
    let u1 = ((h[0] >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
    let u2 = (h[1] >> 8) as f32 * (1.0 / 16_777_216.0);
    let r = (-2.0 * u1.ln()).sqrt();
    // The angle is kept in [-pi, pi), where GPU cos is accurate.
    r * (std::f32::consts::TAU * u2 - std::f32::consts::PI).cos()
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

    #[test]
    fn normal_is_a_pure_function_of_its_counters() {
        assert_eq!(normal(7, 123, 1).to_bits(), normal(7, 123, 1).to_bits());
        assert_ne!(normal(7, 123, 1), normal(8, 123, 1));
        assert_ne!(normal(7, 123, 1), normal(7, 124, 1));
        assert_ne!(normal(7, 123, 1), normal(7, 123, 0));
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
