//! The house rules a reader relies on: no two files of the crate import each other (directly
//! or round a longer loop), and no file grows past about 400 lines without saying why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if !["pkg", "node_modules"].contains(&e.file_name().to_string_lossy().as_ref()) {
                walk(&p, ext, out);
            }
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

type Module = Vec<String>;

/// The module a file under `crate/` defines (`train/mod.rs` -> [train]); `None` for binaries.
fn module_of(rel: &str) -> Option<Module> {
    let mut parts: Module = rel.trim_end_matches(".rs").split('/').map(String::from).collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    Some(parts)
}

/// Source without comments and without the `#[cfg(test)] mod tests` block at the end.
fn code(src: &str) -> String {
    let body = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    body.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The paths a `use` tree names: `crate::a::{b, c::D}` -> `crate::a::b`, `crate::a::c::D`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else { return vec![tree.split(" as ").next().unwrap_or("").trim().to_string()] };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items.into_iter().filter(|i| !i.trim().is_empty()).flat_map(expand).map(|i| format!("{prefix}::{i}")).collect()
}

/// Every `crate::`, `super::` or `self::` path in `code`: from `use` items and inline paths.
fn paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for stmt in code.split(';') {
        let s = stmt.trim();
        let s = s.strip_prefix("pub ").unwrap_or(s);
        let s = s.strip_prefix("pub(crate) ").unwrap_or(s);
        if let Some(tree) = s.rsplit("use ").next().filter(|_| s.contains("use ")) {
            let tree = tree.trim();
            if ["crate::", "super::", "self::"].iter().any(|p| tree.starts_with(p)) {
                out.extend(expand(tree).into_iter().map(|p| p.replace([' ', '\n'], "")));
            }
        }
    }
    for start in ["crate::", "super::"] {
        for (i, _) in code.match_indices(start) {
            if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let p: String = code[i..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            out.insert(p.trim_end_matches(':').to_string());
        }
    }
    out
}

struct Crate {
    modules: BTreeMap<Module, String>,
    /// Per module, the names it re-exports (`pub use x::Name`) and the path they come from.
    reexports: BTreeMap<Module, BTreeMap<String, String>>,
}

impl Crate {
    /// The file `path` (seen from `from`) leads to: the deepest module on it, or the module a
    /// re-exported name there comes from.
    fn resolve(&self, from: &Module, path: &str, depth: usize) -> Option<Module> {
        let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let mut at: Module = match segs.first() {
            Some(&"crate") => Vec::new(),
            Some(&"super") => from[..from.len().saturating_sub(1)].to_vec(),
            Some(&"self") => from.clone(),
            _ => from.clone(),
        };
        if matches!(segs.first(), Some(&"crate" | &"super" | &"self")) {
            segs.remove(0);
        }
        while segs.first() == Some(&"super") {
            at.pop();
            segs.remove(0);
        }
        let full: Module = at.into_iter().chain(segs.iter().map(|s| s.to_string())).collect();
        let i = (0..=full.len()).rev().find(|&i| self.modules.contains_key(&full[..i]))?;
        let m = full[..i].to_vec();
        if let (Some(name), true) = (full.get(i), depth < 8 && &m != from) {
            if let Some(src) = self.reexports.get(&m).and_then(|r| r.get(name)) {
                return self.resolve(&m, src, depth + 1);
            }
        }
        Some(m)
    }
}

#[test]
fn no_two_files_import_each_other() {
    let base = root().join("crate");
    let mut files = Vec::new();
    walk(&base, "rs", &mut files);
    let mut krate = Crate { modules: BTreeMap::new(), reexports: BTreeMap::new() };
    for f in &files {
        let rel = f.strip_prefix(&base).unwrap_or(f).to_string_lossy().replace('\\', "/");
        let Some(m) = module_of(&rel) else { continue };
        let src = code(&std::fs::read_to_string(f).unwrap_or_default());
        let mut re = BTreeMap::new();
        for stmt in src.split(';').map(str::trim).filter(|s| s.starts_with("pub use ")) {
            for p in expand(&stmt["pub use ".len()..]) {
                let p = p.replace([' ', '\n'], "");
                if let Some(name) = p.rsplit("::").next() {
                    re.insert(name.to_string(), p.clone());
                }
            }
        }
        krate.reexports.insert(m.clone(), re);
        krate.modules.insert(m, src);
    }
    assert!(krate.modules.len() > 15, "found only {} modules", krate.modules.len());

    let mut edges: BTreeMap<&Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, src) in &krate.modules {
        for p in paths(src) {
            if let Some(t) = krate.resolve(m, &p, 0) {
                if &t != m && !t.is_empty() {
                    edges.entry(m).or_default().insert(t);
                }
            }
        }
    }
    let name = |m: &Module| m.join("::");
    let mut cycles = BTreeSet::new();
    for start in edges.keys() {
        // Depth-first from `start`; a path back to it is a cycle.
        let mut stack = vec![(vec![(*start).clone()], (*start).clone())];
        while let Some((path, at)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == *start {
                    let mut c: Vec<String> = path.iter().map(name).collect();
                    c.sort();
                    cycles.insert(c.join(" <-> "));
                } else if !path.contains(next) && path.len() < 8 {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((p, next.clone()));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files that import each other (directly or round a loop):\n  {}",
        cycles.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

/// A file may pass this many lines only if its opening comment says why, with this phrase.
const MAX_LINES: usize = 400;
const REASON: &str = "Longer than 400 lines because";

#[test]
fn no_file_is_long_without_a_reason() {
    let mut files = Vec::new();
    walk(&root().join("crate"), "rs", &mut files);
    walk(&root().join("shaders"), "wgsl", &mut files);
    walk(&root().join("www"), "js", &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    let mut long = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap_or_default();
        let lines = src.lines().count();
        let head: String = src.lines().take_while(|l| l.starts_with("//")).collect::<Vec<_>>().join(" ");
        if lines > MAX_LINES && !head.contains(REASON) {
            long.push(format!("{} has {lines} lines and its opening comment does not say why (\"{REASON} ...\")", f.display()));
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}
