//! The ELBO's two terms per example, in nats: the Bernoulli decoder's binary cross-entropy
//! (from logits, so it never takes log(0)) and the closed-form KL of a diagonal Gaussian from
//! N(0, I); plus the branch-free `exp` and `ln(1 + e)` that keep the trainer's loops vectorised.
//! The CPU reference (`model.rs`), the trainer and the evaluation all score with these.

use crate::architecture::Activation;
use crate::rng;

/// Per-example loss terms in nats (squared errors in squared intensity units).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossTerms {
    /// The model's reconstruction loss for one z: `bce` or `squared_error`, per its architecture.
    pub reconstruction: f64,
    /// KL(q(z|x) || N(0, I)) in closed form; 0 for a deterministic encoder.
    pub kl: f64,
    /// Binary cross-entropy summed over pixels: -log p(x|z) of a Bernoulli decoder.
    pub bce: f64,
    /// Squared error summed over pixels.
    pub squared_error: f64,
}

impl LossTerms {
    /// -ELBO with a weighted KL (beta = 1 is the true bound).
    pub fn neg_elbo(&self, beta: f64) -> f64 {
        self.reconstruction + beta * self.kl
    }
}

/// Binary cross-entropy of targets `x` in [0, 1] against `sigmoid(logits)`, summed, computed
/// from logits as `max(l, 0) - l x + log(1 + exp(-|l|))` so it never takes log(0).
pub fn bce_with_logits(logits: &[f32], x: &[f32]) -> f64 {
    logits.iter().zip(x).map(|(&l, &t)| bce_and_grad(l, t).0 as f64).sum()
}

/// Clamp of identity-output pixel means before their BCE: a linear decoder (PCA) can leave
/// [0, 1], where the Bernoulli log-likelihood is undefined, so they are scored as if clamped to
/// [1e-6, 1 - 1e-6] (at most ln(1e6) = 13.8 nats for a pixel that is entirely wrong).
pub const BCE_CLAMP: f32 = 1e-6;

/// Reconstruction errors of one image from the decoder's output before its activation `act`:
/// (BCE, squared error), each summed over pixels (see [`pixel_errors`]).
pub fn reconstruction_errors(act: Activation, pre: &[f32], x: &[f32]) -> (f64, f64) {
    pre.iter().zip(x).map(|(&l, &t)| pixel_errors(act, l, t)).fold((0.0, 0.0), |(b, s), (pb, ps)| (b + pb, s + ps))
}

/// One pixel's errors from the decoder output `l` before its activation `act`, for target `t`:
/// (BCE, squared error). Sigmoid outputs are scored from logits; identity outputs are the pixel
/// means themselves, clamped for the BCE (see [`BCE_CLAMP`]).
pub fn pixel_errors(act: Activation, l: f32, t: f32) -> (f64, f64) {
    let (b, p) = match act {
        Activation::Sigmoid => (bce_and_grad(l, t).0 as f64, sigmoid_branch_free(l) as f64),
        _ => {
            let p = (l as f64).clamp(BCE_CLAMP as f64, 1.0 - BCE_CLAMP as f64);
            let t = t as f64;
            (-(t * p.ln() + (1.0 - t) * (1.0 - p).ln()), l as f64)
        }
    };
    (b, (t as f64 - p).powi(2))
}

/// Squared error of each row of decoder outputs (before `act`, sigmoid or identity; rows of
/// `n`) against the intensities `x`, summed; the trainer's MSE loss: `pre` is overwritten by
/// `scale` times the gradient with respect to it, `2 (p - x)` times the activation's slope
/// (`p (1 - p)` for the sigmoid).
pub fn mse_rows_and_grad(pre: &mut [f32], x: &[f32], act: Activation, scale: f32) -> f64 {
    let mut total = 0.0f64;
    for (l, &t) in pre.iter_mut().zip(x) {
        let (p, slope) = match act {
            Activation::Sigmoid => {
                let p = sigmoid_branch_free(*l);
                (p, p * (1.0 - p))
            }
            _ => (*l, 1.0),
        };
        let r = p - t;
        total += (r * r) as f64;
        *l = scale * 2.0 * r * slope;
    }
    total
}

/// `exp(x)` for `x <= 0`, branch-free so loops over it vectorise (libm's does not). Range
/// reduction `x = n ln2 + f`, |f| <= ln2/2, then a degree-6 Taylor polynomial: within 2 ulp.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.max(-87.0);
    // Round to nearest with the 1.5 * 2^23 trick (no SSE4.1 `round` on baseline x86-64).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let f = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 / 720.0;
    let p = p * f + 1.0 / 120.0;
    let p = p * f + 1.0 / 24.0;
    let p = p * f + 1.0 / 6.0;
    let p = p * f + 0.5;
    let p = p * f + 1.0;
    let p = p * f + 1.0;
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// One pixel's binary cross-entropy from its logit `l` and target `t`, and its gradient
/// `sigmoid(l) - t`: `max(l, 0) - l t + ln(1 + exp(-|l|))` never takes log(0).
#[inline(always)]
pub fn bce_and_grad(l: f32, t: f32) -> (f32, f32) {
    let e = exp_nonpositive(-l.abs());
    let inv = 1.0 / (1.0 + e);
    let sig = if l >= 0.0 { inv } else { e * inv };
    (l.max(0.0) - l * t + ln_1p_unit(e), sig - t)
}

/// The logistic sigmoid through [`exp_nonpositive`], so loops over it vectorise.
#[inline(always)]
pub fn sigmoid_branch_free(l: f32) -> f32 {
    let e = exp_nonpositive(-l.abs());
    let inv = 1.0 / (1.0 + e);
    if l >= 0.0 {
        inv
    } else {
        e * inv
    }
}

/// `ln(1 + e)` for `e` in [0, 1], branch-free so loops over it vectorise (libm's `log1pf` does
/// not, and cost the trainer 10% of its time): `ln(1+e) = 2 atanh(s)`, `s = e / (2 + e)`.
#[inline(always)]
pub fn ln_1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    2.0 * s * rng::atanh_series(s * s)
}

/// KL(N(mu, exp(logvar)) || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)).
pub fn kl_standard_normal(mu: &[f32], logvar: &[f32]) -> f64 {
    mu.iter()
        .zip(logvar)
        .map(|(&m, &lv)| {
            let (m, lv) = (m as f64, lv as f64);
            -0.5 * (1.0 + lv - m * m - lv.exp())
        })
        .sum()
}

/// Binary cross-entropy of each row of `logits` (rows of `n`) against the intensities `x`, summed;
/// the trainer's loss: the logits are overwritten by `scale` times their gradient, sigmoid(l) - x.
pub fn bce_rows_and_grad(logits: &mut [f32], x: &[f32], n: usize, scale: f32) -> f64 {
    // The polynomials vectorise; 8 lanes instead of SSE2's 4, with the same operations in the
    // same order (no fused multiply-add), so the same result bit for bit.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX, checked just above.
        return unsafe { bce_rows_avx(logits, x, n, scale) };
    }
    bce_rows_any(logits, x, n, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn bce_rows_avx(logits: &mut [f32], x: &[f32], n: usize, scale: f32) -> f64 {
    bce_rows_any(logits, x, n, scale)
}

#[inline(always)]
fn bce_rows_any(logits: &mut [f32], x: &[f32], n: usize, scale: f32) -> f64 {
    let mut losses = vec![0.0f32; n];
    let mut reconstruction = 0.0f64;
    for (lrow, xrow) in logits.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
        // A plain elementwise loop (vectorised), then a lane-wise sum.
        for ((l, &t), o) in lrow.iter_mut().zip(xrow).zip(losses.iter_mut()) {
            let (loss, g) = bce_and_grad(*l, t);
            *o = loss;
            *l = g * scale;
        }
        let mut acc = [0.0f32; 8];
        let mut chunks = losses.chunks_exact(8);
        for c in &mut chunks {
            for k in 0..8 {
                acc[k] += c[k];
            }
        }
        reconstruction += (chunks.remainder().iter().sum::<f32>() + acc.iter().sum::<f32>()) as f64;
    }
    reconstruction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_from_logits_matches_the_direct_formula_and_survives_extremes() {
        let logits = [-3.0f32, 0.0, 2.5];
        let x = [0.0f32, 0.4, 1.0];
        let direct: f64 = logits
            .iter()
            .zip(&x)
            .map(|(&l, &t)| {
                let p = 1.0 / (1.0 + (-(l as f64)).exp());
                -(t as f64 * p.ln() + (1.0 - t as f64) * (1.0 - p).ln())
            })
            .sum();
        assert!((bce_with_logits(&logits, &x) - direct).abs() < 1e-6);
        // A confident, wrong pixel costs |l| nats, not infinity.
        let v = bce_with_logits(&[200.0], &[0.0]);
        assert!((v - 200.0).abs() < 1e-3);
    }

    #[test]
    fn exp_nonpositive_matches_libm() {
        // Down to -87, where the input is clamped (results below 1.7e-38 are flushed).
        for i in 0..=86_000 {
            let x = -(i as f32) * 1e-3;
            let (a, b) = (exp_nonpositive(x), x.exp());
            assert!((a - b).abs() <= 3.0 * f32::EPSILON * b, "{x}: {a} vs {b}");
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 1e-37);
    }

    #[test]
    fn ln_1p_unit_matches_libm() {
        for i in 0..=10_000 {
            let e = i as f32 / 10_000.0;
            let (a, b) = (ln_1p_unit(e), e.ln_1p());
            assert!((a - b).abs() <= 2.0 * f32::EPSILON * b.max(1e-30), "{e}: {a} vs {b}");
        }
        assert_eq!(ln_1p_unit(0.0), 0.0);
    }

    #[test]
    fn kl_is_zero_at_the_prior_and_positive_elsewhere() {
        assert_eq!(kl_standard_normal(&[0.0, 0.0], &[0.0, 0.0]), 0.0);
        // mu = 1, var = 1: KL = 1/2 per dimension.
        assert!((kl_standard_normal(&[1.0], &[0.0]) - 0.5).abs() < 1e-12);
        assert!(kl_standard_normal(&[0.0], &[-2.0]) > 0.0);
    }
}
