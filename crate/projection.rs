//! Principal axes of an embedding, for latents of more than two dimensions: the page's plane
//! shows the embedding projected on its first two axes and a slider per further axis sets the
//! rest. The axes are the eigenvectors of the d x d covariance, found by the cyclic Jacobi
//! method (d is at most a few dozen, so a dependency would buy nothing).

use thiserror::Error;

/// Why an embedding has no principal axes.
#[derive(Debug, Error)]
pub enum ProjectionError {
    #[error("a latent of {0} dimensions has no axes")]
    NoDimensions(usize),
    #[error("{found} values are not whole points of {d} dimensions")]
    Ragged { d: usize, found: usize },
    #[error("no points to project")]
    Empty,
    #[error("value {index} is {value}, not finite")]
    NonFinite { index: usize, value: f32 },
    #[error("{found} values given, expected {expected} (one per dimension)")]
    Dimension { expected: usize, found: usize },
}

/// The centroid and an orthonormal basis of principal axes, by decreasing variance.
#[derive(Clone, Debug)]
pub struct Projection {
    d: usize,
    centroid: Vec<f32>,
    /// Axis `k` is `axes[k * d..(k + 1) * d]`; its largest-magnitude entry (the first, on a tie)
    /// is positive, so the same embedding always gives the same axes.
    axes: Vec<f32>,
    /// The covariance's eigenvalues (population covariance, 1/n), one per axis, decreasing.
    variances: Vec<f32>,
}

/// Jacobi sweeps stop when the off-diagonal mass is this small relative to the whole matrix.
const TOLERANCE: f64 = 1e-24;
/// Far more than needed: Jacobi converges quadratically, in under ten sweeps for d <= 50.
const MAX_SWEEPS: usize = 100;

impl Projection {
    /// The principal axes of `points`, `n` rows of `d` values (row-major).
    pub fn fit(points: &[f32], d: usize) -> Result<Self, ProjectionError> {
        if d == 0 {
            return Err(ProjectionError::NoDimensions(d));
        }
        if !points.len().is_multiple_of(d) {
            return Err(ProjectionError::Ragged { d, found: points.len() });
        }
        if points.is_empty() {
            return Err(ProjectionError::Empty);
        }
        if let Some(index) = points.iter().position(|v| !v.is_finite()) {
            return Err(ProjectionError::NonFinite { index, value: points[index] });
        }
        let n = points.len() / d;
        let mut mean = vec![0.0f64; d];
        for p in points.chunks_exact(d) {
            mean.iter_mut().zip(p).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0.0f64; d * d];
        for p in points.chunks_exact(d) {
            for i in 0..d {
                let di = p[i] as f64 - mean[i];
                for j in 0..d {
                    cov[i * d + j] += di * (p[j] as f64 - mean[j]);
                }
            }
        }
        cov.iter_mut().for_each(|c| *c /= n as f64);
        let (values, vectors) = jacobi_eigen(cov, d);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let mut axes = Vec::with_capacity(d * d);
        for &k in &order {
            let mut axis: Vec<f64> = (0..d).map(|i| vectors[i * d + k]).collect();
            sign_by_largest(&mut axis);
            axes.extend(axis.iter().map(|&v| v as f32));
        }
        Ok(Projection {
            d,
            centroid: mean.iter().map(|&m| m as f32).collect(),
            axes,
            variances: order.iter().map(|&k| values[k].max(0.0) as f32).collect(),
        })
    }

    pub fn dim(&self) -> usize {
        self.d
    }
    pub fn centroid(&self) -> &[f32] {
        &self.centroid
    }
    /// Axis `k` (unit length), `k < dim()`; axis 0 has the largest variance.
    pub fn axis(&self, k: usize) -> &[f32] {
        &self.axes[k * self.d..(k + 1) * self.d]
    }
    /// The variance of the embedding along each axis, decreasing.
    pub fn variances(&self) -> &[f32] {
        &self.variances
    }

    /// `z`'s coordinates along the axes, relative to the centroid: `c_k = axis_k . (z - centroid)`.
    /// The first two are the plane's.
    pub fn coords(&self, z: &[f32]) -> Result<Vec<f32>, ProjectionError> {
        self.check(z)?;
        Ok((0..self.d)
            .map(|k| {
                self.axis(k).iter().zip(z).zip(&self.centroid).map(|((&a, &v), &c)| a as f64 * (v as f64 - c as f64)).sum::<f64>() as f32
            })
            .collect())
    }

    /// The latent point with these coordinates, the inverse of [`Projection::coords`]:
    /// `z = centroid + sum_k c_k axis_k`.
    pub fn point(&self, coords: &[f32]) -> Result<Vec<f32>, ProjectionError> {
        self.check(coords)?;
        let mut z: Vec<f64> = self.centroid.iter().map(|&c| c as f64).collect();
        for (k, &c) in coords.iter().enumerate() {
            z.iter_mut().zip(self.axis(k)).for_each(|(v, &a)| *v += c as f64 * a as f64);
        }
        Ok(z.iter().map(|&v| v as f32).collect())
    }

    fn check(&self, v: &[f32]) -> Result<(), ProjectionError> {
        if v.len() != self.d {
            return Err(ProjectionError::Dimension { expected: self.d, found: v.len() });
        }
        match v.iter().position(|x| !x.is_finite()) {
            Some(index) => Err(ProjectionError::NonFinite { index, value: v[index] }),
            None => Ok(()),
        }
    }
}

/// Flips `axis` if needed so that its largest-magnitude entry (the first, on a tie) is positive:
/// an eigenvector's sign is arbitrary, and this makes the plane's orientation reproducible.
fn sign_by_largest(axis: &mut [f64]) {
    let largest = axis.iter().enumerate().fold(0, |best, (i, v)| if v.abs() > axis[best].abs() { i } else { best });
    if axis.get(largest).is_some_and(|&v| v < 0.0) {
        axis.iter_mut().for_each(|v| *v = -*v);
    }
}

/// Eigenvalues and eigenvectors (the columns of the returned d x d matrix) of the symmetric
/// matrix `a` (row-major), by cyclic Jacobi rotations: each zeroes one off-diagonal pair.
fn jacobi_eigen(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; d * d];
    (0..d).for_each(|i| v[i * d + i] = 1.0);
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _ in 0..MAX_SWEEPS {
        let off: f64 = (0..d).flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * d + j].powi(2)).sum();
        if off <= TOLERANCE * total {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                // Rotate by phi with cot(2 phi) = theta, taking the smaller root t = tan(phi).
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = if theta.abs() > 1e150 { 0.5 / theta } else { theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt()) };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
    }

    /// Points `c + s_k r_k u` for a hand-made orthonormal basis r (rows of 1/7 (2, 3, 6) etc.)
    /// and standard deviations s = (5, 2, 0.5): the axes are r, signed by their largest entry,
    /// and the variances s^2.
    #[test]
    fn a_rotated_anisotropic_cloud_gives_back_its_axes() {
        let r = [[2.0f32 / 7.0, 3.0 / 7.0, 6.0 / 7.0], [3.0 / 7.0, -6.0 / 7.0, 2.0 / 7.0], [6.0 / 7.0, 2.0 / 7.0, -3.0 / 7.0]];
        // r_1's largest entry is negative: the convention flips it.
        let signed = [r[0], [-3.0 / 7.0, 6.0 / 7.0, -2.0 / 7.0], r[2]];
        let s = [5.0f32, 2.0, 0.5];
        let c = [1.0f32, -3.0, 0.25];
        let mut points = Vec::new();
        // +-1 along each axis in turn, two points each: the covariance is exactly sum s_k^2 r_k r_k^T / 3.
        for k in 0..3 {
            for sign in [1.0f32, -1.0] {
                points.extend((0..3).map(|i| c[i] + sign * s[k] * 3f32.sqrt() * r[k][i]));
            }
        }
        let p = Projection::fit(&points, 3).unwrap();
        for (got, want) in p.centroid().iter().zip(c) {
            assert!((got - want).abs() < 1e-5, "centroid {:?}", p.centroid());
        }
        for k in 0..3 {
            assert!((dot(p.axis(k), &signed[k]) - 1.0).abs() < 1e-6, "axis {k}: {:?} vs {:?}", p.axis(k), signed[k]);
            assert!((p.variances()[k] - s[k] * s[k]).abs() < 1e-4 * s[0] * s[0], "variances {:?}", p.variances());
        }
    }

    /// The covariance written out with plain loops in the test: every axis is an eigenvector
    /// (C a = lambda a), the basis is orthonormal, sorted, and signed by the convention.
    #[test]
    fn axes_are_orthonormal_sorted_eigenvectors_of_the_covariance() {
        for d in [2usize, 3, 5, 8] {
            let n = 300;
            let points: Vec<f32> = (0..n * d)
                .map(|i| rng::normal(9, (i / d) as u32, (i % d) as u32) * (1.0 + (i % d) as f32) + 0.5 * (i % 7) as f32)
                .collect();
            let p = Projection::fit(&points, d).unwrap();
            let mean: Vec<f64> = (0..d).map(|j| (0..n).map(|i| points[i * d + j] as f64).sum::<f64>() / n as f64).collect();
            let cov = |a: usize, b: usize| {
                (0..n).map(|i| (points[i * d + a] as f64 - mean[a]) * (points[i * d + b] as f64 - mean[b])).sum::<f64>() / n as f64
            };
            for k in 0..d {
                let axis = p.axis(k);
                let lambda = p.variances()[k] as f64;
                for a in 0..d {
                    let ca: f64 = (0..d).map(|b| cov(a, b) * axis[b] as f64).sum();
                    assert!(
                        (ca - lambda * axis[a] as f64).abs() < 1e-4 * (1.0 + lambda),
                        "d {d} axis {k} row {a}: {ca} vs {}",
                        lambda * axis[a] as f64
                    );
                }
                for l in 0..d {
                    let want = if k == l { 1.0 } else { 0.0 };
                    assert!((dot(axis, p.axis(l)) - want).abs() < 1e-6, "d {d}: axes {k}, {l}");
                }
                if k > 0 {
                    assert!(p.variances()[k] <= p.variances()[k - 1]);
                }
                let largest = axis.iter().cloned().fold(0.0f32, |m, v| if v.abs() > m.abs() { v } else { m });
                assert!(largest > 0.0, "d {d} axis {k} is signed by its largest entry: {axis:?}");
            }
        }
    }

    #[test]
    fn the_sign_convention_makes_the_largest_entry_positive() {
        let mut a = [0.3, -0.9, 0.3];
        sign_by_largest(&mut a);
        assert_eq!(a, [-0.3, 0.9, -0.3]);
        let mut b = [0.6, -0.1, -0.6];
        sign_by_largest(&mut b);
        assert_eq!(b, [0.6, -0.1, -0.6], "a tie goes to the first");
        let mut c = [-0.6, 0.1, 0.6];
        sign_by_largest(&mut c);
        assert_eq!(c, [0.6, -0.1, -0.6]);
    }

    #[test]
    fn coords_and_point_are_inverse() {
        let d = 6;
        let points: Vec<f32> = (0..50 * d).map(|i| rng::normal(3, (i / d) as u32, (i % d) as u32) * (i % d + 1) as f32).collect();
        let p = Projection::fit(&points, d).unwrap();
        for z in points.chunks(d).take(10) {
            let c = p.coords(z).unwrap();
            let back = p.point(&c).unwrap();
            for (a, b) in z.iter().zip(&back) {
                assert!((a - b).abs() < 1e-5, "{z:?} -> {c:?} -> {back:?}");
            }
        }
        // The centroid is the origin of the coordinates; one step along axis 2 is axis 2.
        assert!(p.coords(p.centroid()).unwrap().iter().all(|c| c.abs() < 1e-6));
        let step = p.point(&[0.0, 0.0, 1.0, 0.0, 0.0, 0.0]).unwrap();
        for ((s, c), a) in step.iter().zip(p.centroid()).zip(p.axis(2)) {
            assert!((s - c - a).abs() < 1e-6);
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(matches!(Projection::fit(&[], 0), Err(ProjectionError::NoDimensions(0))));
        assert!(matches!(Projection::fit(&[1.0; 5], 2), Err(ProjectionError::Ragged { d: 2, found: 5 })));
        assert!(matches!(Projection::fit(&[], 3), Err(ProjectionError::Empty)));
        assert!(matches!(Projection::fit(&[1.0, f32::NAN], 2), Err(ProjectionError::NonFinite { index: 1, .. })));
        let p = Projection::fit(&[1.0, 2.0], 2).unwrap();
        assert!(matches!(p.coords(&[1.0]), Err(ProjectionError::Dimension { expected: 2, found: 1 })));
        assert!(matches!(p.point(&[1.0, f32::INFINITY]), Err(ProjectionError::NonFinite { index: 1, .. })));
        // One point: no spread, but still a basis.
        assert_eq!(p.variances(), &[0.0, 0.0]);
        assert_eq!(p.coords(&[1.0, 2.0]).unwrap(), vec![0.0, 0.0]);
    }
}
