//! The README's layout table and ARCHITECTURE.md's code map are how a newcomer finds their way,
//! so they must match the tree: every path they name exists, and every source file is on the map.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// The text between the heading `heading` and the next heading of the same or a higher level.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text.find(heading).unwrap_or_else(|| panic!("no {heading:?} section"));
    let level = heading.chars().take_while(|&c| c == '#').count();
    let body = &text[start + heading.len()..];
    let end = body
        .match_indices("\n#")
        .find(|(i, _)| body[i + 1..].chars().take_while(|&c| c == '#').count() <= level)
        .map_or(body.len(), |(i, _)| i);
    &body[..end]
}

/// Every `code span` in `text`.
fn spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

const SOURCE_EXTENSIONS: [&str; 7] = ["rs", "wgsl", "js", "mjs", "sh", "html", "css"];

fn is_source(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| SOURCE_EXTENSIONS.contains(&e))
}

/// Source files under `dir` (relative to the repository), skipping generated and fuzzing output.
fn sources(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root().join(dir)];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !["pkg", "target", "corpus", "artifacts", "node_modules", "coverage"].contains(&name.as_str()) {
                    stack.push(p);
                }
            } else if is_source(&p) {
                out.push(p.strip_prefix(root()).unwrap_or(&p).to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

const TOP: [&str; 4] = ["crate/", "shaders/", "www/", "tests/"];

/// Generated output the docs may name although a clean checkout lacks it.
const GENERATED: [&str; 1] = ["www/pkg/"];

/// A named path must exist; a bare file name must be the name of some source file.
fn check_names(doc: &str, text: &str, all: &[String], problems: &mut Vec<String>) {
    let basenames: BTreeSet<&str> = all.iter().filter_map(|p| p.rsplit('/').next()).collect();
    for s in spans(text) {
        let s = s.trim();
        if TOP.iter().any(|t| s.starts_with(t)) && !s.contains(' ') && !s.contains('*') {
            if !root().join(s).exists() && !GENERATED.contains(&s) {
                problems.push(format!("{doc} names `{s}`, which does not exist"));
            }
        } else if !s.contains('/') && !s.contains(' ') && !s.contains('*') && is_source(Path::new(s)) && !basenames.contains(s) {
            problems.push(format!("{doc} names `{s}`, but no source file has that name"));
        }
    }
}

#[test]
fn layout_table_and_code_map_match_the_tree() {
    let readme = read("README.md");
    let arch = read("ARCHITECTURE.md");
    let layout = section(&readme, "## Layout");
    let map = section(&arch, "## Code map");
    let all: Vec<String> = TOP.iter().flat_map(|t| sources(t.trim_end_matches('/'))).collect();
    assert!(all.len() > 30, "the walk found only {} source files", all.len());

    let mut problems = Vec::new();
    check_names("README.md's layout table", layout, &all, &mut problems);
    check_names("ARCHITECTURE.md's code map", map, &all, &mut problems);

    // Every Rust source, shader and page script is on the code map, by its path below its top
    // folder (`train/adam.rs`), or by its name under its folder's heading. `mod.rs` files are
    // their folder, which must be named.
    let named: Vec<&str> = spans(map).into_iter().map(str::trim).collect();
    for p in all.iter().filter(|p| p.starts_with("crate/") || p.starts_with("shaders/") || (p.starts_with("www/") && p.ends_with(".js"))) {
        let (top, rest) = p.split_once('/').unwrap_or(("", p));
        let (folder, file) = rest.rsplit_once('/').unwrap_or(("", rest));
        let wanted: Vec<String> = if file == "mod.rs" {
            vec![format!("{folder}/"), format!("{top}/{folder}/")]
        } else {
            vec![rest.to_string(), file.to_string(), p.clone()]
        };
        if !named.iter().any(|n| wanted.iter().any(|w| n == w || n.ends_with(&format!("/{w}")))) {
            problems.push(format!("{p} is not on ARCHITECTURE.md's code map"));
        }
    }
    assert!(problems.is_empty(), "the docs do not match the tree:\n  {}", problems.join("\n  "));
}
