//! The `train` command as a user runs it: help, errors, the download path, Ctrl-C and resume.

mod common;
#[path = "common/http.rs"]
mod http;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latent_explorer::dataset::FILES;
use latent_explorer::weights;

fn train() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_train"));
    c.env_remove("MNIST_DIR").env_remove("MNIST_MIRROR");
    c
}

fn run(c: &mut Command) -> (i32, String) {
    let out = c.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// [`run`], killing the command if it is still running after `limit` (a write to a FIFO, say,
/// blocks until a reader comes).
fn run_within(c: &mut Command, limit: Duration) -> (i32, String) {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn params(path: &Path) -> Vec<f32> {
    weights::from_bytes(&fs::read(path).unwrap()).unwrap().vae.params().to_vec()
}

#[test]
fn help_lists_the_options() {
    let (code, text) = run(train().arg("--help"));
    assert_eq!(code, 0);
    for flag in [
        "--data",
        "--epochs",
        "--out",
        "--seed",
        "--batch-size",
        "--lr",
        "--hidden",
        "--latent",
        "--beta",
        "--kind",
        "--loss",
        "--limit",
        "--threads",
        "--resume",
        "--iw-samples",
        "--bench",
    ] {
        assert!(text.contains(flag), "--help does not mention {flag}");
    }
}

#[test]
fn bad_input_gives_a_clear_error_and_a_failing_exit_code() {
    let dir = common::temp_dir("cli-errors");
    let mnist = common::mnist_dir();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--data".into(), dir.join("nowhere").display().to_string()], "train-images-idx3-ubyte"),
        (vec!["--data".into(), mnist.display().to_string(), "--limit".into(), "0".into()], "--limit"),
        (vec!["--hidden".into(), "512,0".into()], "--hidden"),
        (vec!["--lr=0".into()], "--lr"),
        (vec!["--beta=-1".into()], "--beta"),
        (vec!["--resume".into(), dir.join("missing.ckpt").display().to_string()], "missing.ckpt"),
        (vec!["--data".into(), mnist.display().to_string(), "--epochs".into(), "0".into()], "--epochs 0"),
        (vec!["--iw-samples".into(), "100000".into()], "--iw-samples"),
    ];
    for (args, needle) in cases {
        let (code, text) = run(train().args(&args).current_dir(&dir));
        assert_ne!(code, 0, "{args:?} succeeded");
        assert!(text.contains("error") && text.contains(needle), "{args:?}: {text}");
        assert!(!text.contains("panicked"), "{args:?} panicked: {text}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_data_it_downloads_into_data_mnist_and_trains() {
    let server = http::serve(http::mnist_files(&common::mnist_dir(), ""), 4);
    let dir = common::temp_dir("cli-download");
    let (code, text) = run(train()
        .args(["--epochs", "1", "--limit", "500", "--hidden", "32", "--iw-samples", "2", "--out", "m.safetensors"])
        .env("MNIST_MIRROR", &server.base)
        .current_dir(&dir));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("downloading"), "{text}");
    for f in FILES {
        assert!(dir.join("data/mnist").join(format!("{f}.gz")).is_file(), "{f} not downloaded");
    }
    let file = weights::from_bytes(&fs::read(dir.join("m.safetensors")).unwrap()).unwrap();
    assert_eq!(file.metadata["epochs"], "1");
    assert!(file.metadata["dataset"].contains("\"mnist\""));
    assert_eq!(fs::read_to_string(dir.join("m.train.jsonl")).unwrap().lines().count(), 1);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_resume_matches_an_uninterrupted_run() {
    let dir = common::temp_dir("cli-resume");
    let mnist = common::mnist_dir().display().to_string();
    let common_args =
        ["--data", &mnist, "--limit", "6000", "--epochs", "8", "--threads", "2", "--iw-samples", "3", "--lr-schedule", "cosine"];

    let (code, text) = run(train().args(common_args).args(["--out", "a.safetensors"]).current_dir(&dir));
    assert_eq!(code, 0, "{text}");

    let child = train()
        .args(common_args)
        .args(["--out", "b.safetensors"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first epoch is logged, i.e. somewhere in the middle of the run.
    let log = dir.join("b.train.jsonl");
    let t0 = Instant::now();
    while !fs::read_to_string(&log).map(|l| !l.is_empty()).unwrap_or(false) {
        assert!(t0.elapsed() < Duration::from_secs(120), "no epoch finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(dir.join("b.ckpt").is_file());
    assert!(!dir.join("b.safetensors").exists(), "an interrupted run wrote a final model");

    let (code, text) = run(train().args(["--data", &mnist, "--resume", "b.ckpt"]).current_dir(&dir));
    assert_eq!(code, 0, "{text}");
    assert_eq!(params(&dir.join("b.safetensors")), params(&dir.join("a.safetensors")));
    assert_eq!(fs::read_to_string(&log).unwrap().lines().count(), 8);
    fs::remove_dir_all(&dir).unwrap();
}

/// Every output that is not a regular file is refused before training starts, and left as it was.
#[cfg(unix)]
#[test]
fn an_output_that_is_not_a_regular_file_is_refused_before_training() {
    use std::os::unix::fs::FileTypeExt;
    let dir = common::temp_dir("cli-special-out");
    let mnist = common::mnist_dir().display().to_string();
    assert!(Command::new("mkfifo").arg(dir.join("pipe")).status().unwrap().success());
    fs::create_dir(dir.join("folder")).unwrap();
    assert!(Command::new("mkfifo").arg(dir.join("log-pipe.train.jsonl")).status().unwrap().success());
    for (out, culprit, kind) in
        [("pipe", "pipe", "a FIFO"), ("folder", "folder", "a folder"), ("log-pipe.safetensors", "log-pipe.train.jsonl", "a FIFO")]
    {
        // Refused at once: an hour's training must not come first.
        let (code, text) =
            run_within(train().args(["--data", &mnist, "--epochs", "50", "--out", out]).current_dir(&dir), Duration::from_secs(30));
        assert_ne!(code, 0, "{out}: {text}");
        assert!(text.contains(culprit) && text.contains(kind) && text.contains("not a regular file"), "{out}: {text}");
        assert!(!text.contains("epoch "), "{out}: training started: {text}");
    }
    let t = |p: &str| fs::symlink_metadata(dir.join(p)).unwrap().file_type();
    assert!(t("pipe").is_fifo() && t("folder").is_dir() && t("log-pipe.train.jsonl").is_fifo());
    let mut left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["folder", "log-pipe.train.jsonl", "pipe"], "something was written");
    fs::remove_dir_all(&dir).unwrap();
}

/// A symlinked model path is written through: the file it points to is replaced, the link kept.
#[cfg(unix)]
#[test]
fn a_symlinked_output_is_written_through_and_kept() {
    let dir = common::temp_dir("cli-symlink-out");
    let mnist = common::mnist_dir().display().to_string();
    fs::write(dir.join("run7.safetensors"), b"an older model").unwrap();
    std::os::unix::fs::symlink("run7.safetensors", dir.join("current.safetensors")).unwrap();
    let (code, text) = run(train()
        .args(["--data", &mnist, "--epochs", "1", "--limit", "500", "--hidden", "16", "--iw-samples", "2", "--out", "current.safetensors"])
        .current_dir(&dir));
    assert_eq!(code, 0, "{text}");
    assert!(fs::symlink_metadata(dir.join("current.safetensors")).unwrap().file_type().is_symlink(), "the link was replaced");
    let file = weights::from_bytes(&fs::read(dir.join("run7.safetensors")).unwrap()).unwrap();
    assert_eq!(file.metadata["epochs"], "1");
    fs::remove_dir_all(&dir).unwrap();
}

/// A run whose loss or weights stop being finite names where, suggests a lower --lr, exits
/// non-zero, and writes nothing: the previous model and the last good checkpoint stay.
#[test]
fn a_diverging_run_stops_and_keeps_the_previous_model_and_checkpoint() {
    let dir = common::temp_dir("cli-diverge");
    let mnist = common::mnist_dir().display().to_string();
    let args = ["--data", &mnist, "--limit", "1000", "--hidden", "32", "--iw-samples", "2"];
    let (code, text) = run(train().args(args).args(["--epochs", "1", "--out", "m.safetensors"]).current_dir(&dir));
    assert_eq!(code, 0, "{text}");
    let (model, ckpt, log) =
        (fs::read(dir.join("m.safetensors")).unwrap(), fs::read(dir.join("m.ckpt")).unwrap(), fs::read(dir.join("m.train.jsonl")).unwrap());

    // Resumed for more epochs at an absurd learning rate: the first new step already diverges.
    let (code, text) = run(train().args(["--data", &mnist, "--resume", "m.ckpt", "--epochs", "3", "--lr", "1e9"]).current_dir(&dir));
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("diverged at epoch 2, step "), "{text}");
    assert!(text.contains("--resume m.ckpt --lr 1e8"), "{text}");
    assert!(text.contains("--lr 1e8"), "{text}");
    assert!(!text.contains("model written"), "{text}");
    assert_eq!(fs::read(dir.join("m.safetensors")).unwrap(), model, "the previous model was replaced");
    assert_eq!(fs::read(dir.join("m.ckpt")).unwrap(), ckpt, "the last good checkpoint was replaced");
    assert_eq!(fs::read(dir.join("m.train.jsonl")).unwrap(), log, "the log was changed");

    // A fresh run at that rate, over the same model and to a new name: stops in its first
    // epoch and writes nothing at all.
    for out in ["m.safetensors", "fresh.safetensors"] {
        let (code, text) = run(train().args(args).args(["--epochs", "2", "--lr", "1e9", "--out", out]).current_dir(&dir));
        assert_ne!(code, 0, "{text}");
        assert!(text.contains("diverged at epoch 1, step "), "{text}");
    }
    assert_eq!(fs::read(dir.join("m.safetensors")).unwrap(), model, "the previous model was replaced");
    assert_eq!(fs::read(dir.join("m.ckpt")).unwrap(), ckpt, "the last good checkpoint was replaced");
    assert_eq!(fs::read(dir.join("m.train.jsonl")).unwrap(), log, "the log was changed");
    let mut left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["m.ckpt", "m.safetensors", "m.train.jsonl"]);
    fs::remove_dir_all(&dir).unwrap();
}

/// Any folder of IDX files trains; one that is not MNIST or Fashion-MNIST says so and the model
/// records its checksums.
#[test]
fn a_custom_data_set_trains_and_is_recorded() {
    let dir = common::temp_dir("cli-custom-data");
    let data = dir.join("my-digits");
    fs::create_dir(&data).unwrap();
    let m = common::mnist_subset(3000, 500);
    fs::write(data.join("train-images-idx3-ubyte"), latent_explorer::idx::encode_images(3000, 28, 28, &m.train_images)).unwrap();
    fs::write(data.join("train-labels-idx1-ubyte"), latent_explorer::idx::encode_labels(&m.train_labels)).unwrap();
    fs::write(data.join("t10k-images-idx3-ubyte"), latent_explorer::idx::encode_images(500, 28, 28, &m.test_images)).unwrap();
    fs::write(data.join("t10k-labels-idx1-ubyte"), latent_explorer::idx::encode_labels(&m.test_labels)).unwrap();
    let (code, text) = run(train()
        .args(["--data", "my-digits", "--epochs", "1", "--hidden", "16", "--iw-samples", "2", "--out", "m.safetensors"])
        .current_dir(&dir));
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.matches("not a known data set").count(), 1, "{text}");
    let file = weights::from_bytes(&fs::read(dir.join("m.safetensors")).unwrap()).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&file.metadata["dataset"]).unwrap();
    assert_eq!(meta["name"], "custom");
    assert_eq!(meta["folder"], "my-digits");
    let images = fs::read(data.join("train-images-idx3-ubyte")).unwrap();
    assert_eq!(meta["sha256"]["train-images-idx3-ubyte"], latent_explorer::dataset::sha256_hex(&images).as_str());
    assert_eq!(meta["train_examples"], 3000);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_prints_a_throughput() {
    let mnist = common::mnist_dir().display().to_string();
    let (code, text) = run(train().args(["--data", &mnist, "--limit", "2000", "--hidden", "64", "--bench"]));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("examples/s"), "{text}");
}

#[test]
fn convert_rewrites_a_model_in_f16_and_remeasures_it() {
    let dir = common::temp_dir("cli-convert");
    let mnist = common::mnist_dir().display().to_string();
    let (code, text) = run(train()
        .args(["--data", &mnist, "--epochs", "1", "--limit", "2000", "--hidden", "64", "--iw-samples", "3", "--out", "m.safetensors"])
        .current_dir(&dir));
    assert_eq!(code, 0, "{text}");
    let (code, text) =
        run(train().args(["--data", &mnist, "--convert", "m.safetensors", "--dtype", "f16", "--out", "h.safetensors"]).current_dir(&dir));
    assert_eq!(code, 0, "{text}");
    let full = fs::read(dir.join("m.safetensors")).unwrap();
    let half = fs::read(dir.join("h.safetensors")).unwrap();
    assert!(half.len() < full.len() * 6 / 10, "{} vs {} bytes", half.len(), full.len());
    let (a, b) = (weights::from_bytes(&full).unwrap(), weights::from_bytes(&half).unwrap());
    assert_eq!(b.metadata["storage_dtype"], "f16");
    assert_eq!(b.metadata["epochs"], a.metadata["epochs"]);
    let (ma, mb) = (a.embedding.clone().unwrap(), b.embedding.clone().unwrap());
    assert_eq!(ma.labels, mb.labels);
    let moved = ma.mu.iter().zip(&mb.mu).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(moved > 0.0 && moved < 0.05, "f16 moved the embedded points by up to {moved}");
    let (ea, eb) = (a.metadata_f64("test_neg_elbo").unwrap(), b.metadata_f64("test_neg_elbo").unwrap());
    assert!((ea - eb).abs() < 0.5, "f16 changed the test -ELBO from {ea} to {eb}");
    fs::remove_dir_all(&dir).unwrap();
}

/// `--backend gpu` trains through the same CLI (its model line names the adapter), writes the
/// shared checkpoint, and that checkpoint finishes on the CPU; `--gpu-kernel` needs the GPU.
#[test]
fn a_gpu_run_checkpoints_and_finishes_on_the_cpu() {
    let dir = common::temp_dir("cli-gpu");
    let mnist = common::mnist_dir().display().to_string();
    let args = ["--data", &mnist, "--limit", "500", "--hidden", "32", "--iw-samples", "2"];
    let (code, text) = run(train().args(args).args(["--backend", "gpu", "--epochs", "1", "--out", "m.safetensors"]).current_dir(&dir));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("on the GPU: "), "{text}");
    assert!(text.contains("epoch   1/1"), "{text}");
    let (code, text) = run(train().args(["--data", &mnist, "--resume", "m.ckpt", "--epochs", "2", "--backend", "cpu"]).current_dir(&dir));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("resuming m.ckpt at epoch 2") && text.contains("on the CPU"), "{text}");
    let file = weights::from_bytes(&fs::read(dir.join("m.safetensors")).unwrap()).unwrap();
    assert_eq!(file.metadata["epochs"], "2");
    assert_eq!(fs::read_to_string(dir.join("m.train.jsonl")).unwrap().lines().count(), 2);
    let (code, text) = run(train().args(args).args(["--gpu-kernel", "tiled"]).current_dir(&dir));
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("--gpu-kernel chooses the GPU's product kernel: give it with --backend gpu"), "{text}");
    // No adapter (this build has no GL backend): the error says so and offers the CPU.
    let (code, text) =
        run(train().args(args).args(["--backend", "gpu", "--out", "none.safetensors"]).env("WGPU_BACKEND", "gl").current_dir(&dir));
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("error: GPU: no GPU adapter found") && text.contains("train on the CPU with --backend cpu"), "{text}");
    assert!(!dir.join("none.safetensors").exists() && !dir.join("none.ckpt").exists());
    fs::remove_dir_all(&dir).unwrap();
}
