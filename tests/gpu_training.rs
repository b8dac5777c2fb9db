//! The GPU trainer against the CPU reference, on whatever adapter wgpu finds (lavapipe without a
//! GPU): one step's gradient tensor by tensor, fifty steps of Adam, resuming across backends, and
//! divergence. The llm.c habit: every tensor is checked, not just the loss.

mod common;

use std::sync::atomic::AtomicBool;

use common::assert_tensors_close;
use latent_explorer::dataset::{to_intensities, Dataset};
use latent_explorer::gpu::training::TrainerOptions;
use latent_explorer::gpu::MatmulKernel;
use latent_explorer::train::backprop::{loss_and_grad, Workspace};
use latent_explorer::train::gpu_step::GpuStepper;
use latent_explorer::train::{checkpoint, EpochRecord, LrSchedule, Observer, Outcome, Quiet, TrainConfig, TrainState, Trainer};
use latent_explorer::{rng, Architecture, ModelError, ModelKind, ReconstructionLoss};

fn config(arch: Architecture, batch_size: usize, beta: f32) -> TrainConfig {
    TrainConfig {
        arch,
        epochs: 3,
        batch_size,
        lr: 2e-3,
        beta,
        seed: 7,
        threads: 2,
        iw_samples: 4,
        limit: None,
        schedule: LrSchedule::Cosine { floor: 0.1 },
    }
}

fn options(kernel: MatmulKernel) -> TrainerOptions {
    TrainerOptions { matmul: Some(kernel) }
}

/// One GPU step's gradient against `loss_and_grad` on the same batch and noise.
fn check_one_step(data: &Dataset, config: TrainConfig, kernel: MatmulKernel) {
    let state = TrainState::new(config.clone(), data).unwrap();
    let mut gpu = GpuStepper::new(&state, data, options(kernel)).unwrap();
    let perm = rng::permutation(rng::derive_seed(config.seed, 0), data.n_train());
    gpu.begin_epoch(&state, &perm).unwrap();
    let submitted = gpu.submit(0..1).unwrap();
    let loss = gpu.losses(submitted).unwrap()[0];
    let g_gpu = pollster::block_on(gpu.trainer().read_gradient()).unwrap();

    let px = data.pixels();
    let rows = config.batch_size;
    let images: Vec<u8> = perm[..rows].iter().flat_map(|&i| data.train_images[i as usize * px..][..px].to_vec()).collect();
    let mut g_cpu = vec![0.0; state.vae.params().len()];
    let eps_seed = rng::derive_seed(config.seed, 0x4000_0000);
    let sums = loss_and_grad(
        &state.vae,
        &to_intensities(&images),
        config.beta,
        eps_seed,
        0,
        1.0 / rows as f32,
        &mut g_cpu,
        &mut Workspace::default(),
    );
    let what = format!("{:?} {} gradient", kernel, config.arch.describe());
    assert!(loss.finite);
    assert!((loss.reconstruction - sums.reconstruction).abs() < 1e-5 * sums.reconstruction, "{what}: loss {loss:?} vs {sums:?}");
    assert!((loss.kl - sums.kl).abs() < 1e-4 * sums.kl.max(1.0), "{what}: KL {loss:?} vs {sums:?}");
    assert_tensors_close(&state.vae, &g_gpu, &g_cpu, 1e-4, &what);
}

#[test]
fn one_step_gradients_equal_the_cpu_references_tensor_by_tensor() {
    let data = common::mnist_subset(300, 10);
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        // The default VAE on a full batch of 128.
        check_one_step(&data, config(Architecture::default(), 128, 1.0), kernel);
        // No width a multiple of 4 or 64, a batch of 70: the tiles' edges. An autoencoder with
        // squared error through the sigmoid, and a beta-VAE with three hidden layers.
        let ae = Architecture { kind: ModelKind::Ae, loss: ReconstructionLoss::Mse, ..Architecture::mirrored(784, &[37, 13], 3) };
        check_one_step(&data, config(ae, 70, 1.0), kernel);
        check_one_step(&data, config(Architecture::mirrored(784, &[67, 30, 9], 5), 70, 2.5), kernel);
    }
}

/// Records each step's loss.
struct Losses(Vec<f64>);
impl Observer for Losses {
    fn step(&mut self, _batch: usize, loss: f64, _eps: f64) {
        self.0.push(loss);
    }
}

fn strip_timing(h: &[EpochRecord]) -> Vec<(usize, f64, f64)> {
    h.iter().map(|r| (r.epoch, r.train_neg_elbo, r.test_neg_elbo)).collect()
}

/// Three epochs of 17 steps (800 images in batches of 48, the last one 32): 51 steps, the cosine
/// schedule, a short batch per epoch, each epoch's own noise.
fn small() -> (Dataset, TrainConfig) {
    (common::mnist_subset(800, 200), config(Architecture::mirrored(784, &[128, 64], 2), 48, 1.0))
}

#[test]
fn fifty_steps_of_gpu_adam_track_the_cpu_trainer() {
    let (data, config) = small();
    let dir = common::temp_dir("gpu-fifty");
    let never = AtomicBool::new(false);
    let mut cpu = Trainer::new(config.clone(), &data).unwrap();
    let mut cpu_losses = Losses(Vec::new());
    assert_eq!(cpu.run(&dir.join("cpu.safetensors"), &mut cpu_losses, &never).unwrap(), Outcome::Finished);
    for kernel in [MatmulKernel::Tiled, MatmulKernel::Blocked] {
        let mut gpu = Trainer::on_gpu(TrainState::new(config.clone(), &data).unwrap(), &data, options(kernel)).unwrap();
        let mut gpu_losses = Losses(Vec::new());
        assert_eq!(gpu.run(&dir.join("gpu.safetensors"), &mut gpu_losses, &never).unwrap(), Outcome::Finished);
        assert_eq!(gpu_losses.0.len(), 51);
        assert_eq!(gpu_losses.0.len(), cpu_losses.0.len());
        let mut worst = 0.0f64;
        for (i, (g, c)) in gpu_losses.0.iter().zip(&cpu_losses.0).enumerate() {
            assert!((g - c).abs() < 1e-3 * c, "{kernel:?} step {i}: loss {g} on the GPU, {c} on the CPU");
            worst = worst.max((g - c).abs() / c);
        }
        eprintln!("{kernel:?}: 51 steps' losses within {worst:.2e} of the CPU's (tolerance 1e-3)");
        assert_tensors_close(&cpu.state.vae, gpu.state.vae.params(), cpu.state.vae.params(), 1e-3, &format!("{kernel:?} weights"));
        assert_eq!(gpu.state.adam.t, cpu.state.adam.t);
        assert_eq!(gpu.state.adam.lr, cpu.state.adam.lr);
        for (g, c) in strip_timing(&gpu.state.history).iter().zip(strip_timing(&cpu.state.history)) {
            assert!(g.0 == c.0 && (g.1 - c.1).abs() < 1e-3 * c.1 && (g.2 - c.2).abs() < 1e-3 * c.2, "{kernel:?} epoch {g:?} vs {c:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_resumes_on_the_other_backend() {
    let (data, config) = small();
    let dir = common::temp_dir("gpu-resume");
    let never = AtomicBool::new(false);
    let mut straight = Trainer::new(config.clone(), &data).unwrap();
    straight.run(&dir.join("straight.safetensors"), &mut Quiet, &never).unwrap();
    let fresh = || TrainState::new(config.clone(), &data).unwrap();
    let gpu = |state: TrainState| Trainer::on_gpu(state, &data, TrainerOptions::default()).unwrap();
    let cpu = |state: TrainState| Trainer::from_state(state, &data).unwrap();
    type Make<'a> = &'a dyn Fn(TrainState) -> Trainer<'a>;
    for (name, first, second) in [("gpu then cpu", &gpu as Make, &cpu as Make), ("cpu then gpu", &cpu, &gpu)] {
        let out = dir.join(format!("{}.safetensors", name.replace(' ', "-")));
        let flag = AtomicBool::new(false);
        // Stop in the middle of the second epoch. The GPU runs steps in groups, so it stops at
        // the end of a group: wherever it stopped, the checkpoint says so and the run resumes.
        let mut t = first(fresh());
        assert_eq!(t.run(&out, &mut common::StopAfter { steps: 20, flag: &flag }, &flag).unwrap(), Outcome::Interrupted, "{name}");
        let state = checkpoint::load(&out.with_extension("ckpt")).unwrap();
        assert_eq!(state.epoch, 1, "{name}: stopped in the second epoch");
        assert!(
            state.batch > 0 && state.adam.t == (17 + state.batch) as u64,
            "{name}: at batch {} after {} steps",
            state.batch,
            state.adam.t
        );
        let mut resumed = second(state);
        assert_eq!(resumed.run(&out, &mut Quiet, &never).unwrap(), Outcome::Finished, "{name}");
        assert_tensors_close(&straight.state.vae, resumed.state.vae.params(), straight.state.vae.params(), 1e-3, name);
        assert_eq!(resumed.state.adam.t, straight.state.adam.t);
        assert_eq!(resumed.state.history.len(), 3);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_divergent_gpu_run_stops_and_writes_nothing() {
    let (data, mut config) = small();
    let dir = common::temp_dir("gpu-diverge");
    let out = dir.join("model.safetensors");
    let never = AtomicBool::new(false);
    config.epochs = 1;
    let mut t = Trainer::on_gpu(TrainState::new(config.clone(), &data).unwrap(), &data, TrainerOptions::default()).unwrap();
    t.run(&out, &mut Quiet, &never).unwrap();
    let ckpt = out.with_extension("ckpt");
    let good = std::fs::read(&ckpt).unwrap();
    // Resumed for two more epochs at an absurd learning rate: the GPU stops where the CPU does.
    let absurd = || {
        let mut state = checkpoint::load(&ckpt).unwrap();
        state.config.epochs = 3;
        state.config.lr = 1e30;
        state
    };
    let at = |r: Result<Outcome, ModelError>| match r {
        Err(ModelError::Diverged { epoch, step, .. }) => (epoch, step),
        other => panic!("expected divergence, got {other:?}"),
    };
    let on_cpu = at(Trainer::from_state(absurd(), &data).unwrap().run(&dir.join("cpu.safetensors"), &mut Quiet, &never));
    let ckpt_now = std::fs::read(&ckpt).unwrap();
    assert_eq!(ckpt_now, good);
    let on_gpu = at(Trainer::on_gpu(absurd(), &data, TrainerOptions::default()).unwrap().run(&out, &mut Quiet, &never));
    assert_eq!(on_gpu, on_cpu, "the GPU run diverged at (epoch, step) {on_gpu:?}, the CPU run at {on_cpu:?}");
    assert_eq!(on_gpu.0, 2);
    assert_eq!(std::fs::read(&ckpt).unwrap(), good, "the last good checkpoint was replaced");
    assert!(!out.exists(), "a model file was written");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The page trains on its engine's device (a browser's adapter opens one): a trainer made there
/// takes the same step as one on its own device, and the engine decodes as before.
#[test]
fn a_trainer_on_an_engines_device_takes_the_same_step() {
    use latent_explorer::gpu::training::{GpuTrainer, TrainerStart};
    use latent_explorer::gpu::{EngineOptions, GpuEngine};
    let (data, config) = small();
    let state = TrainState::new(config.clone(), &data).unwrap();
    let engine = pollster::block_on(GpuEngine::new(&state.vae, EngineOptions::default())).unwrap();
    let z = [0.5f32, -1.0];
    let before = pollster::block_on(engine.decode(&z)).unwrap();
    let (m, v) = (&state.adam.m, &state.adam.v);
    let batches = config.batches_per_epoch(data.n_train());
    let start = TrainerStart { vae: &state.vae, m, v, images: &data.train_images, max_rows: 48, max_steps: batches };
    let on_engine = pollster::block_on(GpuTrainer::on_engine(&engine, start, TrainerOptions::default()));
    let own = pollster::block_on(GpuTrainer::new(start, TrainerOptions::default()));
    let perm = rng::permutation(rng::derive_seed(config.seed, 0), data.n_train());
    let (steps, _) = latent_explorer::train::gpu_step::epoch_steps(&state, data.n_train());
    let mut gradients = Vec::new();
    for mut t in [on_engine.unwrap(), own.unwrap()] {
        t.begin_epoch(&perm, &steps, 0).unwrap();
        let s = t.submit(&steps, 0..2).unwrap();
        assert!(pollster::block_on(t.losses(s)).unwrap().iter().all(|l| l.finite));
        gradients.push(pollster::block_on(t.read_gradient()).unwrap());
    }
    assert_eq!(gradients[0], gradients[1], "the same step on a shared and an own device");
    assert_eq!(pollster::block_on(engine.decode(&z)).unwrap(), before, "the engine's weights are its own");
}
