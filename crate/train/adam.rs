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

    /// One update of `params` from `grad`; with `threads > 1` split over the current rayon
    /// pool (elementwise, so the result does not depend on the split).
    pub fn step(&mut self, params: &mut [f32], grad: &[f32], threads: usize) {
        self.step_sum(params, &[grad], threads)
    }

    /// One update from the sum of shard gradients (added in the order given). Fusing the
    /// reduction into the update saves a pass over memory, which bounds this step.
    pub fn step_sum(&mut self, params: &mut [f32], shards: &[&[f32]], threads: usize) {
        assert!(!shards.is_empty() && shards.iter().all(|g| g.len() == params.len()));
        assert_eq!(params.len(), self.m.len());
        self.t += 1;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let c1 = 1.0 - (b1 as f64).powi(self.t as i32);
        let c2 = 1.0 - (b2 as f64).powi(self.t as i32);
        // The bias corrections fold into the step size and the denominator, as in PyTorch.
        let step = (self.lr as f64 / c1) as f32;
        let c2_sqrt = c2.sqrt() as f32;
        let apply = |p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &mut dyn Iterator<Item = f32>| {
            for (((p, m), v), gi) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                *m = b1 * *m + (1.0 - b1) * gi;
                *v = b2 * *v + (1.0 - b2) * gi * gi;
                *p -= step * *m / (v.sqrt() / c2_sqrt + eps);
            }
        };
        let update = |off: usize, p: &mut [f32], m: &mut [f32], v: &mut [f32]| {
            let r = off..off + p.len();
            match shards {
                [g] => update_with(p, m, v, g[r].iter().copied(), b1, b2, step, c2_sqrt, eps),
                [g0, g1] => update_with(p, m, v, g0[r.clone()].iter().zip(&g1[r]).map(|(a, b)| a + b), b1, b2, step, c2_sqrt, eps),
                _ => apply(p, m, v, &mut r.map(|i| shards[1..].iter().fold(shards[0][i], |s, g| s + g[i]))),
            }
        };
        if threads <= 1 {
            update(0, params, &mut self.m, &mut self.v);
            return;
        }
        use rayon::prelude::*;
        let chunk = 16 * 1024;
        params
            .par_chunks_mut(chunk)
            .zip(self.m.par_chunks_mut(chunk))
            .zip(self.v.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(i, ((p, m), v))| update(i * chunk, p, m, v));
    }
}

/// The elementwise update, generic over the gradient source so each case compiles to a
/// straight vectorised loop.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn update_with(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: impl Iterator<Item = f32>, b1: f32, b2: f32, step: f32, c2_sqrt: f32, eps: f32) {
    for (((p, m), v), gi) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
        *m = b1 * *m + (1.0 - b1) * gi;
        *v = b2 * *v + (1.0 - b2) * gi * gi;
        *p -= step * *m / (v.sqrt() / c2_sqrt + eps);
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
