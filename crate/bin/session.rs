//! `cargo run --release --bin session -- --steps 200 --out model.safetensors`
//!
//! Takes the steps of the page's Train panel natively, from the same settings and the same
//! training subset, on the CPU or the GPU, and writes the model file the panel's "save model"
//! would: to reproduce a run from the page, or to check the page's weights against (the
//! browser tests do).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use latent_explorer::fsutil::{atomic_write, check_writable};
use latent_explorer::session::{self, CpuSession, GpuSession, Settings, Snapshot};
use latent_explorer::testset;

#[derive(Parser, Debug)]
#[command(version, about = "Take the page's training steps natively and write the model the page would save")]
struct Args {
    /// A training subset, as the page loads it.
    #[arg(long, default_value = "www/data/train-mnist.safetensors.gz")]
    data: PathBuf,
    /// vae or ae.
    #[arg(long, default_value = "vae")]
    kind: String,
    /// Hidden sizes: small or default.
    #[arg(long, default_value = "small")]
    hidden: String,
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value_t = 1.0)]
    beta: f32,
    #[arg(long, default_value_t = 1)]
    seed: u32,
    /// Optimisation steps to take.
    #[arg(long)]
    steps: usize,
    /// cpu (the page's worker) or gpu (the page's WebGPU path).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    backend: String,
    /// Output model file.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    check_writable(&args.out).map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    let bytes = std::fs::read(&args.data).map_err(|e| format!("{}: {e}", args.data.display()))?;
    let data = testset::from_bytes(&bytes).map_err(|e| format!("{}: {e}", args.data.display()))?;
    let settings =
        Settings { kind: args.kind, hidden: args.hidden, lr: args.lr, batch_size: args.batch_size, beta: args.beta, seed: args.seed };
    let start = Snapshot::start(settings.config().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let (snapshot, last) = if args.backend == "gpu" {
        pollster::block_on(async {
            let mut gpu = GpuSession::new(start, &data).await?;
            gpu.advance(args.steps).await?;
            let last = gpu.sync().await?.last().copied();
            Ok::<_, latent_explorer::ModelError>((gpu.snapshot().clone(), last))
        })
        .map_err(|e| e.to_string())?
    } else {
        let mut cpu = CpuSession::new(start, data.clone()).map_err(|e| e.to_string())?;
        let mut last = None;
        for _ in 0..args.steps {
            last = Some(cpu.step().map_err(|e| e.to_string())?);
        }
        (cpu.snapshot().clone(), last)
    };
    let file = session::model_bytes(&snapshot, &data, &args.backend).map_err(|e| e.to_string())?;
    atomic_write(&args.out, &file).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let loss = last.map_or(String::from("-"), |r| format!("{:.3}", r.reconstruction + r.kl));
    println!("{}: {} steps on the {}, last step's -ELBO per example {loss}", args.out.display(), snapshot.steps(), args.backend);
    Ok(())
}
