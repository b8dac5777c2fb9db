//! IDX files (the MNIST and Fashion-MNIST format), raw or gzip-compressed, parsed from bytes.
//!
//! Format: a big-endian u32 magic `0x0000_08DD` (0x08 = unsigned bytes, DD = number of
//! dimensions), one big-endian u32 per dimension, then the bytes row-major.

use std::io::Read;

use crate::error::DataError;

pub const IMAGES_MAGIC: u32 = 0x0000_0803;
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Images as bytes, row-major `count * rows * cols`.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Undoes gzip if the bytes start with the gzip magic; otherwise returns them as they are.
///
/// Decompression is bounded by what the IDX header inside promises: a stream that inflates to
/// more than that (a decompression bomb, or garbage after the data) is an error, found after
/// reading at most one byte past the promised size.
pub fn maybe_gunzip(file: &str, bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let corrupt = |e: std::io::Error| DataError::Malformed {
        file: file.into(),
        reason: format!("corrupt gzip stream ({e}); delete it and download again"),
    };
    let mut decoder = flate2::read::GzDecoder::new(&bytes[..]);
    let mut out = Vec::new();
    // The magic (its last byte is the number of dimensions), then the dimensions.
    (&mut decoder).take(4).read_to_end(&mut out).map_err(corrupt)?;
    if out.len() < 4 {
        return Ok(out); // the parser reports the truncation
    }
    let ndim = out[3] as u64;
    (&mut decoder).take(4 * ndim).read_to_end(&mut out).map_err(corrupt)?;
    let header_len = 4 + 4 * ndim as usize;
    if out.len() < header_len {
        return Ok(out);
    }
    let body =
        out[4..header_len].chunks_exact(4).try_fold(1u64, |acc, c| acc.checked_mul(u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64));
    let Some(limit) = body.and_then(|b| b.checked_add(header_len as u64)).filter(|&n| n <= MAX_FILE_BYTES) else {
        return Err(DataError::Malformed {
            file: file.into(),
            reason: format!("the header describes more than {} GiB of data; this is not an MNIST-like data set", MAX_FILE_BYTES >> 30),
        });
    };
    // Read one byte past the promise, so that a longer stream is detected without inflating it.
    let rest = limit - out.len() as u64;
    let start = out.len();
    (&mut decoder).take(rest + 1).read_to_end(&mut out).map_err(corrupt)?;
    if (out.len() - start) as u64 > rest {
        return Err(DataError::Malformed {
            file: file.into(),
            reason: format!("decompresses to more than the {limit} bytes its header describes"),
        });
    }
    Ok(out)
}

/// The largest (decompressed) IDX file accepted (MNIST's largest is 47 MB, EMNIST's 0.55 GB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

fn header(file: &str, bytes: &[u8], magic: u32, what: &'static str) -> Result<Vec<usize>, DataError> {
    let ndim = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndim;
    if bytes.len() < 4 {
        return Err(DataError::Truncated { file: file.into(), expected: header_len, found: bytes.len() });
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(DataError::BadMagic { file: file.into(), found, expected: magic, what });
    }
    if bytes.len() < header_len {
        return Err(DataError::Truncated { file: file.into(), expected: header_len, found: bytes.len() });
    }
    let dims: Vec<usize> = bytes[4..header_len].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let body: usize = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::Malformed { file: file.into(), reason: format!("dimensions {dims:?} overflow") })?;
    let expected = header_len + body;
    if bytes.len() < expected {
        return Err(DataError::Truncated { file: file.into(), expected, found: bytes.len() });
    }
    if bytes.len() > expected {
        return Err(DataError::Malformed {
            file: file.into(),
            reason: format!("{} trailing bytes after the data the header describes", bytes.len() - expected),
        });
    }
    Ok(dims)
}

/// Parses an images file (magic 0x803). `file` names it in errors.
pub fn parse_images(file: &str, bytes: &[u8]) -> Result<IdxImages, DataError> {
    let dims = header(file, bytes, IMAGES_MAGIC, "images")?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(DataError::Malformed { file: file.into(), reason: format!("image size {rows}x{cols}") });
    }
    Ok(IdxImages { count, rows, cols, pixels: bytes[16..].to_vec() })
}

/// Parses a labels file (magic 0x801).
pub fn parse_labels(file: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    header(file, bytes, LABELS_MAGIC, "labels")?;
    Ok(bytes[8..].to_vec())
}

/// Serialises images to IDX (used by tests and fixtures).
pub fn encode_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IMAGES_MAGIC, count as u32, rows as u32, cols as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Serialises labels to IDX.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}
