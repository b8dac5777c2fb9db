//! Fuzz target: see `checks::checkpoint` (shared with the stable tests in tests/robustness.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::checkpoint(data);
});
