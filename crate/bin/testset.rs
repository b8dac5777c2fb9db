//! `cargo run --release --bin testset -- --data DIR --per-class 200 --out FILE`
//!
//! Cuts a compact labelled subset from an IDX data set (the first `--per-class` images of each
//! class, in the set's order): of the test set, for the page to encode when a model has no
//! embedding; with `--split train`, of the training set, for the page's Train panel. The format
//! is `latent_explorer::testset`'s, gzip-compressed when `--out` ends in `.gz`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use latent_explorer::dataset::{self, FILES};
use latent_explorer::fsutil::{atomic_write, check_writable};
use latent_explorer::{classes, testset};

#[derive(Parser, Debug)]
#[command(version, about = "Write a balanced labelled subset of a data set's test images as safetensors")]
struct Args {
    /// Folder of the four IDX files (MNIST, Fashion-MNIST, or any 28x28 set with labels 0..=9).
    #[arg(long)]
    data: PathBuf,
    /// Test images taken from each class.
    #[arg(long, default_value_t = 200)]
    per_class: usize,
    /// Which images: the test set's or the training set's.
    #[arg(long, default_value = "test", value_parser = ["test", "train"])]
    split: String,
    /// Output file (gzip-compressed if it ends in .gz).
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
    let data = dataset::load_dir(&args.data).map_err(|e| e.to_string())?;
    if data.pixels() != testset::PIXELS {
        return Err(format!("{}: images are {}x{}, the models take 28x28", args.data.display(), data.rows, data.cols));
    }
    // A custom set's labels have no names: they are named by their numbers.
    let names: Vec<String> = match classes::for_dataset(&data.name) {
        Some(names) => names.iter().map(|s| s.to_string()).collect(),
        None => (0..=data.test_labels.iter().copied().max().unwrap_or(0)).map(|l| l.to_string()).collect(),
    };
    // FILES lists the training images and labels, then the test ones.
    let (images, labels, files) = match args.split.as_str() {
        "train" => (&data.train_images, &data.train_labels, 0..2),
        _ => (&data.test_images, &data.test_labels, 2..4),
    };
    let chosen = testset::select_balanced(labels, names.len(), args.per_class).map_err(|e| e.to_string())?;
    let p = testset::PIXELS;
    let set = testset::TestSet {
        images: chosen.iter().flat_map(|&i| images[i * p..(i + 1) * p].iter().copied()).collect(),
        labels: chosen.iter().map(|&i| labels[i]).collect(),
        dataset: data.name.clone(),
        classes: names,
        source_sha256: files.map(|f| (FILES[f].to_string(), data.files_sha256[f].clone())).collect(),
        selection: testset::describe_selection(args.per_class, if args.split == "train" { "training" } else { "test" }),
    };
    let mut bytes = testset::to_bytes(&set).map_err(|e| e.to_string())?;
    if args.out.extension().is_some_and(|e| e == "gz") {
        bytes = testset::gzip(&bytes);
    }
    atomic_write(&args.out, &bytes).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("{}: {} images of {} ({}), {} bytes", args.out.display(), set.len(), data.name, set.selection, bytes.len());
    Ok(())
}
