//! The dense layer y = act(x W^T + b) (`shaders/dense.wgsl`), the one kernel both networks are
//! chains of: packing a layer's weights the way the kernel reads them (a pure function, tested
//! on the CPU), uploading them, and recording a chain of layers into a compute pass.

use crate::architecture::{Activation, Architecture};
use crate::model::Vae;

use super::device::{Gpu, WORKGROUP};
use super::dispatch::Dispatch;
use super::error::GpuError;
use super::matmul::{act_code, Matmul, MatmulKernel, Product, Strided};

const DENSE_WGSL: &str = include_str!("../../shaders/dense.wgsl");

/// Batch rows per invocation: the shader's `ROWS` (its body keeps one accumulator per row).
pub(super) const ROWS: usize = 4;

/// Rows from which a chain runs on the tiled product (`matmul.wgsl`) where the engine uses it:
/// one 64-row tile. Below, the dense kernel's 4-row invocations waste less (the drag path is 1).
pub(super) const TILED_FROM_ROWS: usize = 64;

/// The values of `dense.wgsl`'s pipeline-overridable constants. The shader gives them no
/// defaults, so the pipeline fails to build unless every one it uses is here (identity is any
/// code other than relu's and sigmoid's, so the shader needs no constant for it).
pub(super) const CONSTANTS: [(&str, f64); 4] = [
    ("ROWS", ROWS as f64),
    ("WORKGROUP", WORKGROUP as f64),
    ("ACT_RELU", act_code(Activation::Relu) as f64),
    ("ACT_SIGMOID", act_code(Activation::Sigmoid) as f64),
];

/// A layer's weights as the kernel reads them, before upload.
#[derive(Debug, PartialEq)]
pub(super) struct PackedLayer {
    pub name: String,
    pub n_in: usize,
    pub n_out: usize,
    pub act: Activation,
    /// W^T: `n_in` rows of `width()` values (the outputs, then zeros up to whole vec4s).
    pub wt: Vec<f32>,
    /// `width()` values: the bias, then zeros.
    pub bias: Vec<f32>,
}

impl PackedLayer {
    /// Outputs per row rounded up to a multiple of 4: the padded row width of the layer's output.
    pub fn width(&self) -> usize {
        self.n_out.div_ceil(4) * 4
    }
}

/// Packs `heads` (each a weight matrix W [out, in], row-major, with its bias [out]) as one layer
/// whose outputs are the heads' outputs one after another: W [out, in] becomes W^T [in, out]
/// with each row padded to whole vec4 columns, and the bias is padded likewise, with zeros.
pub(super) fn pack(name: &str, heads: &[(&[f32], &[f32])], n_in: usize, act: Activation) -> PackedLayer {
    let n_out: usize = heads.iter().map(|(_, b)| b.len()).sum();
    let width = n_out.div_ceil(4) * 4;
    let mut wt = vec![0.0f32; n_in * width];
    let mut bias = vec![0.0f32; width];
    let mut o = 0;
    for (w, b) in heads {
        debug_assert_eq!(w.len(), b.len() * n_in, "{name}: weights are not [out, in]");
        for (r, &bv) in b.iter().enumerate() {
            for k in 0..n_in {
                wt[k * width + o + r] = w[r * n_in + k];
            }
            bias[o + r] = bv;
        }
        o += b.len();
    }
    PackedLayer { name: name.to_string(), n_in, n_out, act, wt, bias }
}

/// The encoder (its hidden layers, then the heads stacked as one layer whose outputs are
/// [mu | logvar], or [mu] alone for a deterministic kind) and the decoder of `vae`, packed.
pub(super) fn pack_vae(vae: &Vae) -> (Vec<PackedLayer>, Vec<PackedLayer>) {
    let lay = vae.layout();
    let plain = |&i: &usize| {
        let (l, w, b) = vae.layer(i);
        pack(&l.name, &[(w, b)], l.n_in, l.activation)
    };
    let mut encoder: Vec<PackedLayer> = lay.encoder.iter().map(plain).collect();
    let (mu_spec, mu_w, mu_b) = vae.layer(lay.mu);
    let mut heads = vec![(mu_w, mu_b)];
    if let Some(lv) = lay.logvar {
        let (_, lv_w, lv_b) = vae.layer(lv);
        heads.push((lv_w, lv_b));
    }
    encoder.push(pack("encoder.heads", &heads, mu_spec.n_in, Activation::Identity));
    (encoder, lay.decoder.iter().map(plain).collect())
}

/// Writes `vae`'s weights into the uploaded layers of a model of architecture `arch`.
pub(super) fn write_vae(gpu: &Gpu, arch: &Architecture, encoder: &[GpuLayer], decoder: &[GpuLayer], vae: &Vae) -> Result<(), GpuError> {
    if vae.arch() != arch {
        return Err(GpuError::Unsupported("the new weights are of another architecture than the engine's model".into()));
    }
    let (enc, dec) = pack_vae(vae);
    encoder.iter().zip(&enc).chain(decoder.iter().zip(&dec)).try_for_each(|(layer, packed)| layer.write(gpu, packed))
}

/// A packed layer uploaded to the device.
pub(super) struct GpuLayer {
    wt: wgpu::Buffer,
    bias: wgpu::Buffer,
    n_in: usize,
    n_out: usize,
    act: Activation,
}

impl GpuLayer {
    pub(super) fn upload(gpu: &Gpu, layer: &PackedLayer) -> Self {
        // COPY_DST: [`GpuLayer::write`] replaces the weights of a model being trained.
        let (label, usage) = (layer.name.as_str(), wgpu::BufferUsages::COPY_DST);
        let (wt, bias) = (gpu.upload(label, &layer.wt, usage), gpu.upload(label, &layer.bias, usage));
        GpuLayer { wt, bias, n_in: layer.n_in, n_out: layer.n_out, act: layer.act }
    }

    /// Writes new values of the same shape into the layer's buffers.
    pub(super) fn write(&self, gpu: &Gpu, layer: &PackedLayer) -> Result<(), GpuError> {
        if (layer.n_in, layer.n_out) != (self.n_in, self.n_out) || layer.act != self.act {
            return Err(GpuError::Unsupported(format!("{}: a layer of another shape cannot replace this one", layer.name)));
        }
        gpu.queue.write_buffer(&self.wt, 0, bytemuck::cast_slice(&layer.wt));
        gpu.queue.write_buffer(&self.bias, 0, bytemuck::cast_slice(&layer.bias));
        Ok(())
    }

    fn n_out4(&self) -> usize {
        self.n_out.div_ceil(4)
    }

    /// Floats per output row: the outputs padded to whole vec4s.
    pub(super) fn stride(&self) -> usize {
        self.n_out4() * 4
    }
}

/// The shader's `Dims` uniform.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DenseDims {
    rows: u32,
    n_in: u32,
    n_out4: u32,
    in_stride: u32,
    out_stride4: u32,
    act: u32,
}

/// The dense kernel's pipeline, and the product that takes over large batches on GPUs.
pub(super) struct Dense {
    pipeline: wgpu::ComputePipeline,
    /// The tiled product, where the engine uses it (GPUs; CPU drivers keep the dense kernel,
    /// which is their fast one).
    tiled: Option<Matmul>,
}

impl Dense {
    /// Builds the pipelines (inside the caller's error scope: a failure shows there).
    pub(super) fn new(gpu: &Gpu, kernel: MatmulKernel) -> Self {
        let tiled = (kernel == MatmulKernel::Tiled).then(|| Matmul::new(gpu, MatmulKernel::Tiled));
        Dense { pipeline: gpu.compute_pipeline(DENSE_WGSL, "dense", &CONSTANTS), tiled }
    }

    /// Records a chain of dense layers over the `rows` rows of `x` (row stride `in_stride`) into
    /// a pass; returns the new buffer the last layer writes (`rows` rows of its padded width).
    pub(super) fn record_chain(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        layers: &[GpuLayer],
        x: &wgpu::Buffer,
        in_stride: usize,
        rows: usize,
    ) -> wgpu::Buffer {
        let chain = self.prepare_chain(gpu, layers, x, in_stride, rows);
        self.record(pass, &chain);
        chain.output
    }

    /// Everything a chain over `x` needs (activation buffers, uniforms, bind groups), made once:
    /// the drag path records the same chain for every digit without allocating.
    pub(super) fn prepare_chain(&self, gpu: &Gpu, layers: &[GpuLayer], x: &wgpu::Buffer, in_stride: usize, rows: usize) -> Chain {
        let layout = self.pipeline.get_bind_group_layout(0);
        let mut input = (x.clone(), in_stride);
        let mut steps = Vec::with_capacity(layers.len());
        for (li, l) in layers.iter().enumerate() {
            let last = li + 1 == layers.len();
            let width = l.stride();
            let extra = if last { wgpu::BufferUsages::COPY_SRC } else { wgpu::BufferUsages::empty() };
            let y = gpu.storage(if last { "output" } else { "activations" }, rows * width, extra);
            let dims = DenseDims {
                rows: rows as u32,
                n_in: l.n_in as u32,
                n_out4: l.n_out4() as u32,
                in_stride: input.1 as u32,
                out_stride4: l.n_out4() as u32,
                act: act_code(l.act),
            };
            if let Some(mm) = self.tiled.as_ref().filter(|_| rows >= TILED_FROM_ROWS) {
                // The same layout: W^T rows of `width`, the padded bias, rows of `width` out.
                steps.push(mm.prepare(
                    gpu,
                    &Product {
                        m: rows,
                        n: l.n_out,
                        k: l.n_in,
                        a: Strided::rows(&input.0, 0, input.1),
                        b: Strided::rows(&l.wt, 0, width),
                        c: Strided::rows(&y, 0, width),
                        accumulate: false,
                        bias: Some((&l.bias, 0)),
                        act: l.act,
                        act_back: None,
                    },
                ));
                input = (y, width);
                continue;
            }
            let uniform = gpu.uniform("dims", &dims);
            let bind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("dense"),
                layout: &layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: input.0.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: l.wt.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: l.bias.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 4, resource: y.as_entire_binding() },
                ],
            });
            let groups = [l.n_out4().div_ceil(WORKGROUP as usize) as u32, rows.div_ceil(ROWS) as u32, 1];
            steps.push(Dispatch { pipeline: self.pipeline.clone(), bind, groups });
            input = (y, width);
        }
        Chain { steps, output: input.0 }
    }

    /// Records a prepared chain into a pass.
    pub(super) fn record(&self, pass: &mut wgpu::ComputePass<'_>, chain: &Chain) {
        chain.steps.iter().for_each(|d| d.record(pass));
    }
}

/// A chain of layers ready to record: each layer's dispatch, and the buffer the last layer writes.
pub(super) struct Chain {
    steps: Vec<Dispatch>,
    pub output: wgpu::Buffer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sizes_are_transposed_and_padded_with_zeros() {
        // W [3 out, 2 in] = [[1, 2], [3, 4], [5, 6]]: W^T rows of 4 (3 outputs + 1 zero).
        let p = pack("l", &[(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[0.5, 0.25, 0.125])], 2, Activation::Relu);
        assert_eq!((p.n_in, p.n_out, p.width(), p.act), (2, 3, 4, Activation::Relu));
        assert_eq!(p.wt, [1.0, 3.0, 5.0, 0.0, 2.0, 4.0, 6.0, 0.0]);
        assert_eq!(p.bias, [0.5, 0.25, 0.125, 0.0]);
    }

    #[test]
    fn whole_vec4_widths_get_no_padding() {
        let w: Vec<f32> = (0..12).map(|v| v as f32).collect(); // [4 out, 3 in]
        let p = pack("l", &[(&w, &[1.0; 4])], 3, Activation::Identity);
        assert_eq!(p.width(), 4);
        assert_eq!(p.wt, [0.0, 3.0, 6.0, 9.0, 1.0, 4.0, 7.0, 10.0, 2.0, 5.0, 8.0, 11.0]);
        assert_eq!(p.bias, [1.0; 4]);
    }

    #[test]
    fn stacked_heads_put_mu_then_logvar_in_one_padded_row() {
        // mu and logvar heads of 3 outputs each over 1 input: 6 outputs, padded to 8.
        let mu: (&[f32], &[f32]) = (&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]);
        let lv: (&[f32], &[f32]) = (&[-1.0, -2.0, -3.0], &[-10.0, -20.0, -30.0]);
        let p = pack("heads", &[mu, lv], 1, Activation::Identity);
        assert_eq!((p.n_out, p.width()), (6, 8));
        assert_eq!(p.wt, [1.0, 2.0, 3.0, -1.0, -2.0, -3.0, 0.0, 0.0]);
        assert_eq!(p.bias, [10.0, 20.0, 30.0, -10.0, -20.0, -30.0, 0.0, 0.0]);
    }

    #[test]
    fn a_packed_model_keeps_every_weight_where_the_kernel_reads_it() {
        // The odd-width model of tests/gpu.rs: 25-13-7-(3), no width a multiple of 4.
        let vae = Vae::init(crate::Architecture::mirrored(25, &[13, 7], 3), 5).unwrap();
        let (encoder, decoder) = pack_vae(&vae);
        let shapes = |ls: &[PackedLayer]| ls.iter().map(|l| (l.n_in, l.n_out, l.width())).collect::<Vec<_>>();
        assert_eq!(shapes(&encoder), [(25, 13, 16), (13, 7, 8), (7, 6, 8)]);
        assert_eq!(shapes(&decoder), [(3, 7, 8), (7, 13, 16), (13, 25, 28)]);
        assert_eq!(decoder.last().map(|l| l.act), Some(Activation::Sigmoid));
        let lay = vae.layout();
        let (_, w, b) = vae.layer(lay.decoder[2]);
        let last = &decoder[2];
        for o in 0..28 {
            for k in 0..13 {
                let want = if o < 25 { w[o * 13 + k] } else { 0.0 };
                assert_eq!(last.wt[k * 28 + o], want, "W^T[{k}][{o}]");
            }
            assert_eq!(last.bias[o], if o < 25 { b[o] } else { 0.0 });
        }
        let (_, lv_w, _) = vae.layer(lay.logvar.expect("a VAE has a logvar head"));
        assert_eq!(encoder[2].wt[3 + 2], lv_w[2 * 7]); // logvar output 2, input 0: after mu's 3
    }

    #[test]
    fn deterministic_kinds_pack_the_mean_head_alone() {
        use crate::architecture::ModelKind;
        let ae = Vae::init(crate::Architecture { kind: ModelKind::Ae, ..crate::Architecture::mirrored(25, &[13], 3) }, 5).unwrap();
        let (encoder, _) = pack_vae(&ae);
        let (_, mu_w, mu_b) = ae.layer(ae.layout().mu);
        assert_eq!(encoder.last(), Some(&pack("encoder.heads", &[(mu_w, mu_b)], 13, Activation::Identity)));
        let pca = Vae::init(crate::Architecture::pca(25, 3), 5).unwrap();
        let (encoder, decoder) = pack_vae(&pca);
        let shapes = |ls: &[PackedLayer]| ls.iter().map(|l| (l.n_in, l.n_out, l.act)).collect::<Vec<_>>();
        assert_eq!(shapes(&encoder), [(25, 3, Activation::Identity)]);
        assert_eq!(shapes(&decoder), [(3, 25, Activation::Identity)]);
    }

    #[test]
    fn the_shader_declares_the_constants_rust_gives_it() {
        crate::gpu::device::assert_overrides_match(DENSE_WGSL, &CONSTANTS);
    }

    #[test]
    fn activation_codes_are_distinct() {
        let codes = [Activation::Identity, Activation::Relu, Activation::Sigmoid].map(act_code);
        assert!(codes[0] != codes[1] && codes[1] != codes[2] && codes[0] != codes[2]);
    }
}
