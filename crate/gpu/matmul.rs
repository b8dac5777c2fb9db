//! The strided matrix product with an epilogue (`shaders/matmul.wgsl`): every dense-layer product
//! of training (forward, backward, weight gradient) and of large-batch decoding on GPUs. Two
//! kernels: tiled in workgroup memory, and blocked without barriers.

use crate::architecture::Activation;

use super::device::{Gpu, WORKGROUP};
use super::dispatch::{bind_whole, Dispatch};

/// The product with the activations it applies prepended.
const MATMUL_WGSL: &str = concat!(include_str!("../../shaders/activation.wgsl"), include_str!("../../shaders/matmul.wgsl"));

/// An activation's code in `matmul.wgsl`'s `act` and `act_back`, `latent.wgsl`'s and `dense.wgsl`'s
/// `act`: the shaders compare it with their `ACT_*`.
pub(super) const fn act_code(a: Activation) -> u32 {
    match a {
        Activation::Identity => 0,
        Activation::Relu => 1,
        Activation::Sigmoid => 2,
    }
}

/// The values of `matmul.wgsl`'s pipeline-overridable constants (it gives them no defaults).
pub(super) const CONSTANTS: [(&str, f64); 5] = [
    ("ACT_RELU", act_code(Activation::Relu) as f64),
    ("ACT_SIGMOID", act_code(Activation::Sigmoid) as f64),
    ("WORKGROUP", WORKGROUP as f64),
    ("VEC_K", VEC_K as f64),
    ("VEC_MN", VEC_MN as f64),
];

/// How the tiled kernel reads an operand (`Dims::a_vec`, `b_vec`): vec4s of 4 consecutive k, vec4s
/// of 4 consecutive rows of A or columns of B, or (any other code) scalars.
const VEC_K: u32 = 1;
const VEC_MN: u32 = 2;
const SCALAR: u32 = 0;

/// How the tiled kernel reads A (i, k): vec4s along k where k is contiguous, along i where i is,
/// when every vec4 starts at a multiple of 4 floats and none straddles the matrix's edge.
fn a_mode(p: &Product<'_>) -> u32 {
    let a = &p.a;
    if !a.off.is_multiple_of(4) {
        SCALAR
    } else if a.inner == 1 && a.outer.is_multiple_of(4) && p.k.is_multiple_of(4) {
        VEC_K
    } else if a.outer == 1 && a.inner.is_multiple_of(4) && p.m.is_multiple_of(4) {
        VEC_MN
    } else {
        SCALAR
    }
}

/// How the tiled kernel reads B (k, j), as [`a_mode`].
fn b_mode(p: &Product<'_>) -> u32 {
    let b = &p.b;
    if !b.off.is_multiple_of(4) {
        SCALAR
    } else if b.outer == 1 && b.inner.is_multiple_of(4) && p.k.is_multiple_of(4) {
        VEC_K
    } else if b.inner == 1 && b.outer.is_multiple_of(4) && p.n.is_multiple_of(4) {
        VEC_MN
    } else {
        SCALAR
    }
}

/// Which product kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKernel {
    /// 64x64 tiles in workgroup memory, 4x4 outputs per invocation: for GPUs, and the trainer's
    /// default on every adapter.
    Tiled,
    /// Without workgroup memory or barriers: `matmul_blocked` for the trainer, the dense layer
    /// kernel (`dense.wgsl`) for the engine's decoding and encoding.
    Blocked,
}

impl MatmulKernel {
    /// The engine's kernel for large batches: tiled on GPUs, the dense kernel on CPU drivers.
    /// Measured on lavapipe (2 cores, `manifold --bench`): 4096 points decode in 753 ms on the
    /// dense kernel and 1279 ms tiled (the same at 64 and 1024 points).
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        if info.device_type == wgpu::DeviceType::Cpu {
            MatmulKernel::Blocked
        } else {
            MatmulKernel::Tiled
        }
    }
}

/// The shader's `Dims` uniform (padded to a multiple of 16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    a_si: u32,
    a_sk: u32,
    b_off: u32,
    b_sk: u32,
    b_sj: u32,
    c_off: u32,
    c_si: u32,
    bias_off: u32,
    accumulate: u32,
    bias: u32,
    act: u32,
    act_back: u32,
    aux_off: u32,
    aux_si: u32,
    a_vec: u32,
    b_vec: u32,
}

/// A matrix inside a buffer: element (r, s) at `off + r * outer + s * inner` (floats).
#[derive(Clone, Copy)]
pub(super) struct Strided<'a> {
    pub buf: &'a wgpu::Buffer,
    pub off: usize,
    pub outer: usize,
    pub inner: usize,
}

impl<'a> Strided<'a> {
    /// A row-major matrix with rows of `width` floats from `off`.
    pub fn rows(buf: &'a wgpu::Buffer, off: usize, width: usize) -> Self {
        Strided { buf, off, outer: width, inner: 1 }
    }

    /// The transpose of a row-major matrix with rows of `width` floats from `off`.
    pub fn cols(buf: &'a wgpu::Buffer, off: usize, width: usize) -> Self {
        Strided { buf, off, outer: 1, inner: width }
    }
}

/// One product C (m x n) = A (m x k) B (k x n) and its epilogue.
pub(super) struct Product<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Strided<'a>,
    pub b: Strided<'a>,
    /// Row-major output (its `inner` is ignored: columns are contiguous).
    pub c: Strided<'a>,
    /// Add C's old value.
    pub accumulate: bool,
    /// Add bias[off + j] (a buffer and offset), then apply `act`.
    pub bias: Option<(&'a wgpu::Buffer, usize)>,
    pub act: Activation,
    /// Multiply by this activation's slope at the layer output `aux` (row-major, same shape as C).
    pub act_back: Option<(Activation, Strided<'a>)>,
}

/// The two product pipelines and the kernel in use.
pub(super) struct Matmul {
    tiled: wgpu::ComputePipeline,
    blocked: wgpu::ComputePipeline,
    pub kernel: MatmulKernel,
    /// Bound where a product has no bias or no aux (bindings cannot be empty).
    dummy: wgpu::Buffer,
}

impl Matmul {
    /// Builds both pipelines (inside the caller's error scope: a failure shows there).
    pub fn new(gpu: &Gpu, kernel: MatmulKernel) -> Self {
        Matmul {
            tiled: gpu.compute_pipeline(MATMUL_WGSL, "matmul_tiled", &CONSTANTS),
            blocked: gpu.compute_pipeline(MATMUL_WGSL, "matmul_blocked", &CONSTANTS),
            kernel,
            dummy: gpu.storage("matmul.none", 4, wgpu::BufferUsages::empty()),
        }
    }

    /// The dispatch of product `p`, made once: its uniform, bind group and grid.
    pub fn prepare(&self, gpu: &Gpu, p: &Product<'_>) -> Dispatch {
        let u = |v: usize| u32::try_from(v).expect("GPU offsets and sizes fit 32 bits");
        let (bias_buf, bias_off) = p.bias.unwrap_or((&self.dummy, 0));
        let (act_back, aux) = match &p.act_back {
            Some((act, aux)) => (*act, *aux),
            None => (Activation::Identity, Strided::rows(&self.dummy, 0, 0)),
        };
        let dims = Dims {
            m: u(p.m),
            n: u(p.n),
            k: u(p.k),
            a_off: u(p.a.off),
            a_si: u(p.a.outer),
            a_sk: u(p.a.inner),
            b_off: u(p.b.off),
            b_sk: u(p.b.outer),
            b_sj: u(p.b.inner),
            c_off: u(p.c.off),
            c_si: u(p.c.outer),
            bias_off: u(bias_off),
            accumulate: u32::from(p.accumulate),
            bias: u32::from(p.bias.is_some()),
            act: act_code(if p.bias.is_some() { p.act } else { Activation::Identity }),
            act_back: act_code(act_back),
            aux_off: u(aux.off),
            aux_si: u(aux.outer),
            a_vec: a_mode(p),
            b_vec: b_mode(p),
        };
        let uniform = gpu.uniform("matmul.dims", &dims);
        let pipeline = match self.kernel {
            MatmulKernel::Tiled => &self.tiled,
            MatmulKernel::Blocked => &self.blocked,
        };
        let buffers = [&uniform, p.a.buf, p.b.buf, bias_buf, aux.buf, p.c.buf, p.a.buf, p.b.buf];
        // The tiled kernel also reads A and B as vec4s (bindings 6 and 7); the blocked one does not.
        let bound = if self.kernel == MatmulKernel::Tiled { &buffers[..] } else { &buffers[..6] };
        let bind = bind_whole(&gpu.device, "matmul", pipeline, bound);
        let groups = match self.kernel {
            MatmulKernel::Tiled => [u(p.n.div_ceil(64)), u(p.m.div_ceil(64)), 1],
            MatmulKernel::Blocked => [u(p.n.div_ceil(4).div_ceil(WORKGROUP as usize)), u(p.m.div_ceil(4)), 1],
        };
        Dispatch { pipeline: pipeline.clone(), bind, groups }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shader_declares_the_constants_rust_gives_it() {
        crate::gpu::device::assert_overrides_match(MATMUL_WGSL, &CONSTANTS);
    }

    #[test]
    fn the_dims_uniform_is_a_whole_number_of_16_byte_rows() {
        assert_eq!(std::mem::size_of::<Dims>() % 16, 0);
    }
}
