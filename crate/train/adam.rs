//! Adam (Kingma & Ba 2015) with bias correction, as in `torch.optim.Adam` defaults.

/// Optimiser state; `m`, `v` and `t` are saved in checkpoints so a resumed run is exact.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Steps taken so far.
    pub t: u64,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

impl Adam {
    pub fn new(n: usize, lr: f32) -> Self {
        Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, t: 0, m: vec![0.0; n], v: vec![0.0; n] }
    }

    /// Counts a step and returns its constants, for updates applied block by block.
    pub fn begin_step(&mut self) -> AdamStep {
        self.t += 1;
        self.constants(self.lr, self.t)
    }

    /// The constants of step number `t` (1-based) at learning rate `lr`: what
    /// [`Adam::begin_step`] returns, and what the GPU trainer's step table holds.
    pub fn constants(&self, lr: f32, t: u64) -> AdamStep {
        let c1 = 1.0 - (self.beta1 as f64).powi(t as i32);
        let c2 = 1.0 - (self.beta2 as f64).powi(t as i32);
        // The bias corrections fold into the step size and the denominator, as in PyTorch.
        AdamStep { b1: self.beta1, b2: self.beta2, eps: self.eps, step: (lr as f64 / c1) as f32, c2_sqrt: c2.sqrt() as f32 }
    }

    /// One update of `params` from `grad`; with `threads > 1` split over the current rayon
    /// pool (elementwise, so the result does not depend on the split; wasm32 has one thread).
    /// Returns whether every parameter is still finite.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32], threads: usize) -> bool {
        assert!(grad.len() == params.len() && params.len() == self.m.len());
        let s = self.begin_step();
        if threads <= 1 {
            return s.apply(params, &mut self.m, &mut self.v, grad);
        }
        self.step_parallel(params, grad, s)
    }

    #[cfg(target_arch = "wasm32")]
    fn step_parallel(&mut self, params: &mut [f32], grad: &[f32], s: AdamStep) -> bool {
        s.apply(params, &mut self.m, &mut self.v, grad)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn step_parallel(&mut self, params: &mut [f32], grad: &[f32], s: AdamStep) -> bool {
        use rayon::prelude::*;
        let chunk = 16 * 1024;
        params
            .par_chunks_mut(chunk)
            .zip(self.m.par_chunks_mut(chunk))
            .zip(self.v.par_chunks_mut(chunk))
            .zip(grad.par_chunks(chunk))
            .map(|(((p, m), v), g)| s.apply(p, m, v, g))
            .reduce(|| true, |a, b| a && b)
    }
}

/// The constants of one Adam step; [`AdamStep::apply`] updates any block of the parameters.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub b1: f32,
    pub b2: f32,
    pub eps: f32,
    /// lr / (1 - beta1^t)
    pub step: f32,
    /// sqrt(1 - beta2^t)
    pub c2_sqrt: f32,
}

impl AdamStep {
    /// Updates a block of parameters `p` and its moments `m`, `v` from its gradient `g`.
    /// Returns whether every updated parameter is finite: a non-finite gradient or moment
    /// always makes its parameter NaN, so this one check catches all three.
    #[must_use]
    pub fn apply(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) -> bool {
        assert!(m.len() == p.len() && v.len() == p.len() && g.len() == p.len());
        // The square root and division bound this loop; 8 lanes instead of SSE2's 4 halve it.
        // Both are correctly rounded at any width, so the result is the same bit for bit.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX, checked just above.
            return unsafe { self.apply_avx(p, m, v, g) };
        }
        self.apply_any(p, m, v, g)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn apply_avx(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) -> bool {
        self.apply_any(p, m, v, g)
    }

    #[inline(always)]
    fn apply_any(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) -> bool {
        let AdamStep { b1, b2, eps, step, c2_sqrt } = *self;
        // Branch-free, so the loop stays vectorised: |p| <= MAX is false for NaN and infinities.
        let mut finite = true;
        for (((p, m), v), &gi) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            *m = b1 * *m + (1.0 - b1) * gi;
            *v = b2 * *v + (1.0 - b2) * gi * gi;
            *p -= step * *m / (v.sqrt() / c2_sqrt + eps);
            finite &= p.abs() <= f32::MAX;
        }
        finite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_parameter_by_lr_against_the_gradient_sign() {
        let mut adam = Adam::new(3, 0.1);
        let mut p = vec![1.0, 1.0, 1.0];
        adam.step(&mut p, &[2.0, -0.5, 0.0], 1);
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6 && p[2] == 1.0);
    }

    #[test]
    fn a_non_finite_gradient_or_parameter_is_reported_and_every_block_still_updated() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let n = 40_000;
            let mut g = vec![0.5; n];
            g[n - 3] = bad;
            let mut adam = Adam::new(n, 1e-3);
            let mut p = vec![1.0; n];
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            assert!(!pool.install(|| adam.step(&mut p, &g, 2)), "gradient {bad} not reported");
            assert!(p[..16 * 1024].iter().all(|&v| v < 1.0), "the first block must still be updated");
            assert!(p[n - 3].is_nan());
        }
        let mut adam = Adam::new(4, 1e-3);
        assert!(adam.step(&mut [1.0; 4], &[1e30, -1e30, 0.0, 1.0], 1), "large finite gradients are fine");
    }

    #[test]
    fn threaded_and_serial_updates_agree_bit_for_bit() {
        let g: Vec<f32> = (0..100_001).map(|i| (i as f32).sin()).collect();
        let (mut a, mut b) = (Adam::new(100_001, 1e-3), Adam::new(100_001, 1e-3));
        let (mut pa, mut pb) = (vec![0.5; 100_001], vec![0.5; 100_001]);
        for _ in 0..3 {
            a.step(&mut pa, &g, 1);
            rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap().install(|| b.step(&mut pb, &g, 3));
        }
        assert_eq!(pa, pb);
    }
}
