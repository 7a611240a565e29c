//! The architecture's rules (ARCHITECTURE.md, "Invariants"), checked on the workspace as it is:
//! every crate has a layer, dependencies point down the layers, the domain crates do not know
//! the async runtime, and no module reaches back up into its crate root's state. A new crate,
//! a new edge or a new import that breaks a rule fails here with the rule it breaks.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The layers, lowest first. A crate may depend on crates of lower layers; within a layer only
/// where `SAME_LAYER_ALLOWED` says so.
const LAYERS: [(&str, &[&str]); 6] = [
    // The vocabulary: nations, times, geodesy, the wire format.
    ("foundation", &["vocab", "geodesy", "wire"]),
    // Synchronous domain logic: no IO runtime, no sockets.
    ("domain", &["flight", "fusion", "ledger", "alert", "cti", "ingest", "sim", "eval", "pki", "telemetry", "access"]),
    // The log as a running service (files or JetStream): the one way in to the log.
    ("io", &["jetstore", "journal"]),
    // What faces the outside: partners, analysts, TAK. Each stands alone.
    ("adapters", &["federation", "taxii", "cot"]),
    // One nation's server, composed from the above.
    ("composition", &["node"]),
    // The command line.
    ("binary", &["trilink"]),
];

/// Layers whose crates may build on one another (domain crates compose: fusion uses flight).
/// Adapters may not: each depends on narrow handles below it, never on another adapter.
const SAME_LAYER_ALLOWED: [&str; 3] = ["foundation", "domain", "io"];

/// Crates a domain or foundation crate may not declare: the async runtime and servers.
/// (`wire` carries tonic for its generated gRPC stubs, which the domain never calls.)
const RUNTIME_CRATES: [&str; 5] = ["tokio", "tonic", "axum", "hyper", "tower"];

fn layer_of(name: &str) -> Option<(usize, &'static str)> {
    LAYERS.iter().enumerate().find(|(_, (_, crates))| crates.contains(&name)).map(|(i, (l, _))| (i, *l))
}

fn metadata() -> Value {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(crate::harness::repo())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON")
}

/// Each workspace crate's normal and build dependencies (not dev-dependencies: tests may reach
/// anywhere), and where its sources are.
fn workspace() -> BTreeMap<String, (Vec<String>, std::path::PathBuf)> {
    let meta = metadata();
    let mut crates = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name").to_string();
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null() || d["kind"] == "build")
            .map(|d| d["name"].as_str().expect("dependency name").to_string())
            .collect();
        let dir = Path::new(p["manifest_path"].as_str().expect("manifest")).parent().expect("dir").to_path_buf();
        crates.insert(name, (deps, dir));
    }
    crates
}

/// The broken rules of a workspace's dependency edges, one line each.
fn edge_violations(crates: &BTreeMap<String, (Vec<String>, std::path::PathBuf)>) -> Vec<String> {
    let mut broken = Vec::new();
    for (name, (deps, _)) in crates {
        let Some((level, layer)) = layer_of(name) else {
            broken.push(format!("crate {name} has no layer: add it to LAYERS here and to ARCHITECTURE.md"));
            continue;
        };
        for dep in deps {
            if let Some((dep_level, dep_layer)) = layer_of(dep) {
                let down = dep_level < level;
                let sideways = dep_level == level && SAME_LAYER_ALLOWED.contains(&layer);
                if !(down || sideways) {
                    broken.push(format!("{name} ({layer}) depends on {dep} ({dep_layer}): dependencies point down"));
                }
            } else if level <= 1 && name != "wire" && RUNTIME_CRATES.contains(&dep.as_str()) {
                broken.push(format!("{name} ({layer}) depends on {dep}: the domain does no async IO"));
            }
        }
    }
    broken
}

/// Every Rust file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Types a crate root defines (`pub struct X`, `struct X`, `pub enum X`, `pub type X`).
fn root_types(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = ["pub struct ", "struct ", "pub enum ", "enum ", "pub type ", "type "]
                .iter()
                .find_map(|p| l.strip_prefix(p))?;
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Modules that name a type of their crate root (`crate::App`, `use crate::{App, …}`): the
/// root composes its modules; a module that reaches back up into the root's state ties every
/// module to the whole crate.
fn upward_imports(crate_name: &str, src: &Path) -> Vec<String> {
    let Ok(lib) = std::fs::read_to_string(src.join("lib.rs")) else { return Vec::new() };
    let types = root_types(&lib);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut broken = Vec::new();
    for f in files.iter().filter(|f| f.file_name().is_some_and(|n| n != "lib.rs" && n != "main.rs")) {
        let text = std::fs::read_to_string(f).expect("source is readable");
        for t in &types {
            let direct = format!("crate::{t}");
            let in_braces = text.lines().any(|l| {
                l.trim_start().starts_with("use crate::{")
                    && l.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == t)
            });
            let named = text.match_indices(&direct).any(|(i, _)| {
                !text[i + direct.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if named || in_braces {
                broken.push(format!("{crate_name}: {} names its crate root's {t}", f.display()));
            }
        }
    }
    broken
}

#[test]
fn dependencies_point_down_the_layers() {
    let crates = workspace();
    let broken = edge_violations(&crates);
    assert!(broken.is_empty(), "the dependency rule is broken:\n{}", broken.join("\n"));
    // Every layer names only crates that exist, so the table cannot rot.
    for (layer, names) in LAYERS {
        for n in names {
            assert!(crates.contains_key(*n), "LAYERS names {n} in {layer}, which is not a workspace crate");
        }
    }
}

#[test]
fn the_rule_catches_a_forbidden_edge() {
    // The check itself: the workspace as it is, with one edge the rule forbids added at a time.
    for (from, to) in [("fusion", "node"), ("taxii", "federation"), ("cot", "node"), ("ledger", "journal")] {
        let mut crates = workspace();
        crates.get_mut(from).expect("crate").0.push(to.to_string());
        let broken = edge_violations(&crates);
        assert!(broken.iter().any(|b| b.starts_with(from) && b.contains(to)), "{from} -> {to} passed: {broken:?}");
    }
    let mut crates = workspace();
    crates.get_mut("fusion").expect("crate").0.push("tokio".into());
    assert!(edge_violations(&crates).iter().any(|b| b.contains("tokio")));
    crates.insert("newcomer".into(), (Vec::new(), std::path::PathBuf::new()));
    assert!(edge_violations(&crates).iter().any(|b| b.contains("newcomer has no layer")));
}

/// The layers that hold running state (stores, servers, links): from `io` up. A domain crate's
/// root may define its vocabulary (fusion's `State` and `Cov`, ledger's `Hash`) for its modules.
const STATEFUL_FROM: usize = 2;

#[test]
fn no_module_reaches_up_into_its_crate_root() {
    let mut broken = Vec::new();
    for (name, (_, dir)) in workspace() {
        if layer_of(&name).is_some_and(|(level, _)| level >= STATEFUL_FROM) {
            broken.extend(upward_imports(&name, &dir.join("src")));
        }
    }
    assert!(broken.is_empty(), "modules import their crate root's state:\n{}", broken.join("\n"));
}

#[test]
fn domain_sources_do_not_use_the_runtime() {
    let mut broken = Vec::new();
    for (name, (_, dir)) in workspace() {
        if layer_of(&name).is_none_or(|(level, _)| level > 1) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).expect("source is readable");
            if text.contains("tokio::") || text.contains("async fn ") {
                broken.push(format!("{name}: {}", f.display()));
            }
        }
    }
    assert!(broken.is_empty(), "domain crates use the async runtime:\n{}", broken.join("\n"));
}

#[test]
fn no_doc_comment_holds_a_rust_example() {
    // `.ci/run` runs the tests with cargo-nextest, which does not run doctests: a Rust example
    // in a doc comment would be compiled by nobody. Examples are tests here, or `text` blocks.
    let mut broken = Vec::new();
    for (name, (_, dir)) in workspace() {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).expect("source is readable");
            for (i, line) in text.lines().enumerate() {
                let l = line.trim_start();
                let Some(fence) = l.strip_prefix("//!").or_else(|| l.strip_prefix("///")) else { continue };
                let fence = fence.trim();
                if let Some(lang) = fence.strip_prefix("```") {
                    let opening =
                        !lang.is_empty() || text.lines().take(i).filter(|p| p.contains("```")).count() % 2 == 0;
                    if opening && (lang.is_empty() || lang.starts_with("rust")) {
                        broken.push(format!("{name}: {}:{}", f.display(), i + 1));
                    }
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "doc comments hold Rust examples nobody runs (use ```text or a test):\n{}",
        broken.join("\n")
    );
}
