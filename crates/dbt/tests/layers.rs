//! The crate's stages depend one way: `yaml` and `adapters`, then `jinja` (the libraries),
//! then `ir` (shared types) → `load` → `parse` → `compile` → `data_tests` → `output` →
//! `incremental` (the full build and the engine) → `cli`. A module may name its own layer or a
//! lower one, never a higher one: this test reads every source file and fails on a
//! `crate::<higher layer>` path, so import cycles between stages cannot come back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::fs;
use std::path::{Path, PathBuf};

/// Layers from the bottom up; modules in one entry share a layer.
const LAYERS: &[&[&str]] = &[
    &["yaml", "adapters"],
    &["jinja"],
    &["ir"],
    &["load"],
    &["parse"],
    &["compile"],
    &["data_tests"],
    &["output"],
    &["incremental"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`src/parse/render.rs` → `parse`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::<module>` a line of code names (comments stripped), including the modules
/// inside `use crate::{a, b::c}` groups.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `backflow_dbt_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        } else {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let module = module_of(&src, file);
        let Some(own) = layer_of(&module) else {
            continue; // lib.rs and the binaries sit above every layer
        };
        checked += 1;
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for used in crate_paths(code) {
                let Some(theirs) = layer_of(&used) else {
                    continue; // crate-root items (`crate::parse_project`)
                };
                if theirs > own {
                    violations.push(format!(
                        "{}:{}: `{module}` names the higher layer `{used}`: {}",
                        file.strip_prefix(&src).unwrap().display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 40,
        "only {checked} files checked: is src/ laid out as expected?"
    );
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn group_imports_are_seen() {
    assert_eq!(
        crate_paths("use crate::{ir::error::NodeError, parse::Workspace};"),
        vec!["ir", "parse"]
    );
    assert_eq!(
        crate_paths("let x = crate::output::manifest::columns_json(&c);"),
        vec!["output"]
    );
    assert!(crate_paths("use backflow_dbt::Engine;").is_empty());
}
