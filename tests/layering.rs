//! Fails on a forbidden `crate::…` edge between modules.
//!
//! The rules are the dependency direction of docs/architecture.md:
//! front ends reach masterd only over LUXI; the node side never reads the
//! cluster config; data modules and `sys` stay at the bottom.

// An integration-test crate is all test code; the lint is for src/.
#![allow(clippy::tests_outside_test_module)]

use std::path::{Path, PathBuf};

/// (module prefix of the file, forbidden module prefix, why)
const RULES: &[(&str, &str, &str)] = &[
    (
        "query",
        "config::store",
        "queries read a config snapshot; they never write it",
    ),
    (
        "query",
        "daemons",
        "the query engine is pure; masterd calls it, not the other way",
    ),
    (
        "cli",
        "config::store",
        "front ends never touch the config writer; ask masterd over LUXI",
    ),
    (
        "cli",
        "config::validate",
        "front ends never touch config internals",
    ),
    ("cli", "jobs", "front ends never import the job queue"),
    ("cli", "cmdlib", "front ends never import logical units"),
    ("cli", "locking", "front ends never import the lock manager"),
    (
        "cli",
        "daemons::masterd",
        "front ends reach masterd only over LUXI",
    ),
    ("cli", "backend", "front ends never call node-side code"),
    (
        "daemons::rapi",
        "config",
        "RAPI holds no config; it translates to LUXI",
    ),
    ("daemons::rapi", "jobs", "RAPI never imports the job queue"),
    (
        "daemons::rapi",
        "cmdlib",
        "RAPI never imports logical units",
    ),
    (
        "daemons::watcher",
        "config::store",
        "the watcher asks masterd over LUXI",
    ),
    (
        "daemons::watcher",
        "jobs",
        "the watcher never imports the job queue",
    ),
    (
        "daemons::watcher",
        "cmdlib",
        "the watcher never imports logical units",
    ),
    (
        "backend",
        "config::store",
        "backend never reads the cluster config; the RPC payload carries it",
    ),
    (
        "backend",
        "ssconf",
        "backend gets what it needs in the RPC payload",
    ),
    ("backend", "cmdlib", "the node side never runs master logic"),
    (
        "hv",
        "config::store",
        "hypervisors never read the cluster config",
    ),
    (
        "storage",
        "config::store",
        "storage never reads the cluster config",
    ),
    (
        "os",
        "config::store",
        "OS definitions never read the cluster config",
    ),
    ("hv", "cmdlib", "the node side never runs master logic"),
    ("storage", "cmdlib", "the node side never runs master logic"),
    ("os", "cmdlib", "the node side never runs master logic"),
    (
        "cmdlib",
        "os",
        "logical units ask a node over rpc, never run OS scripts",
    ),
    (
        "cmdlib",
        "hv",
        "logical units ask a node over rpc, never the hypervisor",
    ),
    (
        "cmdlib",
        "storage",
        "logical units ask a node over rpc, never storage",
    ),
    (
        "cmdlib",
        "backend",
        "logical units ask a node over rpc, even the master itself",
    ),
    (
        "confd",
        "config::store",
        "confd reads its copy of config.data; it never writes the config",
    ),
    ("confd", "daemons", "the confd library knows no daemon"),
    ("confd", "cli", "the confd library knows no front end"),
    ("luxi", "config", "LUXI is transport; it knows no config"),
    ("luxi", "cli", "LUXI is below the front ends"),
    (
        "config",
        "cli",
        "config is data and its writer; it knows no front end",
    ),
    ("config", "daemons", "config knows no daemon"),
    ("config", "luxi", "config knows no transport"),
    ("sys", "config", "sys is the bottom layer"),
    ("sys", "cli", "sys is the bottom layer"),
    ("sys", "daemons", "sys is the bottom layer"),
    ("sys", "luxi", "sys is the bottom layer"),
    ("paths", "config", "paths is the bottom layer"),
];

/// Per-file exceptions: (file module, allowed prefix, why).
const EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// The module path of a source file: src/cli/gnt_cluster.rs → cli::gnt_cluster.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("file under src");
    let s = rel.with_extension("").to_string_lossy().replace('/', "::");
    s.trim_end_matches("::mod").to_string()
}

/// Every `crate::a::b` path mentioned in `text`, with brace groups expanded.
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let preceded_ok = i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        rest = &rest[i + "crate::".len()..];
        if preceded_ok {
            expand(rest, String::new(), &mut out);
        }
    }
    out
}

fn expand(text: &str, prefix: String, out: &mut Vec<String>) {
    let ident_end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let path = text[..ident_end].trim_end_matches(':');
    let full = if prefix.is_empty() {
        path.to_string()
    } else {
        format!("{prefix}::{path}")
    };
    if text[ident_end..].starts_with('{') {
        let body = &text[ident_end + 1..];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(body[start..i].trim(), full.clone(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(body[start..i].trim(), full.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
    } else if !full.is_empty() {
        out.push(full);
    }
}

fn starts_with_module(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

fn violations(module: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for used in crate_paths(text) {
        for (from, forbidden, why) in RULES {
            if starts_with_module(module, from) && starts_with_module(&used, forbidden) {
                let excused = EXCEPTIONS
                    .iter()
                    .any(|(m, allowed, _)| *m == module && starts_with_module(&used, allowed));
                if !excused {
                    found.push(format!("{module} uses crate::{used}: {why}"));
                }
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_forbidden_edges() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 10,
        "expected the source tree at {}",
        src.display()
    );
    let mut all = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read source");
        all.extend(violations(&module_of(&src, &f), &text));
    }
    assert!(
        all.is_empty(),
        "forbidden module edges:\n{}",
        all.join("\n")
    );
}

#[test]
fn checker_catches_edges_in_all_spellings() {
    let text = "use crate::{luxi::client::Client, config::{store::ConfigStore, objects}};\nfn f() { crate::jobs::queue::submit(); }\n// crate::cmdlib in a comment is fine\n";
    let v = violations("cli::gnt_node", text);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].contains("config::store::ConfigStore"));
    assert!(v[1].contains("jobs::queue::submit"));
    assert!(violations("daemons::masterd", text).is_empty());
}
