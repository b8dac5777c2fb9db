//! Preprocessing on fixture images: a test-set digit photographed the way a person would supply
//! it (large, dark ink on light paper, off-centre, in colour) must become an input the encoder
//! places where it places the original 28x28 digit.

mod common;

use std::path::{Path, PathBuf};

use latent_explorer::{preprocess, weights};

/// (file, index in the MNIST test set)
const FIXTURES: [(&str, usize); 3] = [("digit-7-test0.png", 0), ("digit-2-test1.png", 1), ("digit-0-test3.png", 3)];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// RGBA pixels of a PNG (grey, RGB or RGBA, 8-bit).
fn load_rgba(path: &Path) -> (Vec<u8>, usize, usize) {
    let mut decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf[..w * h * 4].to_vec(),
        png::ColorType::Rgb => buf[..w * h * 3].chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        png::ColorType::Grayscale => buf[..w * h].iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::GrayscaleAlpha => buf[..w * h * 2].chunks(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (rgba, w, h)
}

fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let cov: f32 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f32 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f32 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn fixture_photos_of_test_digits_encode_where_the_originals_do() {
    let vae = weights::from_bytes(&std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models/mnist-2d.safetensors")).unwrap())
        .unwrap()
        .vae;
    let data = common::mnist();
    for (name, index) in FIXTURES {
        let (rgba, w, h) = load_rgba(&fixture(name));
        assert!(w > 200 && h > 200, "{name} should be a large picture");
        let input = preprocess::rgba_to_mnist(&rgba, w, h).unwrap();
        let original = latent_explorer::dataset::to_intensities(&data.test_images[index * 784..(index + 1) * 784]);
        let r = correlation(&input, &original);
        let mu_in = vae.encode(&input).unwrap().mu;
        let mu_orig = vae.encode(&original).unwrap().mu;
        let dist = ((mu_in[0] - mu_orig[0]).powi(2) + (mu_in[1] - mu_orig[1]).powi(2)).sqrt();
        eprintln!("{name}: pixel correlation {r:.3}, latent distance {dist:.3} ({mu_in:?} vs {mu_orig:?})");
        assert!(r > 0.95, "{name}: preprocessed image correlates {r} with the original");
        assert!(dist < 0.2, "{name}: encoded {dist} away from the original digit");
    }
}

/// Regenerates the fixtures from the MNIST test set: `cargo test --test preprocess -- --ignored`.
#[test]
#[ignore]
fn regenerate_fixtures() {
    let data = common::mnist();
    for (name, index) in FIXTURES {
        let digit = &data.test_images[index * 784..(index + 1) * 784];
        // 10x bilinear enlargement, dark blue-black ink on cream paper, off-centre on a 400x330 sheet.
        let (w, h, scale, ox, oy) = (400usize, 330usize, 10.0f32, 60usize, 25usize);
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = ((x as f32 - ox as f32) / scale - 0.5, (y as f32 - oy as f32) / scale - 0.5);
                let at = |xx: i32, yy: i32| {
                    if (0..28).contains(&xx) && (0..28).contains(&yy) {
                        digit[yy as usize * 28 + xx as usize] as f32 / 255.0
                    } else {
                        0.0
                    }
                };
                let (x0, y0) = (fx.floor() as i32, fy.floor() as i32);
                let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
                let ink = at(x0, y0) * (1.0 - tx) * (1.0 - ty)
                    + at(x0 + 1, y0) * tx * (1.0 - ty)
                    + at(x0, y0 + 1) * (1.0 - tx) * ty
                    + at(x0 + 1, y0 + 1) * tx * ty;
                let paper = [245.0, 240.0, 225.0];
                let pen = [20.0, 25.0, 60.0];
                for c in 0..3 {
                    rgb[(y * w + x) * 3 + c] = (paper[c] * (1.0 - ink) + pen[c] * ink).round() as u8;
                }
            }
        }
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::High);
            enc.write_header().unwrap().write_image_data(&rgb).unwrap();
        }
        std::fs::write(fixture(name), out).unwrap();
    }
}
