// A bias's gradient: the column sums of the layer's delta over the batch, written into the
// gradient buffer at the bias's offset.

struct Columns {
    rows: u32,
    cols: u32,
    src_off: u32,
    dst_off: u32,
}

@group(0) @binding(0) var<uniform> c: Columns;
@group(0) @binding(1) var<storage, read> delta: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;

override WORKGROUP: u32;

@compute @workgroup_size(WORKGROUP)
fn column_sums(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= c.cols) {
        return;
    }
    var sum = 0.0;
    for (var r = 0u; r < c.rows; r = r + 1u) {
        sum = sum + delta[c.src_off + r * c.cols + j];
    }
    grad[c.dst_off + j] = sum;
}
