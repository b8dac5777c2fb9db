//! The choice between the backends, kept pure so it can be tested without a GPU: which one was
//! asked for, the clock the timings are taken with, and the verdict of a race of single-point
//! decodes (medians, the CPU only when strictly faster).

use std::rc::Rc;

/// Untimed decodes on each backend before the timed ones (shader and cache warm-up).
pub const RACE_WARMUP: usize = 2;
/// Timed single-point decodes on each backend; their medians are compared.
pub const RACE_SAMPLES: usize = 5;

/// Which backend was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// The GPU if there is one and it decodes a point faster than the CPU.
    Auto,
    /// The GPU whenever there is one, untimed (the CPU only if it cannot be had or fails).
    Gpu,
    /// The CPU reference; no GPU device is opened.
    Cpu,
}

impl Preference {
    /// The page's `?backend=` and the CLI's `--backend`: "cpu", "gpu" or "webgpu"; anything
    /// else (absent, "auto") lets the timing decide.
    pub fn from_name(name: &str) -> Self {
        match name {
            "cpu" => Preference::Cpu,
            "gpu" | "webgpu" => Preference::Gpu,
            _ => Preference::Auto,
        }
    }
}

/// Milliseconds since any fixed origin. Injected because `std::time::Instant` panics on wasm32
/// (the page passes `performance.now()`), and so that tests can make either backend look faster.
pub type Clock = Rc<dyn Fn() -> f64>;

/// The native clock: milliseconds since its creation.
#[cfg(not(target_arch = "wasm32"))]
pub fn system_clock() -> Clock {
    let start = std::time::Instant::now();
    Rc::new(move || start.elapsed().as_secs_f64() * 1e3)
}

/// The medians of the timed single-point decodes on each backend, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Race {
    pub gpu_ms: f64,
    pub cpu_ms: f64,
}

/// The median of `samples`; `None` when there are none or any is not a number.
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mid = s.len() / 2;
    Some(if s.len() % 2 == 1 { s[mid] } else { (s[mid - 1] + s[mid]) / 2.0 })
}

impl Race {
    /// The race from each backend's timings; `None` when either cannot be judged (no samples,
    /// or not finite numbers), and then the GPU is kept.
    pub fn from_samples(gpu: &[f64], cpu: &[f64]) -> Option<Race> {
        let (gpu_ms, cpu_ms) = (median(gpu)?, median(cpu)?);
        (gpu_ms.is_finite() && cpu_ms.is_finite()).then_some(Race { gpu_ms, cpu_ms })
    }

    /// Whether the CPU wins: strictly faster. A tie keeps the GPU, which leaves the page's
    /// thread free while it works.
    pub fn cpu_wins(&self) -> bool {
        self.cpu_ms < self.gpu_ms
    }

    /// The technical detail of a [`FallbackCause::CpuFaster`](crate::gpu::FallbackCause::CpuFaster) verdict, naming the adapter.
    pub fn detail(&self, adapter: &str) -> String {
        format!("the GPU adapter ({adapter}) decoded a digit in {:.1} ms, the CPU in {:.1} ms", self.gpu_ms, self.cpu_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts_and_nothing_to_judge() {
        assert_eq!(median(&[3.0, 1.0, 70.0, 2.0, 4.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN, 2.0]), None);
    }

    #[test]
    fn the_faster_median_wins_and_a_tie_keeps_the_gpu() {
        // One slow outlier on each side does not decide it: medians do.
        let swiftshader = Race::from_samples(&[70.2, 68.0, 71.0, 300.0, 69.5], &[3.9, 4.1, 3.8, 40.0, 3.9]).unwrap();
        assert_eq!(swiftshader, Race { gpu_ms: 70.2, cpu_ms: 3.9 });
        assert!(swiftshader.cpu_wins());
        let real_gpu = Race::from_samples(&[0.4, 0.5, 9.0], &[1.2, 0.1, 1.3]).unwrap();
        assert!(!real_gpu.cpu_wins());
        assert!(!Race { gpu_ms: 2.0, cpu_ms: 2.0 }.cpu_wins());
    }

    #[test]
    fn without_timings_there_is_no_verdict() {
        assert_eq!(Race::from_samples(&[], &[1.0]), None);
        assert_eq!(Race::from_samples(&[1.0], &[f64::INFINITY]), None);
        assert_eq!(Race::from_samples(&[f64::NAN], &[1.0]), None);
    }

    #[test]
    fn the_detail_names_the_adapter_and_both_times() {
        let r = Race { gpu_ms: 70.23, cpu_ms: 3.94 };
        assert_eq!(
            r.detail("SwiftShader Device (Subzero) (WebGPU)"),
            "the GPU adapter (SwiftShader Device (Subzero) (WebGPU)) decoded a digit in 70.2 ms, the CPU in 3.9 ms"
        );
    }

    #[test]
    fn backend_names_map_to_preferences() {
        assert_eq!(Preference::from_name("cpu"), Preference::Cpu);
        assert_eq!(Preference::from_name("webgpu"), Preference::Gpu);
        assert_eq!(Preference::from_name("gpu"), Preference::Gpu);
        assert_eq!(Preference::from_name(""), Preference::Auto);
        assert_eq!(Preference::from_name("auto"), Preference::Auto);
    }
}
