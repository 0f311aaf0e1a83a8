//! The dependency rule of `lib.rs`, checked: the lower layers never reach up, and the API
//! clients never reach into the server.
//!
//! The rule is `meta ← storage ← registry ← apiserver`; the scheduler, the kubelet, the
//! controller manager and their shared client code speak to the API over HTTPS only. This test
//! reads every source file of a layer and fails on any `crate::<module>` path the layer may
//! not name, so a shortcut across layers cannot land unnoticed.

use std::path::{Path, PathBuf};

/// The modules each layer may name, itself included. Layers not listed are not checked.
const ALLOWED: &[(&str, &[&str])] = &[
    ("meta", &["meta"]),
    ("storage", &["meta", "storage"]),
    ("registry", &["meta", "storage", "registry"]),
];

/// The modules an API client may never name: it reaches the server over HTTPS only.
const SERVER_SIDE: &[&str] = &["storage", "registry", "apiserver"];

/// The API clients.
const CLIENTS: &[&str] = &["scheduler", "kubelet", "controller", "client"];

/// Every `crate::<module>` a source text names, with its line number, comments left out.
fn crate_paths(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            // `foo_crate::x` is not ours: the match must start a path.
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a, b::c}`: every top-level name of the group.
                let mut depth = 0usize;
                let mut name = String::new();
                let mut first = true;
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            if !name.is_empty() {
                                found.push((index + 1, std::mem::take(&mut name)));
                            }
                            first = true;
                            continue;
                        }
                        _ => {}
                    }
                    if depth == 0 && first {
                        if c.is_alphanumeric() || c == '_' {
                            name.push(c);
                        } else if !name.is_empty() {
                            found.push((index + 1, std::mem::take(&mut name)));
                            first = false;
                        }
                    }
                }
                if !name.is_empty() {
                    found.push((index + 1, name));
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push((index + 1, name));
                }
            }
        }
    }
    found
}

/// The `.rs` files of one top-level module: `src/<module>.rs` and everything under `src/<module>/`.
fn module_files(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let single = src.join(format!("{module}.rs"));
    if single.is_file() {
        files.push(single);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every violation of the dependency rule in the tree under `src`.
fn violations(src: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |module: &str, forbidden: &dyn Fn(&str) -> bool| {
        let files = module_files(src, module);
        assert!(!files.is_empty(), "no source files for module {module}");
        for file in files {
            let source = std::fs::read_to_string(&file).expect("a source file is readable");
            for (line, named) in crate_paths(&source) {
                if forbidden(&named) {
                    out.push(format!(
                        "{}:{line}: {module} names crate::{named}",
                        file.display()
                    ));
                }
            }
        }
    };
    for (layer, allowed) in ALLOWED {
        let is_module = |name: &str| name.chars().all(|c| c.is_lowercase() || c == '_');
        // Anything that is a module of this crate and not allowed: upper layers, clients, tls.
        check(layer, &|named| {
            is_module(named) && !allowed.contains(&named) && src_has_module(src, named)
        });
    }
    for client in CLIENTS {
        check(client, &|named| SERVER_SIDE.contains(&named));
    }
    out
}

fn src_has_module(src: &Path, name: &str) -> bool {
    src.join(format!("{name}.rs")).is_file() || src.join(name).is_dir()
}

#[test]
fn lower_layers_and_clients_never_reach_up() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "the dependency rule meta ← storage ← registry ← apiserver (clients over HTTPS only) is broken:\n{}",
        found.join("\n")
    );
}

#[test]
fn crate_paths_sees_plain_grouped_and_nested_paths() {
    let source = "use crate::meta::ApiError;\n\
        use crate::{apiserver, storage::{self, Stored}, tls};\n\
        // crate::cluster in a comment does not count\n\
        let x = crate::registry::MAX_BODY_BYTES; // crate::kubelet\n\
        let y = my_crate::scheduler::f();\n";
    let names: Vec<_> = crate_paths(source);
    assert_eq!(
        names,
        vec![
            (1, "meta".to_string()),
            (2, "apiserver".to_string()),
            (2, "storage".to_string()),
            (2, "tls".to_string()),
            (4, "registry".to_string()),
        ]
    );
}

#[test]
fn a_reach_up_is_reported() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("registry")).expect("mkdir");
    std::fs::create_dir_all(src.join("apiserver")).expect("mkdir");
    for module in [
        "meta",
        "storage",
        "scheduler",
        "kubelet",
        "controller",
        "client",
    ] {
        std::fs::write(src.join(format!("{module}.rs")), "//! empty\n").expect("write");
    }
    std::fs::write(
        src.join("registry/store.rs"),
        "let n = crate::apiserver::MAX_BODY_BYTES;\n",
    )
    .expect("write");
    std::fs::write(src.join("apiserver/mod.rs"), "use crate::registry;\n").expect("write");
    std::fs::write(src.join("kubelet.rs"), "use crate::storage::Stored;\n").expect("write");
    let found = violations(src);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].ends_with("store.rs:1: registry names crate::apiserver"));
    assert!(found[1].ends_with("kubelet.rs:1: kubelet names crate::storage"));
}
