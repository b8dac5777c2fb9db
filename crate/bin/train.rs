//! `cargo run --release --bin train -- --data DIR --epochs N --out FILE`: trains a VAE and
//! writes the model file the explorer page loads.
//!
//! Longer than 400 lines because it is the one place for the command's argument checks and its
//! five modes (train on either backend, resume, `--kind pca`, `--convert`, `--bench`) and their
//! printing; the work itself lives in `train/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use latent_explorer::dataset::{self, Dataset};
use latent_explorer::gpu::training::TrainerOptions;
use latent_explorer::gpu::MatmulKernel;
use latent_explorer::train::evaluate::TestFigures;
use latent_explorer::train::{checkpoint, config, EpochRecord, LrSchedule, Observer, Outcome, TrainConfig, TrainState, Trainer};
use latent_explorer::weights::StorageDtype;
use latent_explorer::{Architecture, ModelError, ModelKind, ReconstructionLoss};

/// Train a VAE on MNIST-format data with a Bernoulli decoder and a Gaussian encoder.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Folder with the four IDX files (raw or .gz). Default: $MNIST_DIR, else ./data/mnist,
    /// which is downloaded from a public mirror if empty.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Epochs to train in total (default 10; with --resume, the run's own target).
    #[arg(long)]
    epochs: Option<usize>,
    /// Model file to write (safetensors; default model.safetensors, or beside the checkpoint
    /// with --resume). The checkpoint (.ckpt) and log (.train.jsonl) go beside it.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u32,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Adam learning rate (default 1e-3). With --resume, replaces the run's own: lower it to
    /// continue a run that diverged from its last good checkpoint.
    #[arg(long)]
    lr: Option<f32>,
    /// Learning-rate schedule: constant, or cosine (decays to lr * --lr-floor by the last epoch).
    #[arg(long, default_value = "constant", value_parser = ["constant", "cosine"])]
    lr_schedule: String,
    /// Final learning rate of the cosine schedule, as a fraction of --lr.
    #[arg(long, default_value_t = 0.01)]
    lr_floor: f32,
    /// Encoder hidden layer sizes; the decoder mirrors them.
    #[arg(long, value_delimiter = ',', default_value = "512,256")]
    hidden: Vec<usize>,
    #[arg(long, default_value_t = 2)]
    latent: usize,
    /// Weight of the KL term: -ELBO = reconstruction + beta * KL (a VAE's only).
    #[arg(long, default_value_t = 1.0)]
    beta: f32,
    /// What to train: vae (Gaussian encoder, ELBO), ae (deterministic encoder, reconstruction
    /// only) or pca (the top --latent principal components, fitted in closed form).
    #[arg(long, default_value = "vae", value_parser = ["vae", "ae", "pca"])]
    kind: String,
    /// Reconstruction loss: bce (Bernoulli cross-entropy) or mse (squared error). Default bce;
    /// a pca is always mse (what it minimises).
    #[arg(long, value_parser = ["bce", "mse"])]
    loss: Option<String>,
    /// Use only the first N training images (quick runs).
    #[arg(long)]
    limit: Option<usize>,
    /// Worker threads (default: all cores). The trained weights are the same for any count.
    #[arg(long)]
    threads: Option<usize>,
    /// Samples per image for the importance-weighted bound on log p(x).
    #[arg(long, default_value_t = 100)]
    iw_samples: usize,
    /// Storage precision of the written model: f32, or f16 for half the size.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
    dtype: String,
    /// Continue from a checkpoint written by an earlier run.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Where the training steps run: cpu (the reference, all cores) or gpu (WGSL compute shaders
    /// through wgpu: Vulkan, Metal or DX12). Checkpoints resume on either.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    backend: String,
    /// With --backend gpu, the product kernel: tiled (workgroup-memory tiles; the default, built for
    /// GPUs and also the faster on lavapipe) or blocked (no workgroup memory), for benchmarks.
    #[arg(long, value_parser = ["tiled", "blocked"])]
    gpu_kernel: Option<String>,
    /// Measure training throughput (examples/second) and exit; writes nothing.
    #[arg(long)]
    bench: bool,
    /// Rewrite this model file in --dtype (e.g. f16, half the size) to --out, measuring its test
    /// figures again on the test set of --data.
    #[arg(long)]
    convert: Option<PathBuf>,
}

struct Cli {
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Observer for Cli {
    fn epoch_start(&mut self, epoch: usize, batches: usize, done: usize) {
        let bar = ProgressBar::new(batches as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, self.epochs));
        bar.set_position(done as u64);
        self.bar = Some(bar);
    }
    fn step(&mut self, batch: usize, loss: f64, eps: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(batch as u64);
            if batch.is_multiple_of(10) {
                bar.set_message(format!("loss {loss:.2} | {eps:.0} ex/s"));
            }
        }
    }
    fn epoch_end(&mut self, r: &EpochRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        println!(
            "epoch {:>3}/{}  train -ELBO {:8.3}  test -ELBO {:8.3}  KL {:6.3}  {:5.1} s  {:6.0} ex/s",
            r.epoch, self.epochs, r.train_neg_elbo, r.test_neg_elbo, r.test_kl, r.seconds, r.examples_per_second
        );
    }
    fn message(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_data(args: &Args, limit: Option<usize>) -> Result<Dataset, String> {
    let mut data = dataset::load(args.data.as_deref()).map_err(|e| e.to_string())?;
    if let Some(n) = limit {
        if n == 0 {
            return Err("--limit must be at least 1".into());
        }
        data.limit_train(n);
    }
    eprintln!(
        "data: {} from {} ({} training, {} test images, {}x{})",
        data.name,
        data.dir.display(),
        data.n_train(),
        data.n_test(),
        data.rows,
        data.cols
    );
    if !data.is_known() {
        eprintln!(
            "data: not a known data set (its checksums match neither MNIST nor Fashion-MNIST); training on it as it is, with its sha256 recorded in the model's metadata"
        );
    }
    Ok(data)
}

fn run(mut args: Args) -> Result<ExitCode, String> {
    let out = match (&args.out, &args.resume) {
        (Some(o), _) => o.clone(),
        (None, Some(ckpt)) => ckpt.with_extension("safetensors"),
        (None, None) => PathBuf::from("model.safetensors"),
    };
    args.out = Some(out.clone());
    let dtype = if args.dtype == "f16" { StorageDtype::F16 } else { StorageDtype::F32 };
    let default_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if args.threads == Some(0) || args.batch_size == 0 || args.latent == 0 || args.hidden.contains(&0) {
        return Err("--threads, --batch-size, --latent and every --hidden size must be at least 1".into());
    }
    if args.threads.is_some_and(|t| t > config::MAX_THREADS) || args.iw_samples > config::MAX_IW_SAMPLES {
        return Err(format!("--threads may be at most {} and --iw-samples at most {}", config::MAX_THREADS, config::MAX_IW_SAMPLES));
    }
    if args.lr.is_some_and(|lr| !(lr > 0.0 && lr.is_finite())) || !(args.beta >= 0.0 && args.beta.is_finite()) {
        return Err("--lr must be positive and --beta non-negative".into());
    }
    let kind = match args.kind.as_str() {
        "ae" => ModelKind::Ae,
        "pca" => ModelKind::Pca,
        _ => ModelKind::Vae,
    };
    if !kind.is_variational() && args.beta != 1.0 {
        return Err(format!("--beta weighs a VAE's KL term; a {} has none (drop --beta)", kind.name()));
    }
    let loss = match (args.loss.as_deref(), kind) {
        (Some("bce"), ModelKind::Pca) => return Err("a pca minimises squared error: --loss bce is not available for it".into()),
        (Some("mse"), _) | (None, ModelKind::Pca) => ReconstructionLoss::Mse,
        _ => ReconstructionLoss::Bce,
    };
    if kind == ModelKind::Pca && (args.resume.is_some() || args.bench) {
        return Err("a pca is fitted in one pass: --resume and --bench do not apply".into());
    }
    if args.gpu_kernel.is_some() && args.backend != "gpu" {
        return Err("--gpu-kernel chooses the GPU's product kernel: give it with --backend gpu".into());
    }
    if !(0.0..=1.0).contains(&args.lr_floor) {
        return Err("--lr-floor must be between 0 and 1".into());
    }
    if args.epochs == Some(0) && args.resume.is_none() && args.convert.is_none() && !args.bench {
        return Err("--epochs 0 would train nothing; give at least 1 (or --resume a checkpoint to finish it)".into());
    }
    // Refuse an output that cannot be written safely now, not after an hour of training.
    if args.convert.is_some() {
        latent_explorer::fsutil::check_writable(&out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    } else if !args.bench {
        latent_explorer::train::trainer::check_outputs(&out).map_err(|e| e.to_string())?;
    }

    if let Some(input) = &args.convert {
        let bytes = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
        let data = load_data(&args, None)?;
        let (converted, figures) = latent_explorer::weights::convert::convert(&bytes, &data.test_images, &data.test_labels, dtype)
            .map_err(|e| format!("{}: {e}", input.display()))?;
        latent_explorer::fsutil::atomic_write(&out, &converted).map_err(|e| format!("{}: {e}", out.display()))?;
        println!(
            "wrote {} ({} bytes, {}, {}): {}",
            out.display(),
            converted.len(),
            args.dtype,
            figures.kind.name(),
            describe_figures(&figures)
        );
        return Ok(ExitCode::SUCCESS);
    }

    let (state, data) = if let Some(ckpt) = &args.resume {
        let mut state = checkpoint::load(ckpt).map_err(|e| format!("{}: {e}", ckpt.display()))?;
        let data = load_data(&args, state.config.limit)?;
        if data.train_images_sha256() != state.dataset_sha256 {
            return Err(format!(
                "{} was trained on other data (training images sha256 {}), not {}",
                ckpt.display(),
                state.dataset_sha256,
                data.dir.display()
            ));
        }
        if let Some(e) = args.epochs {
            state.config.epochs = e;
        }
        if let Some(t) = args.threads {
            state.config.threads = t;
        }
        if let Some(lr) = args.lr {
            state.config.lr = lr;
        }
        eprintln!("resuming {} at epoch {}, batch {}", ckpt.display(), state.epoch + 1, state.batch);
        (Some(state), data)
    } else {
        (None, load_data(&args, args.limit)?)
    };

    let arch = match kind {
        ModelKind::Pca => Architecture::pca(data.pixels(), args.latent),
        _ => Architecture { kind, loss, ..Architecture::mirrored(data.pixels(), &args.hidden, args.latent) },
    };
    let config = TrainConfig {
        arch,
        epochs: args.epochs.unwrap_or(10),
        batch_size: args.batch_size,
        lr: args.lr.unwrap_or(1e-3),
        beta: args.beta,
        seed: args.seed,
        threads: args.threads.unwrap_or(default_threads),
        iw_samples: args.iw_samples.max(1),
        limit: args.limit,
        schedule: match args.lr_schedule.as_str() {
            "cosine" => LrSchedule::Cosine { floor: args.lr_floor },
            _ => LrSchedule::Constant,
        },
    };
    if kind == ModelKind::Pca {
        eprintln!("model: {} ({} parameters), fitting {} components", config.arch.describe(), config.arch.n_params(), config.arch.latent);
        let report = latent_explorer::train::trainer::fit_pca(&config, &data, &out, dtype).map_err(|e| e.to_string())?;
        println!("fitted in {:.1} s; test {}", report.train_seconds, describe_figures(&report.figures));
        println!("model written to {}", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let state = match state {
        Some(s) => s,
        None => TrainState::new(config, &data).map_err(|e| e.to_string())?,
    };
    let mut trainer = match args.backend.as_str() {
        "gpu" => Trainer::on_gpu(state, &data, TrainerOptions { matmul: args.gpu_kernel.as_deref().map(kernel) }),
        _ => Trainer::from_state(state, &data),
    }
    .map_err(|e| e.to_string())?;
    let cfg = trainer.state.config.clone();
    let on = match trainer.gpu_adapter() {
        Some(adapter) => format!("on the GPU: {adapter}"),
        None => format!("on the CPU, {} threads", cfg.threads),
    };
    eprintln!(
        "model: {} ({} parameters), batch {}, Adam lr {} ({:?}), beta {}, seed {}, {on}",
        cfg.arch.describe(),
        cfg.arch.n_params(),
        cfg.batch_size,
        cfg.lr,
        cfg.schedule,
        cfg.beta,
        cfg.seed,
    );

    if args.bench {
        return bench(&mut trainer);
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit now)");
        })
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    }
    let mut cli = Cli { bar: None, epochs: cfg.epochs };
    let ckpt = latent_explorer::train::trainer::sibling(&out, ".ckpt");
    let outcome = trainer.run(&out, &mut cli, &stop).map_err(|e| match e {
        ModelError::Diverged { suggested_lr, .. } if ckpt.is_file() => {
            format!(
                "{e}\ncontinue from the last good checkpoint with: cargo run --release --bin train -- --resume {} --lr {suggested_lr:.0e}",
                ckpt.display()
            )
        }
        e => e.to_string(),
    })?;
    if outcome == Outcome::Interrupted {
        eprintln!("resume with: cargo run --release --bin train -- --resume {}", ckpt.display());
        return Ok(ExitCode::from(130));
    }
    eprintln!("evaluating on the test set ({} importance samples per image)...", cfg.iw_samples);
    let report = trainer.finish(&out, dtype).map_err(|e| e.to_string())?;
    report_final(&report, &out, &ckpt, trainer.state.epoch);
    Ok(ExitCode::SUCCESS)
}

/// `--gpu-kernel`'s value as the kernel.
fn kernel(name: &str) -> MatmulKernel {
    if name == "tiled" {
        MatmulKernel::Tiled
    } else {
        MatmulKernel::Blocked
    }
}

fn report_final(r: &latent_explorer::train::FinalReport, out: &Path, ckpt: &Path, epochs: usize) {
    println!();
    println!("trained {epochs} epochs in {:.1} s", r.train_seconds);
    println!("test {}", describe_figures(&r.figures));
    println!("model written to {}", out.display());
    println!("checkpoint: {}  log: {}", ckpt.display(), latent_explorer::train::trainer::sibling(out, ".train.jsonl").display());
}

/// The test figures in one line: every kind's, then a VAE's bounds.
fn describe_figures(f: &TestFigures) -> String {
    let mut text =
        format!("BCE {:.3} nats, squared error {:.3}, prior coverage {:.3}", f.reconstruction, f.squared_error, f.prior_coverage);
    if let Some(v) = &f.variational {
        text += &format!(", -ELBO {:.3} nats (KL {:.3}), log p(x) >= {:.3}", v.neg_elbo, v.kl, v.iw_bound);
    }
    text
}

fn bench(trainer: &mut Trainer) -> Result<ExitCode, String> {
    let batch = trainer.state.config.batch_size;
    let steps = (20_000 / batch).max(10);
    trainer.bench_steps(steps / 4).map_err(|e| e.to_string())?; // warm-up: caches, page faults, thread start, pipelines
    let mut rates = Vec::new();
    for round in 1..=5 {
        let t0 = Instant::now();
        let n = trainer.bench_steps(steps).map_err(|e| e.to_string())?;
        let rate = n as f64 / t0.elapsed().as_secs_f64();
        println!("round {round}: {n} examples in {:.3} s = {rate:.0} examples/s", t0.elapsed().as_secs_f64());
        rates.push(rate);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let on = trainer.gpu_adapter().unwrap_or_else(|| format!("CPU, {} threads", trainer.state.config.threads));
    let epoch = trainer.batches_per_epoch() * batch;
    println!(
        "train throughput: median {:.0} examples/s (min {:.0}, max {:.0}), batch {batch}, {on}: {:.2} s per epoch of {epoch}",
        rates[2],
        rates[0],
        rates[4],
        epoch as f64 / rates[2]
    );
    Ok(ExitCode::SUCCESS)
}
