// The reconstruction loss of each example and its gradient with respect to the output layer's
// pre-activation (in place over the logits), then the step's loss sums. BCE from logits as in
// `loss::bce_and_grad` (max(l, 0) - l t + ln(1 + exp(-|l|)), gradient sigmoid(l) - t), or squared
// error through the output's activation as in `loss::mse_rows_and_grad`. One workgroup per row.

struct LossParams {
    pixels: u32,
    loss: u32,    // LOSS_BCE or anything else for squared error
    out_act: u32, // the output layer's activation code (squared error goes through it)
    rows: u32,
}

@group(0) @binding(2) var<uniform> p: LossParams;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;
@group(0) @binding(5) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(6) var<storage, read> row_kl: array<f32>;
@group(0) @binding(7) var<storage, read_write> step_loss: array<vec2<f32>>;

override LOSS_BCE: u32;
override ACT_SIGMOID: u32;

var<workgroup> partial: array<f32, 64>;

// The sum of `v` over the workgroup's 64 invocations, for every invocation (a tree in `partial`).
fn workgroup_sum(lane: u32, v: f32) -> f32 {
    workgroupBarrier();
    partial[lane] = v;
    for (var w = 32u; w > 0u; w = w / 2u) {
        workgroupBarrier();
        if (lane < w) {
            partial[lane] = partial[lane] + partial[lane + w];
        }
    }
    workgroupBarrier();
    return partial[0];
}

fn sigmoid_and_exp(l: f32) -> vec2<f32> {
    let e = exp(-abs(l));
    let inv = 1.0 / (1.0 + e);
    return vec2<f32>(select(e * inv, inv, l >= 0.0), e);
}

@compute @workgroup_size(64)
fn reconstruction(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let s = current();
    let r = wg.x;
    var sum = 0.0;
    for (var k = lid.x; k < p.pixels; k = k + 64u) {
        let i = r * p.pixels + k;
        let l = logits[i];
        let t = x[i];
        let se = sigmoid_and_exp(l);
        if (p.loss == LOSS_BCE) {
            let e = se.y;
            let q = e / (2.0 + e); // ln(1 + e) = 2 atanh(q)
            sum = sum + (max(l, 0.0) - l * t + 2.0 * q * atanh_series(q * q));
            logits[i] = (se.x - t) * s.scale;
        } else {
            var out = l;
            var slope = 1.0;
            if (p.out_act == ACT_SIGMOID) {
                out = se.x;
                slope = out * (1.0 - out);
            }
            let d = out - t;
            sum = sum + d * d;
            logits[i] = s.scale * 2.0 * d * slope;
        }
    }
    let total = workgroup_sum(lid.x, sum);
    if (lid.x == 0u) {
        row_loss[r] = total;
    }
}

// The step's sums over its rows (reconstruction, KL), into its slot: read back every few steps.
@compute @workgroup_size(64)
fn step_sums(@builtin(local_invocation_id) lid: vec3<u32>) {
    let s = current();
    var rec = 0.0;
    var kl = 0.0;
    for (var r = lid.x; r < p.rows; r = r + 64u) {
        rec = rec + row_loss[r];
        kl = kl + row_kl[r];
    }
    let rec_total = workgroup_sum(lid.x, rec);
    let kl_total = workgroup_sum(lid.x, kl);
    if (lid.x == 0u) {
        step_loss[s.slot] = vec2<f32>(rec_total, kl_total);
    }
}
