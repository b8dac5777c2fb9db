//! The page's model menu lists `www/models/models.json`: each entry must describe its file truly
//! (kind and data set as its metadata says), and the manifest must list exactly the shipped models.
use latent_explorer::weights;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

const KINDS: [&str; 3] = ["vae", "ae", "pca"];

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www/models")
}

/// The manifest's entries, each an object with string fields.
fn manifest() -> Vec<Value> {
    let path = models_dir().join("models.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    json["models"].as_array().unwrap_or_else(|| panic!("{} has no \"models\" list", path.display())).clone()
}

fn field<'a>(entry: &'a Value, key: &str) -> &'a str {
    entry[key].as_str().unwrap_or_else(|| panic!("manifest entry {entry} has no string \"{key}\""))
}

#[test]
fn manifest_entries_describe_their_files() {
    let entries = manifest();
    let mut files = BTreeSet::new();
    for entry in &entries {
        let file = field(entry, "file");
        assert!(file.ends_with(".safetensors") && !file.contains('/'), "{file}: not a model file name in www/models");
        assert!(files.insert(file), "{file} is listed twice");
        assert!(!field(entry, "title").is_empty(), "{file} has an empty title");
        let kind = field(entry, "kind");
        assert!(KINDS.contains(&kind), "{file}: kind {kind} is none of {KINDS:?}");
        let dataset = field(entry, "dataset");
        // A listed file not shipped yet is the page's "not on this server" case; one that is
        // shipped must say the same as the manifest.
        let bytes = std::fs::read(models_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let model = weights::from_bytes(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let file_kind = model.metadata.get("kind").map_or("vae", String::as_str);
        assert_eq!(file_kind, kind, "{file}: the manifest says kind {kind}, the file {file_kind}");
        let data: Value = serde_json::from_str(model.metadata.get("dataset").map_or("{}", String::as_str)).unwrap_or(Value::Null);
        assert_eq!(data["name"].as_str(), Some(dataset), "{file}: the manifest says data set {dataset}, the file {}", data["name"]);
    }
    assert!(files.contains("mnist-2d.safetensors"), "the default model is not listed");
}

/// The menu lists exactly the shipped models, and each has its training log beside it.
#[test]
fn manifest_lists_exactly_the_shipped_models() {
    let listed: BTreeSet<String> = manifest().iter().map(|e| field(e, "file").to_string()).collect();
    let shipped: BTreeSet<String> = std::fs::read_dir(models_dir())
        .expect("www/models")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        // Test-set files (the compact test subsets) are data, not models for the menu.
        .filter(|name| name.ends_with(".safetensors") && !name.contains("testset"))
        .collect();
    assert_eq!(listed, shipped, "www/models/models.json must list exactly the shipped models");
    for file in &shipped {
        let log = models_dir().join(file.replace(".safetensors", ".train.jsonl"));
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{file} has no training log {}: {e}", log.display()));
        assert!(
            text.lines().count() >= 1 && text.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()),
            "{}: not JSON lines",
            log.display()
        );
    }
}

/// The numbers the README's "things to try" tour quotes are the shipped files' figures: each
/// (file, metadata key, scale, decimals) formatted as the tour writes it must appear in it. A
/// retrained model with other figures fails here until the words follow. (The page's tour takes
/// its figures from `www/js/tour.js`, which `tests/i18n.test.mjs` checks field by field.)
#[test]
fn the_tour_quotes_the_shipped_figures() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let meta = |file: &str| weights::from_bytes(&std::fs::read(models_dir().join(file)).expect(file)).expect(file).metadata;
    let value = |file: &str, key: &str| -> f64 {
        meta(file).get(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{file} has no numeric {key}"))
    };
    let share = |file: &str, class: usize| -> f64 {
        let shares: Vec<f64> = serde_json::from_str(&meta(file)["prior_share_by_class"]).expect("prior_share_by_class");
        shares[class]
    };
    let quoted = [
        format!("{:.1}%", 100.0 * value("mnist-2d-ae.safetensors", "codes_in_prior")),
        format!("{:.1}%", 100.0 * value("mnist-2d.safetensors", "codes_in_prior")),
        format!("{:.0}%", 100.0 * value("mnist-2d.safetensors", "prior_coverage")),
        format!("{:.0}%", 100.0 * value("mnist-2d-ae.safetensors", "prior_coverage")),
        format!("{:.1}%", 100.0 * share("mnist-2d-ae.safetensors", 1)),
        format!("{:.1}%", 100.0 * share("mnist-2d-ae.safetensors", 6)),
        format!("{:.1}%", 100.0 * value("mnist-2d-beta4.safetensors", "prior_coverage")),
        format!("{:.1}", value("mnist-2d-beta4.safetensors", "test_reconstruction")),
        format!("{:.1}", value("mnist-2d.safetensors", "test_reconstruction")),
        format!("{:.1}", value("mnist-2d-pca.safetensors", "test_mse")),
        format!("{:.1}", value("mnist-2d-ae.safetensors", "test_mse")),
    ];
    for q in &quoted {
        assert!(readme.contains(q.as_str()), "the README's tour does not quote {q}");
    }
}
