//! Turning any picture of a digit into an MNIST-like 28x28 input, the way MNIST itself was made
//! (LeCun et al.): grey levels, ink bright on dark, cropped to the ink, scaled to fit a 20x20 box
//! keeping the aspect ratio, then placed in 28x28 so the centre of mass is in the middle.
//! Shared by the page (uploads and the drawing pad) and native code, so both see the same input.

use crate::architecture::{IMAGE_PIXELS, IMAGE_SIDE};

/// The largest image accepted (the page downsizes bigger ones first).
pub const MAX_PIXELS: usize = 4096 * 4096;
/// Side of the box the digit is scaled to fit, as in MNIST.
const FIT: usize = 20;
/// Ink below this (after background removal) is not part of the digit's bounding box.
const INK_THRESHOLD: f32 = 0.1;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PreprocessError {
    #[error("the image is empty (0 x 0 pixels)")]
    Empty,
    #[error("the image is {width} x {height} pixels; the largest accepted is {MAX_PIXELS} pixels in all")]
    TooLarge { width: usize, height: usize },
    #[error("expected {expected} bytes of RGBA for {width} x {height} pixels, got {found}")]
    BadLength { width: usize, height: usize, expected: usize, found: usize },
    #[error("expected {width} x {height} grey levels, got {found}")]
    BadGreyLength { width: usize, height: usize, found: usize },
    #[error("grey level {value} at pixel {index} is outside [0, 1]")]
    BadGrey { index: usize, value: f32 },
    #[error("no digit found: the image has no ink (draw or upload a digit)")]
    NoInk,
}

/// Rejects sizes that are empty, too large, or whose pixel count overflows.
fn check_size(width: usize, height: usize) -> Result<usize, PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty);
    }
    match width.checked_mul(height) {
        Some(n) if n <= MAX_PIXELS => Ok(n),
        _ => Err(PreprocessError::TooLarge { width, height }),
    }
}

/// Grey levels in [0, 1] (1 = white) from RGBA bytes, transparent areas counted as white paper.
pub fn grey_from_rgba(rgba: &[u8], width: usize, height: usize) -> Result<Vec<f32>, PreprocessError> {
    let expected = check_size(width, height)? * 4;
    if rgba.len() != expected {
        return Err(PreprocessError::BadLength { width, height, expected, found: rgba.len() });
    }
    Ok(rgba
        .chunks_exact(4)
        .map(|p| {
            let lum = (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0;
            let a = p[3] as f32 / 255.0;
            a * lum + (1.0 - a)
        })
        .collect())
}

/// An MNIST-like input (784 intensities in [0, 1], ink = 1) from grey levels (`width * height`
/// values in [0, 1]). Dark ink on light paper is inverted automatically: the border decides
/// which is the background.
pub fn to_mnist(grey: &[f32], width: usize, height: usize) -> Result<Vec<f32>, PreprocessError> {
    if check_size(width, height)? != grey.len() {
        return Err(PreprocessError::BadGreyLength { width, height, found: grey.len() });
    }
    if let Some(index) = grey.iter().position(|g| !(0.0..=1.0).contains(g)) {
        return Err(PreprocessError::BadGrey { index, value: grey[index] });
    }
    // Background level: the median of the border pixels.
    let mut border: Vec<f32> = (0..width)
        .flat_map(|x| [grey[x], grey[(height - 1) * width + x]])
        .chain((0..height).flat_map(|y| [grey[y * width], grey[y * width + width - 1]]))
        .collect();
    border.sort_by(|a, b| a.total_cmp(b));
    let background = border[border.len() / 2];
    let light_paper = background > 0.5;
    // Ink in [0, 1]: distance from the background, rescaled so the background is 0.
    let span = if light_paper { background } else { 1.0 - background }.max(1e-3);
    let ink: Vec<f32> = grey
        .iter()
        .map(|&g| {
            let d = if light_paper { background - g } else { g - background };
            (d / span).clamp(0.0, 1.0)
        })
        .collect();

    // Bounding box of the ink.
    let (mut x0, mut y0, mut x1, mut y1) = (width, height, 0, 0);
    for y in 0..height {
        for x in 0..width {
            if ink[y * width + x] > INK_THRESHOLD {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    if x1 <= x0 || y1 <= y0 {
        return Err(PreprocessError::NoInk);
    }
    let (bw, bh) = (x1 - x0, y1 - y0);
    // Fit the longer side to 20 pixels, keeping the aspect ratio.
    let scale = FIT as f32 / bw.max(bh) as f32;
    let tw = ((bw as f32 * scale).round() as usize).clamp(1, FIT);
    let th = ((bh as f32 * scale).round() as usize).clamp(1, FIT);
    let small = resample(&ink, width, (x0, y0, bw, bh), tw, th);

    // Centre of mass of the scaled digit in pixel-index coordinates, placed at index (14, 14)
    // as MNIST did.
    let (mut m, mut mx, mut my) = (0.0f32, 0.0f32, 0.0f32);
    for y in 0..th {
        for x in 0..tw {
            let v = small[y * tw + x];
            m += v;
            mx += v * x as f32;
            my += v * y as f32;
        }
    }
    let half = IMAGE_SIDE as f32 / 2.0;
    let (ox, oy) = if m > 0.0 { ((half - mx / m).round() as isize, (half - my / m).round() as isize) } else { (4, 4) };
    let mut out = vec![0.0f32; IMAGE_PIXELS];
    for y in 0..th {
        for x in 0..tw {
            let (tx, ty) = (x as isize + ox, y as isize + oy);
            if (0..IMAGE_SIDE as isize).contains(&tx) && (0..IMAGE_SIDE as isize).contains(&ty) {
                out[ty as usize * IMAGE_SIDE + tx as usize] = small[y * tw + x];
            }
        }
    }
    Ok(out)
}

/// RGBA bytes straight to an MNIST-like input.
pub fn rgba_to_mnist(rgba: &[u8], width: usize, height: usize) -> Result<Vec<f32>, PreprocessError> {
    to_mnist(&grey_from_rgba(rgba, width, height)?, width, height)
}

/// Area-averaging resample of the box (x0, y0, w, h) of `src` (row length `stride`) to tw x th:
/// each output pixel is the mean of the source area it covers, with fractional edges, so thin
/// strokes survive large reductions and enlargements stay smooth.
fn resample(src: &[f32], stride: usize, (x0, y0, w, h): (usize, usize, usize, usize), tw: usize, th: usize) -> Vec<f32> {
    // Weights of source columns (rows) for each target column (row).
    let weights = |n_src: usize, n_dst: usize| -> Vec<Vec<(usize, f32)>> {
        let step = n_src as f32 / n_dst as f32;
        (0..n_dst)
            .map(|i| {
                let (a, b) = (i as f32 * step, (i + 1) as f32 * step);
                if step <= 1.0 {
                    // Enlarging: sample the source pixel under the target's centre.
                    let c = (((a + b) / 2.0) as usize).min(n_src - 1);
                    return vec![(c, 1.0)];
                }
                let mut w = Vec::new();
                let mut s = a.floor() as usize;
                while (s as f32) < b && s < n_src {
                    let cover = (b.min(s as f32 + 1.0) - a.max(s as f32)).max(0.0);
                    if cover > 0.0 {
                        w.push((s, cover / step));
                    }
                    s += 1;
                }
                w
            })
            .collect()
    };
    let (wx, wy) = (weights(w, tw), weights(h, th));
    // Columns first (rows of the box), then rows.
    let mut tmp = vec![0.0f32; h * tw];
    for y in 0..h {
        let row = &src[(y0 + y) * stride + x0..(y0 + y) * stride + x0 + w];
        for (tx, ws) in wx.iter().enumerate() {
            tmp[y * tw + tx] = ws.iter().map(|&(sx, f)| row[sx] * f).sum();
        }
    }
    let mut out = vec![0.0f32; th * tw];
    for (ty, ws) in wy.iter().enumerate() {
        for tx in 0..tw {
            out[ty * tw + tx] = ws.iter().map(|&(sy, f)| tmp[sy * tw + tx] * f).sum::<f32>().clamp(0.0, 1.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filled rectangle of ink (value `ink`) on paper (value `paper`).
    fn rect(width: usize, height: usize, r: (usize, usize, usize, usize), paper: f32, ink: f32) -> Vec<f32> {
        let mut g = vec![paper; width * height];
        for y in r.1..r.1 + r.3 {
            for x in r.0..r.0 + r.2 {
                g[y * width + x] = ink;
            }
        }
        g
    }

    fn bbox(img: &[f32]) -> (usize, usize, usize, usize) {
        let (mut x0, mut y0, mut x1, mut y1) = (28, 28, 0, 0);
        for y in 0..28 {
            for x in 0..28 {
                if img[y * 28 + x] > 0.5 {
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
                }
            }
        }
        (x0, y0, x1 - x0, y1 - y0)
    }

    #[test]
    fn dark_ink_on_light_paper_is_inverted_and_fitted_to_20_pixels() {
        // A tall bar, black on white, off-centre in a large image.
        let g = rect(300, 200, (20, 10, 40, 160), 1.0, 0.0);
        let out = to_mnist(&g, 300, 200).unwrap();
        let (x, y, w, h) = bbox(&out);
        assert_eq!(h, 20, "the longer side fills 20 pixels");
        assert_eq!(w, 5, "aspect kept: 40/160 of 20");
        // Centred: the bar's centre of mass is at the middle.
        assert!((x as f32 + w as f32 / 2.0 - 14.0).abs() <= 1.0 && (y as f32 + h as f32 / 2.0 - 14.0).abs() <= 1.0);
        assert!(out.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn light_ink_on_dark_paper_is_kept_as_it_is() {
        let a = to_mnist(&rect(50, 50, (10, 5, 20, 40), 0.0, 1.0), 50, 50).unwrap();
        let b = to_mnist(&rect(50, 50, (10, 5, 20, 40), 1.0, 0.0), 50, 50).unwrap();
        assert_eq!(a, b, "the same shape in either polarity gives the same input");
        assert!(a.iter().sum::<f32>() > 100.0);
    }

    #[test]
    fn grey_paper_is_removed() {
        // Grey (0.8) paper with dark ink: the paper must not become a grey frame of ink.
        let out = to_mnist(&rect(40, 40, (15, 5, 10, 30), 0.8, 0.1), 40, 40).unwrap();
        assert_eq!(out[0], 0.0);
        assert_eq!(bbox(&out).3, 20);
    }

    #[test]
    fn an_empty_drawing_is_an_error() {
        assert_eq!(to_mnist(&vec![1.0; 100], 10, 10), Err(PreprocessError::NoInk));
        assert_eq!(to_mnist(&[], 0, 0), Err(PreprocessError::Empty));
    }

    #[test]
    fn rgba_is_validated_and_transparency_is_paper() {
        assert!(matches!(grey_from_rgba(&[0; 7], 1, 2), Err(PreprocessError::BadLength { .. })));
        assert!(matches!(grey_from_rgba(&[], 10000, 10000), Err(PreprocessError::TooLarge { .. })));
        let g = grey_from_rgba(&[0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255], 3, 1).unwrap();
        assert_eq!(g, vec![1.0, 0.0, 1.0]);
    }

    #[test]
    fn a_one_pixel_dot_still_gives_a_centred_input() {
        let mut g = vec![1.0; 64 * 64];
        g[5 * 64 + 60] = 0.0;
        let out = to_mnist(&g, 64, 64).unwrap();
        let (x, y, _, _) = bbox(&out);
        assert!((4..=24).contains(&x) && (4..=24).contains(&y));
    }
}
