//! The model file: safetensors with PyTorch `nn.Linear` names and layout, plus the test-set
//! embedding the page draws, plus metadata. Works from bytes, so native and wasm share it.
//!
//! Loading trusts nothing: every tensor's presence, dtype, shape and values are checked against
//! the architecture, and each failure names the tensor.
//!
//! [`convert::convert`] (native only) rewrites a model file in another precision, measuring it again.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};

use crate::architecture::{Architecture, ModelKind};
use crate::error::ModelError;
use crate::model::Vae;

#[cfg(not(target_arch = "wasm32"))]
pub mod convert;

pub const EMBEDDING_MU: &str = "embedding.mu";
pub const EMBEDDING_LABEL: &str = "embedding.label";

/// The encoder means of a labelled data set: the points of the latent plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// `n * latent`, row-major.
    pub mu: Vec<f32>,
    /// `n` class labels.
    pub labels: Vec<u8>,
}

/// A loaded model file.
#[derive(Clone, Debug)]
pub struct ModelFile {
    pub vae: Vae,
    pub embedding: Option<Embedding>,
    /// Every `__metadata__` entry, including `architecture`.
    pub metadata: BTreeMap<String, String>,
}

impl ModelFile {
    /// A metadata value parsed as a number, if present and numeric.
    pub fn metadata_f64(&self, key: &str) -> Option<f64> {
        self.metadata.get(key).and_then(|v| v.parse().ok())
    }
}

/// Storage precision of the parameter tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    F32,
    /// Half the size; decode error stays far below one grey level.
    F16,
}

/// A tensor to write: name, shape, dtype and little-endian bytes.
pub type RawTensor = (String, Vec<usize>, Dtype, Vec<u8>);

/// Serialises the parameters (and extra tensors such as optimiser state) to safetensors bytes.
/// `architecture` is always written from the model; other metadata comes from `metadata`.
pub fn to_bytes(
    vae: &Vae,
    embedding: Option<&Embedding>,
    metadata: &BTreeMap<String, String>,
    dtype: StorageDtype,
    extra: Vec<RawTensor>,
) -> Result<Vec<u8>, ModelError> {
    let mut tensors: Vec<RawTensor> = Vec::new();
    let mut offset = 0;
    for (name, shape) in vae.arch().tensor_shapes() {
        let n: usize = shape.iter().product();
        let values = &vae.params()[offset..offset + n];
        offset += n;
        // Never write what `from_bytes` would refuse: a diverged run must leave no model behind.
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite { name, index, value: values[index] });
        }
        let (dt, bytes) = match dtype {
            StorageDtype::F32 => (Dtype::F32, f32_bytes(values)),
            StorageDtype::F16 => (Dtype::F16, values.iter().flat_map(|&v| f32_to_f16(v).to_le_bytes()).collect()),
        };
        tensors.push((name, shape, dt, bytes));
    }
    if let Some(e) = embedding {
        let latent = vae.arch().latent;
        if e.mu.len() != e.labels.len() * latent {
            return Err(ModelError::Embedding(format!("{} means for {} labels at latent size {latent}", e.mu.len(), e.labels.len())));
        }
        if let Some(index) = e.mu.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite { name: EMBEDDING_MU.into(), index, value: e.mu[index] });
        }
        tensors.push((EMBEDDING_MU.into(), vec![e.labels.len(), latent], Dtype::F32, f32_bytes(&e.mu)));
        tensors.push((EMBEDDING_LABEL.into(), vec![e.labels.len()], Dtype::U8, e.labels.clone()));
    }
    tensors.extend(extra);

    let mut meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    meta.insert("architecture".into(), architecture_json(vae.arch()));
    meta.insert("format".into(), "latent-explorer".into());
    let views = tensors
        .iter()
        .map(|(name, shape, dt, bytes)| TensorView::new(*dt, shape.clone(), bytes).map(|v| (name.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ModelError::Format(e.to_string()))?;
    safetensors::serialize(views, Some(meta)).map_err(|e| ModelError::Format(e.to_string()))
}

pub fn architecture_json(arch: &Architecture) -> String {
    serde_json::to_string(arch).expect("an architecture always serialises")
}

/// Little-endian bytes of f32 values.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Parses and validates a model file.
pub fn from_bytes(bytes: &[u8]) -> Result<ModelFile, ModelError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format_error(e, bytes.len()))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format_error(e, bytes.len()))?;
    let metadata: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();

    let arch = match metadata.get("architecture") {
        Some(json) => serde_json::from_str::<Architecture>(json).map_err(|e| ModelError::Metadata {
            key: "architecture".into(),
            reason: format!("not a valid architecture description: {e}"),
        })?,
        None => infer_architecture(&st)?,
    };
    // Sizes come from the file: count the parameters without overflow before anything
    // (`validate` included) multiplies them.
    let n_params = checked_n_params(&arch).ok_or_else(|| ModelError::Metadata {
        key: "architecture".into(),
        reason: format!("layer sizes {} overflow the parameter count", arch.describe()),
    })?;
    arch.validate()?;

    // Never trust the count for an allocation: a tiny file may claim a huge model.
    let mut params = Vec::with_capacity(n_params.min(bytes.len() / 2));
    for (name, shape) in arch.tensor_shapes() {
        params.extend(read_tensor(&st, &name, &shape, false)?);
    }
    let vae = Vae::new(arch.clone(), params)?;

    let embedding = match (st.tensor(EMBEDDING_MU).is_ok(), st.tensor(EMBEDDING_LABEL).is_ok()) {
        (false, false) => None,
        (true, false) => return Err(ModelError::MissingTensor(EMBEDDING_LABEL.into())),
        (false, true) => return Err(ModelError::MissingTensor(EMBEDDING_MU.into())),
        (true, true) => Some(read_embedding(&st, arch.latent)?),
    };

    let expected: Vec<String> = arch.tensor_shapes().into_iter().map(|(n, _)| n).collect();
    let mut names = st.names();
    names.sort();
    for name in names {
        let known = expected.iter().any(|e| e == name) || name == EMBEDDING_MU || name == EMBEDDING_LABEL;
        // Optimiser state rides along in checkpoints; it is not part of the model.
        if !known && !name.starts_with("adam.") {
            return Err(ModelError::UnexpectedTensor(name.into()));
        }
    }
    Ok(ModelFile { vae, embedding, metadata })
}

/// The number of parameters of `arch`, or `None` if it overflows `usize`.
fn checked_n_params(arch: &Architecture) -> Option<usize> {
    arch.all_layers().iter().try_fold(0usize, |acc, l| l.n_in.checked_mul(l.n_out)?.checked_add(l.n_out)?.checked_add(acc))
}

/// Reads one float tensor as f32, checking dtype, shape and (for parameters) finiteness.
pub fn read_tensor(st: &SafeTensors, name: &str, shape: &[usize], allow_non_finite: bool) -> Result<Vec<f32>, ModelError> {
    let t = st.tensor(name).map_err(|_| ModelError::MissingTensor(name.into()))?;
    if t.shape() != shape {
        return Err(ModelError::Shape { name: name.into(), expected: shape.to_vec(), found: t.shape().to_vec() });
    }
    let values: Vec<f32> = match t.dtype() {
        Dtype::F32 => t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => t.data().chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        Dtype::BF16 => t.data().chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect(),
        other => return Err(ModelError::DType { name: name.into(), expected: "F32, F16 or BF16".into(), found: format!("{other:?}") }),
    };
    if !allow_non_finite {
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite { name: name.into(), index, value: values[index] });
        }
    }
    Ok(values)
}

fn read_embedding(st: &SafeTensors, latent: usize) -> Result<Embedding, ModelError> {
    let labels_view = st.tensor(EMBEDDING_LABEL).map_err(|_| ModelError::MissingTensor(EMBEDDING_LABEL.into()))?;
    if labels_view.dtype() != Dtype::U8 {
        return Err(ModelError::DType { name: EMBEDDING_LABEL.into(), expected: "U8".into(), found: format!("{:?}", labels_view.dtype()) });
    }
    if labels_view.shape().len() != 1 {
        return Err(ModelError::Shape {
            name: EMBEDDING_LABEL.into(),
            expected: vec![labels_view.data().len()],
            found: labels_view.shape().to_vec(),
        });
    }
    let labels = labels_view.data().to_vec();
    let mu = read_tensor(st, EMBEDDING_MU, &[labels.len(), latent], false)?;
    Ok(Embedding { mu, labels })
}

/// Rebuilds the architecture from tensor shapes, for files written by other tools (e.g. a
/// PyTorch `state_dict` saved with `safetensors.torch.save_file`) that carry no metadata: a VAE
/// when `encoder.logvar.weight` is there, else an autoencoder (both with BCE, as the default).
fn infer_architecture(st: &SafeTensors) -> Result<Architecture, ModelError> {
    let shape = |name: &str| st.tensor(name).ok().map(|t| t.shape().to_vec());
    let out_size = |prefix: &str| {
        let mut sizes = Vec::new();
        while let Some(s) = shape(&format!("{prefix}.{}.weight", sizes.len())) {
            sizes.push(s.first().copied().unwrap_or(0));
        }
        sizes
    };
    let mu = shape("encoder.mu.weight").ok_or_else(|| ModelError::MissingTensor("encoder.mu.weight".into()))?;
    let out = shape("decoder.out.weight").ok_or_else(|| ModelError::MissingTensor("decoder.out.weight".into()))?;
    if mu.len() != 2 || out.len() != 2 {
        return Err(ModelError::Metadata {
            key: "architecture".into(),
            reason: "absent, and the weight shapes are not [out, in] matrices to infer it from".into(),
        });
    }
    let mut arch = Architecture::mirrored(out[0], &out_size("encoder"), mu[0]);
    arch.decoder_hidden = out_size("decoder");
    if shape("encoder.logvar.weight").is_none() {
        arch.kind = ModelKind::Ae;
    }
    Ok(arch)
}

fn format_error(e: SafeTensorError, len: usize) -> ModelError {
    let what = match &e {
        SafeTensorError::HeaderTooSmall => format!("{len} bytes is too short for a safetensors header"),
        SafeTensorError::InvalidHeaderLength => {
            format!("the header length runs past the end of the {len}-byte file: truncated?")
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            format!("the tensors' data does not fill the {len}-byte file exactly: truncated or padded")
        }
        SafeTensorError::HeaderTooLarge => "the header length is absurdly large: not a safetensors file?".into(),
        other => other.to_string(),
    };
    ModelError::Format(what)
}

/// IEEE half to single precision.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise the mantissa.
            let shift = m.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((m << shift) & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Single to half precision, rounding to nearest even.
pub fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xff) as i32;
    let man = x & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rounded = (m + half - 1 + ((m >> shift) & 1)) >> shift;
        return sign | rounded as u16;
    }
    let rounded = man + 0xfff + ((man >> 13) & 1);
    if rounded & 0x80_0000 != 0 {
        // Mantissa overflowed into the exponent.
        let e = e + 1;
        if e >= 0x1f {
            return sign | 0x7c00;
        }
        return sign | ((e as u16) << 10);
    }
    sign | ((e as u16) << 10) | (rounded >> 13) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trips_representable_values_and_rounds_others_closely() {
        for v in [0.0f32, -0.0, 1.0, -2.5, 65504.0, 2f32.powi(-14), 2f32.powi(-24), 1365.0 / 4096.0] {
            assert_eq!(f16_to_f32(f32_to_f16(v)), v, "{v}");
        }
        for i in 0..1000 {
            let v = (i as f32 * 0.7311).sin() * 3.0;
            let back = f16_to_f32(f32_to_f16(v));
            assert!((back - v).abs() <= v.abs() * 4.9e-4 + 1e-7, "{v} -> {back}");
        }
        assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
        assert_eq!(f16_to_f32(f32_to_f16(1e6)), f32::INFINITY);
    }
}
