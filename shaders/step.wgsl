// The current training step, prepended to every training kernel that needs it. The trainer
// writes one `Step` per step of an epoch once (`steps`), and each step's last dispatch advances
// `cursor`, so a recorded step needs no upload: the step's batch, noise seed and Adam constants
// are all read from here. The layout is `crate/gpu/training/kernels.rs`'s `Step`.

struct Step {
    batch_start: u32, // where the batch starts in the epoch's permutation (also its first noise index)
    rows: u32,        // examples in the batch
    slot: u32,        // the step's number in the epoch: where its loss sums and finite flag go
    eps_seed: u32,    // the epoch's noise seed
    scale: f32,       // 1 / rows: the loss is the batch mean
    kl_scale: f32,    // beta / rows
    adam_step: f32,   // lr / (1 - beta1^t)
    adam_c2_sqrt: f32, // sqrt(1 - beta2^t)
    beta1: f32,
    beta2: f32,
    adam_eps: f32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read> steps: array<Step>;
@group(0) @binding(1) var<storage, read> cursor: array<u32>;

fn current() -> Step {
    return steps[cursor[0]];
}
