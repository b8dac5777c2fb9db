//! Analytic gradients of every parameter tensor against central finite differences of the
//! reference model's loss (`Vae::loss_terms`, an independent code path from the backprop), for
//! each hidden activation the architecture accepts. (Mixed per-layer activations, sigmoid
//! hidden layers included, are checked by a unit test in `crate/train/backprop.rs`.)

use latent_explorer::architecture::Activation;
use latent_explorer::train::backprop::{loss_and_grad, Workspace};
use latent_explorer::{Architecture, ModelKind, ReconstructionLoss, Vae};

/// Mean loss over the batch from the reference model, with the same noise as the backprop.
fn reference_loss(vae: &Vae, x: &[f32], beta: f64, seed: u32) -> f64 {
    let terms = vae.loss_terms(x, seed, 0).unwrap();
    terms.iter().map(|t| t.neg_elbo(beta)).sum::<f64>() / terms.len() as f64
}

fn check(arch: Architecture, beta: f32) {
    let seed = 11;
    let mut vae = Vae::init(arch.clone(), 5).unwrap();
    // Larger-than-default weights so every layer's gradient is far from zero.
    for p in vae.params_mut() {
        *p *= 2.0;
    }
    let rows = 4;
    let x: Vec<f32> = (0..rows * arch.input).map(|i| ((i * 37 % 101) as f32 / 100.0).clamp(0.0, 1.0)).collect();
    let mut grad = vec![0.0; vae.params().len()];
    let mut ws = Workspace::default();
    let sums = loss_and_grad(&vae, &x, beta, seed, 0, 1.0 / rows as f32, &mut grad, &mut ws);
    let base = reference_loss(&vae, &x, beta as f64, seed);
    let from_sums = (sums.reconstruction + beta as f64 * sums.kl) / rows as f64;
    assert!((base - from_sums).abs() < 1e-4 * base.abs(), "backprop loss {from_sums} vs reference {base}");

    let h = 2e-3f32;
    for (name, shape) in arch.tensor_shapes() {
        let i = arch.tensor_shapes().iter().position(|(n, _)| *n == name).unwrap();
        let start: usize = arch.tensor_shapes()[..i].iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        let len: usize = shape.iter().product();
        let (mut diff2, mut norm_a, mut norm_n) = (0.0f64, 0.0f64, 0.0f64);
        #[allow(clippy::needless_range_loop)] // j indexes the parameters and the gradient alike
        for j in start..start + len {
            let orig = vae.params()[j];
            vae.params_mut()[j] = orig + h;
            let up = reference_loss(&vae, &x, beta as f64, seed);
            vae.params_mut()[j] = orig - h;
            let down = reference_loss(&vae, &x, beta as f64, seed);
            vae.params_mut()[j] = orig;
            let numeric = (up - down) / (2.0 * h as f64);
            let analytic = grad[j] as f64;
            diff2 += (numeric - analytic).powi(2);
            norm_a += analytic * analytic;
            norm_n += numeric * numeric;
        }
        let rel = diff2.sqrt() / norm_a.sqrt().max(norm_n.sqrt()).max(1e-12);
        assert!(norm_a > 1e-10, "{name}: gradient is zero, the check would be vacuous");
        assert!(rel < 1e-3, "{name}: relative error {rel:.2e} (|analytic| {:.3e}, |numeric| {:.3e})", norm_a.sqrt(), norm_n.sqrt());
        eprintln!("{:?} {name:24} relative error {rel:.2e}", arch.hidden_activation);
    }
}

#[test]
fn gradients_of_every_tensor_match_finite_differences() {
    check(Architecture::mirrored(12, &[7, 5], 2), 1.0);
}

#[test]
fn gradients_match_with_a_weighted_kl_and_one_hidden_layer() {
    check(Architecture::mirrored(9, &[6], 3), 4.0);
}

#[test]
fn gradients_match_without_hidden_layers() {
    check(Architecture::mirrored(8, &[], 2), 0.5);
}

/// `mirrored(input, hidden, latent)` with linear hidden layers.
fn identity(input: usize, hidden: &[usize], latent: usize) -> Architecture {
    Architecture { hidden_activation: Activation::Identity, ..Architecture::mirrored(input, hidden, latent) }
}

#[test]
fn gradients_match_with_identity_hidden_layers() {
    check(identity(12, &[7, 5], 2), 1.0);
}

#[test]
fn gradients_match_with_one_identity_hidden_layer_and_a_weighted_kl() {
    check(identity(9, &[6], 3), 4.0);
}

/// `mirrored(input, hidden, latent)` as `kind` scored by `loss`.
fn of_kind(kind: ModelKind, loss: ReconstructionLoss, input: usize, hidden: &[usize], latent: usize) -> Architecture {
    Architecture { kind, loss, ..Architecture::mirrored(input, hidden, latent) }
}

#[test]
fn gradients_match_for_an_autoencoder_without_logvar_noise_or_kl() {
    // beta is ignored: an autoencoder has no KL (a stray KL gradient would fail the check).
    check(of_kind(ModelKind::Ae, ReconstructionLoss::Bce, 9, &[6], 3), 3.0);
    let linear =
        Architecture { hidden_activation: Activation::Identity, ..of_kind(ModelKind::Ae, ReconstructionLoss::Bce, 12, &[7, 5], 2) };
    check(linear, 3.0);
}

#[test]
fn gradients_match_for_squared_error_through_the_sigmoid() {
    check(of_kind(ModelKind::Vae, ReconstructionLoss::Mse, 12, &[7, 5], 2), 1.0);
    check(of_kind(ModelKind::Ae, ReconstructionLoss::Mse, 9, &[6], 3), 1.0);
}
