// The last dispatch of a training step: moves the step cursor (step.wgsl) to the next step.

@group(0) @binding(0) var<storage, read_write> cursor: array<u32>;

@compute @workgroup_size(1)
fn advance() {
    cursor[0] = cursor[0] + 1u;
}
