//! The GPU engine's errors, and what each means for a caller that falls back to the CPU: kept
//! apart from the engine so that the wasm bindings and the page's wording can depend on the
//! causes without the machinery.

/// Why the GPU path is unavailable or failed. The caller can fall back to the CPU reference.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found ({0})")]
    NoAdapter(String),
    #[error("the GPU adapter refused a device: {0}")]
    RequestDevice(String),
    #[error("the GPU adapter cannot run this model: {0}")]
    Unsupported(String),
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("the GPU ran out of memory: {0}")]
    OutOfMemory(String),
    #[error("GPU validation error: {0}")]
    Validation(String),
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
    #[error("the canvas could not be drawn on: {0}")]
    Surface(String),
    #[error(transparent)]
    Input(#[from] crate::error::ModelError),
}

/// Why work runs on the CPU instead of the GPU: a stable code for the page to put into words
/// for people, while the technical detail (an error's text) travels beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackCause {
    /// The browser has no WebGPU at all (no `navigator.gpu`).
    NoWebGpu,
    /// WebGPU is there but offered no adapter.
    NoAdapter,
    /// The GPU device was lost and not replaced.
    DeviceLost,
    /// The CPU backend was asked for.
    RequestedCpu,
    /// Any other GPU failure: a refused device, out of memory, a validation error, ...
    GpuFailed,
    /// The GPU works, but the CPU decodes a point faster (a software adapter, say).
    CpuFaster,
}

impl FallbackCause {
    /// "no-webgpu", "no-adapter", "device-lost", "requested-cpu", "gpu-failed" or "cpu-faster".
    pub fn code(self) -> &'static str {
        match self {
            FallbackCause::NoWebGpu => "no-webgpu",
            FallbackCause::NoAdapter => "no-adapter",
            FallbackCause::DeviceLost => "device-lost",
            FallbackCause::RequestedCpu => "requested-cpu",
            FallbackCause::GpuFailed => "gpu-failed",
            FallbackCause::CpuFaster => "cpu-faster",
        }
    }
}

impl GpuError {
    /// What this error means for a caller that falls back to the CPU because of it.
    pub fn fallback_cause(&self) -> FallbackCause {
        match self {
            GpuError::NoAdapter(_) => FallbackCause::NoAdapter,
            GpuError::DeviceLost(_) => FallbackCause::DeviceLost,
            _ => FallbackCause::GpuFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_fallback_causes() {
        let cause = |e: GpuError| e.fallback_cause().code();
        assert_eq!(cause(GpuError::NoAdapter("noop support not compiled in".into())), "no-adapter");
        assert_eq!(cause(GpuError::DeviceLost("Destroyed".into())), "device-lost");
        for e in [
            GpuError::RequestDevice("x".into()),
            GpuError::Unsupported("x".into()),
            GpuError::OutOfMemory("x".into()),
            GpuError::Validation("x".into()),
            GpuError::Readback("x".into()),
            GpuError::Surface("x".into()),
        ] {
            assert_eq!(cause(e), "gpu-failed");
        }
        use FallbackCause::*;
        let codes = [NoWebGpu, NoAdapter, DeviceLost, RequestedCpu, GpuFailed, CpuFaster].map(FallbackCause::code);
        assert_eq!(codes, ["no-webgpu", "no-adapter", "device-lost", "requested-cpu", "gpu-failed", "cpu-faster"]);
    }
}
