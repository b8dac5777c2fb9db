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

fn params(path: &Path) -> Vec<f32> {
    weights::from_bytes(&fs::read(path).unwrap()).unwrap().vae.params().to_vec()
}

#[test]
fn help_lists_the_options() {
    let (code, text) = run(train().arg("--help"));
    assert_eq!(code, 0);
    for flag in ["--data", "--epochs", "--out", "--seed", "--batch-size", "--lr", "--hidden", "--latent", "--beta", "--limit", "--threads", "--resume", "--iw-samples", "--bench"] {
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
    let common_args = ["--data", &mnist, "--limit", "6000", "--epochs", "8", "--threads", "2", "--iw-samples", "3", "--lr-schedule", "cosine"];

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
    let (code, text) = run(train()
        .args(["--data", &mnist, "--convert", "m.safetensors", "--dtype", "f16", "--out", "h.safetensors"])
        .current_dir(&dir));
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
