//! The architecture rules of docs/architecture.md, checked on the source: no module cycle in
//! either crate or in plugin-api, no HTTP server crate named in the core, no source file over
//! 500 lines outside its tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The text of a file without its `#[cfg(test)] mod tests` (which sits at the end by
/// convention here).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| text.get(..at).unwrap_or(text))
}

/// Top-level module → the top-level modules it names through `crate::`, code only (comments
/// are not dependencies).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("name")
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        let uses = graph.entry(top.clone()).or_default();
        for line in without_tests(&text).lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    uses.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let here = path.last().cloned().unwrap_or_else(|| start.to_string());
    for next in graph.get(&here).into_iter().flatten() {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_string());
            return Some(cycle);
        }
        if !path.contains(next) && graph.contains_key(next) {
            path.push(next.clone());
            if let Some(c) = cycle_from(graph, start, path) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_module_cycles() {
    for src in ["host/core/src", "host/src", "plugin-api/src"] {
        let graph = module_graph(&workspace().join(src));
        assert!(graph.len() > 3, "{src}: modules found: {graph:?}");
        for module in graph.keys() {
            let mut path = vec![module.clone()];
            if let Some(cycle) = cycle_from(&graph, module, &mut path) {
                panic!("{src}: module cycle {}", cycle.join(" → "));
            }
        }
    }
}

#[test]
fn the_core_names_no_http_server_crate() {
    let core = workspace().join("host/core");
    let manifest = std::fs::read_to_string(core.join("Cargo.toml")).expect("manifest");
    for file in rust_files(&core.join("src")) {
        let text = std::fs::read_to_string(&file).expect("read");
        for name in ["axum", "hyper", "tower", "http_body"] {
            assert!(!text.contains(name), "{} names `{name}`", file.display());
        }
    }
    for name in ["axum", "hyper", "tower", "http-body"] {
        assert!(
            !manifest.lines().any(|l| l.trim_start().starts_with(name)),
            "host/core/Cargo.toml depends on {name}"
        );
    }
}

#[test]
fn no_source_file_over_500_lines_outside_tests() {
    for src in ["host/core/src", "host/src", "plugin-api/src"] {
        for file in rust_files(&workspace().join(src)) {
            let text = std::fs::read_to_string(&file).expect("read");
            let lines = without_tests(&text).lines().count();
            assert!(lines <= 500, "{}: {lines} lines", file.display());
        }
    }
}
