//! The three matrix products a dense network needs, as safe wrappers over `matrixmultiply`.
//!
//! `matrixmultiply` takes arbitrary strides, so transposes cost nothing: no copies on the hot path.
//! All matrices are row-major slices; the asserts guard this crate's own indexing, not user input.

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    N,
    T,
}

/// `C[m,n] = A' B' + beta * C`, where `A'` is `A` (`[m,k]`) or `A^T` (`A` stored `[k,m]`),
/// and `B'` is `B` (`[k,n]`) or `B^T` (`B` stored `[n,k]`).
#[allow(clippy::too_many_arguments)]
pub fn gemm(m: usize, k: usize, n: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op, beta: f32, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "gemm operand too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].iter_mut().for_each(|v| *v *= beta);
        return;
    }
    // (row stride, column stride) of the logical operand.
    let (rsa, csa) = match op_a {
        Op::N => (k as isize, 1),
        Op::T => (1, m as isize),
    };
    let (rsb, csb) = match op_b {
        Op::N => (n as isize, 1),
        Op::T => (1, k as isize),
    };
    // SAFETY: the asserts above ensure every index the strides reach lies inside the slices.
    unsafe {
        matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), n as isize, 1);
    }
}

/// `C[m,n] = A B + beta * C` where `A` (`[m,k]`) is read with explicit (row, column) strides,
/// so a block of columns of a stored matrix can be used transposed without a copy; `B` (`[k,n]`)
/// and `C` are row-major.
#[allow(clippy::too_many_arguments)]
pub fn gemm_at(m: usize, k: usize, n: usize, a: &[f32], (rsa, csa): (usize, usize), b: &[f32], beta: f32, c: &mut [f32]) {
    if m == 0 || n == 0 || k == 0 {
        return gemm(m, k, n, a, Op::N, b, Op::N, beta, c);
    }
    let a_last = (m - 1) * rsa + (k - 1) * csa;
    assert!(a.len() > a_last && b.len() >= k * n && c.len() >= m * n, "gemm operand too small");
    // SAFETY: the assert bounds the furthest element the strides reach in every operand.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            n as isize,
            1,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Like [`gemm`], with the output columns split across the current rayon pool. Every element
/// is computed by the same kernel in the same order whatever the split, so the result is
/// bit-identical for any thread count. Small products run on the calling thread.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
pub fn gemm_par(m: usize, k: usize, n: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op, beta: f32, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "gemm operand too small");
    let threads = rayon::current_num_threads();
    if threads <= 1 || m * n * k < (1 << 18) || n < 64 || k == 0 || m == 0 {
        return gemm(m, k, n, a, op_a, b, op_b, beta, c);
    }
    let (rsa, csa) = match op_a {
        Op::N => (k as isize, 1),
        Op::T => (1, m as isize),
    };
    // Column j of B' starts at element j * (column stride) of `b`.
    let (rsb, csb) = match op_b {
        Op::N => (n as isize, 1),
        Op::T => (1, k as isize),
    };
    // More blocks than threads: a worker that wakes late (or loses its core) takes fewer.
    let parts = (2 * threads).min(n / 32);
    // Block edges on multiples of 16 columns keep the kernel's tiles whole.
    let edges: Vec<usize> = (0..=parts).map(|p| (p * n / parts) / 16 * 16).map(|e| e.min(n)).collect();
    let edges: Vec<usize> = edges.into_iter().enumerate().map(|(i, e)| if i == parts { n } else { e }).collect();
    let a_ptr = SendPtr(a.as_ptr() as *mut f32);
    let b_ptr = SendPtr(b.as_ptr() as *mut f32);
    let c_ptr = SendPtr(c.as_mut_ptr());
    rayon::scope(|s| {
        for w in edges.windows(2) {
            let (j0, j1) = (w[0], w[1]);
            if j1 <= j0 {
                continue;
            }
            s.spawn(move |_| {
                let (a_ptr, b_ptr, c_ptr) = (a_ptr, b_ptr, c_ptr);
                // SAFETY: blocks cover disjoint column ranges of C, all inside the asserted
                // bounds; A and B are only read.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        j1 - j0,
                        1.0,
                        a_ptr.0,
                        rsa,
                        csa,
                        b_ptr.0.offset(j0 as isize * csb),
                        rsb,
                        csb,
                        beta,
                        c_ptr.0.add(j0),
                        n as isize,
                        1,
                    );
                }
            });
        }
    });
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only to hand disjoint regions of one matrix to scoped worker threads.
#[cfg(not(target_arch = "wasm32"))]
unsafe impl Send for SendPtr {}
#[cfg(not(target_arch = "wasm32"))]
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    let x = if op_a == Op::N { a[i * k + p] } else { a[p * m + i] };
                    let y = if op_b == Op::N { b[p * n + j] } else { b[j * k + p] };
                    s += x as f64 * y as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn parallel_split_is_bit_identical_to_serial() {
        let (m, k, n) = (70, 300, 517);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for op_a in [Op::N, Op::T] {
            for op_b in [Op::N, Op::T] {
                let mut serial = vec![0.5; m * n];
                let mut par = serial.clone();
                gemm(m, k, n, &a, op_a, &b, op_b, 1.0, &mut serial);
                pool.install(|| gemm_par(m, k, n, &a, op_a, &b, op_b, 1.0, &mut par));
                assert_eq!(serial, par, "{op_a:?}{op_b:?}");
            }
        }
    }

    #[test]
    fn all_transpose_combinations_match_a_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        for op_a in [Op::N, Op::T] {
            for op_b in [Op::N, Op::T] {
                let mut c = vec![1.0; m * n];
                gemm(m, k, n, &a, op_a, &b, op_b, 0.0, &mut c);
                let want = naive(m, k, n, &a, op_a, &b, op_b);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-5, "{op_a:?}{op_b:?}: {x} vs {y}");
                }
                // beta = 1 accumulates.
                gemm(m, k, n, &a, op_a, &b, op_b, 1.0, &mut c);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 1e-5);
                }
            }
        }
    }
}
