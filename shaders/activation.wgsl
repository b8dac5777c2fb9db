// The activations of the training kernels, prepended to `matmul.wgsl` and `latent.wgsl`: the
// forward function and its slope from the output (the ReLU mask, the sigmoid's o (1 - o)).
// The codes are set from Rust (`gpu::dense::act_code`), with no defaults; any other is identity.
override ACT_RELU: u32;
override ACT_SIGMOID: u32;

fn activate(v: f32, code: u32) -> f32 {
    if (code == ACT_RELU) {
        return max(v, 0.0);
    }
    if (code == ACT_SIGMOID) {
        return 1.0 / (1.0 + exp(-v));
    }
    return v;
}

// The activation's derivative, from its output o.
fn slope(o: f32, code: u32) -> f32 {
    if (code == ACT_RELU) {
        return select(0.0, 1.0, o > 0.0);
    }
    if (code == ACT_SIGMOID) {
        return o * (1.0 - o);
    }
    return 1.0;
}
