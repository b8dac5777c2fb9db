//! Corrupting a picture for the denoising and completion demo: Gaussian noise and an erased
//! rectangle. Pure functions of their arguments (the noise is `rng::normal`, counter-based), so
//! the page, its browser tests and the CPU reference produce the same corrupted input.

use thiserror::Error;

use crate::rng;

/// Why a corruption was refused.
#[derive(Debug, Error)]
pub enum CorruptError {
    #[error("noise strength {0} is not a number in [0, 1]")]
    Strength(f32),
    #[error("pixel {index} is {value}, not a finite intensity")]
    NonFinite { index: usize, value: f32 },
    #[error("{found} pixels is not a square image of side {side} ({expected} pixels)")]
    Size { side: usize, expected: usize, found: usize },
}

/// Adds Gaussian noise: pixel `i` becomes `clamp(x_i + strength * n_i, 0, 1)` with
/// `n_i = rng::normal(seed, 0, i)` (sample index 0, dimension `i`), the whole formula the
/// browser tests check. `strength` is in [0, 1] (a standard deviation in intensity units);
/// anything else, or a non-finite pixel, is refused.
pub fn add_noise(pixels: &[f32], strength: f32, seed: u32) -> Result<Vec<f32>, CorruptError> {
    if !(0.0..=1.0).contains(&strength) {
        return Err(CorruptError::Strength(strength));
    }
    check_finite(pixels)?;
    Ok(pixels.iter().enumerate().map(|(i, &x)| (x + strength * rng::normal(seed, 0, i as u32)).clamp(0.0, 1.0)).collect())
}

/// A rectangle in pixel coordinates, half-open: columns `x0 <= col < x1`, rows `y0 <= row < y1`.
/// Signed, so a rectangle dragged partly off the image still means what it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

/// Erases a rectangle of a square image (`side * side` pixels, row-major): pixels with
/// `x0 <= col < x1` and `y0 <= row < y1` become 0. The rectangle is clamped to the image, so one
/// partly or wholly outside erases only what it covers (possibly nothing), and an empty one
/// (`x1 <= x0` or `y1 <= y0`) erases nothing.
pub fn erase(pixels: &[f32], side: usize, rect: Rect) -> Result<Vec<f32>, CorruptError> {
    let expected = side * side;
    if pixels.len() != expected {
        return Err(CorruptError::Size { side, expected, found: pixels.len() });
    }
    check_finite(pixels)?;
    let clamp = |v: i32| (v.max(0) as usize).min(side);
    let (x0, x1, y0, y1) = (clamp(rect.x0), clamp(rect.x1), clamp(rect.y0), clamp(rect.y1));
    let mut out = pixels.to_vec();
    for row in y0..y1 {
        for col in x0..x1 {
            out[row * side + col] = 0.0;
        }
    }
    Ok(out)
}

fn check_finite(pixels: &[f32]) -> Result<(), CorruptError> {
    match pixels.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(CorruptError::NonFinite { index, value: pixels[index] }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from an independent implementation (Python, f64: pcg3d, then
    /// -sqrt(-2 ln u1) cos(2 pi u2)) of clamp(x + 0.3 * normal(42, 0, i), 0, 1); pixels 3 and 6
    /// clamp at 1 and at 0.
    #[test]
    fn noise_follows_the_documented_formula() {
        let x = [0.5f32, 0.5, 0.0, 1.0, 0.2, 0.8, 0.1, 0.5];
        let want = [
            0.8420858702195639,
            0.8203434160121548,
            0.3936775794466076,
            1.0,
            0.2175525606645044,
            0.805588418844425,
            0.0,
            0.8083493092566991,
        ];
        let got = add_noise(&x, 0.3, 42).unwrap();
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((*g as f64 - w).abs() < 2e-6, "pixel {i}: {g} vs {w}");
        }
        assert_eq!(add_noise(&x, 0.0, 42).unwrap(), x, "strength 0 changes nothing");
        assert_ne!(add_noise(&x, 0.3, 43).unwrap(), got, "the seed matters");
    }

    #[test]
    fn bad_strengths_and_pixels_are_refused() {
        for s in [-0.01, 1.01, f32::NAN, f32::INFINITY] {
            assert!(matches!(add_noise(&[0.5], s, 1), Err(CorruptError::Strength(_))), "{s}");
        }
        assert!(add_noise(&[0.5], 1.0, 1).is_ok());
        assert!(matches!(add_noise(&[0.5, f32::NAN], 0.5, 1), Err(CorruptError::NonFinite { index: 1, .. })));
        assert!(matches!(
            erase(&[0.0; 8], 3, Rect { x0: 0, y0: 0, x1: 1, y1: 1 }),
            Err(CorruptError::Size { side: 3, expected: 9, found: 8 })
        ));
    }

    /// A 4x4 image of ones; the erased pixels are listed by hand.
    #[test]
    fn erase_zeroes_exactly_the_clamped_rectangle() {
        let ones = [1.0f32; 16];
        let zeros =
            |r: Rect| -> Vec<usize> { erase(&ones, 4, r).unwrap().iter().enumerate().filter(|(_, &v)| v == 0.0).map(|(i, _)| i).collect() };
        // Columns 1..3 of rows 2..4: (2,1) (2,2) (3,1) (3,2).
        assert_eq!(zeros(Rect { x0: 1, y0: 2, x1: 3, y1: 4 }), vec![9, 10, 13, 14]);
        // Partly off the top-left: clamped to columns 0..1, rows 0..2.
        assert_eq!(zeros(Rect { x0: -5, y0: -1, x1: 1, y1: 2 }), vec![0, 4]);
        // Past the bottom-right: clamped to column 3, row 3.
        assert_eq!(zeros(Rect { x0: 3, y0: 3, x1: 100, y1: 100 }), vec![15]);
        // Wholly outside, or empty: nothing.
        assert_eq!(zeros(Rect { x0: 4, y0: 0, x1: 9, y1: 4 }), Vec::<usize>::new());
        assert_eq!(zeros(Rect { x0: 2, y0: 2, x1: 1, y1: 3 }), Vec::<usize>::new());
        // The rest of the image is untouched.
        let mut img: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
        let out = erase(&img, 4, Rect { x0: 1, y0: 2, x1: 3, y1: 4 }).unwrap();
        for i in [9, 10, 13, 14] {
            img[i] = 0.0;
        }
        assert_eq!(out, img);
    }
}
