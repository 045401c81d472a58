//! Contract 7: after every `Engine::parse` on one engine, `Catalog::errors` is the complete
//! current list of file-level and node-level errors, equal to what a fresh parse reports, with
//! project-relative paths only. A file that grows over the size limit, a new symlink out of the
//! checkout and broken Jinja each add an error; fixing them removes it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use backflow_dbt::MAX_FILE_BYTES;
use backflow_dbt::{parse_project, Engine, NodeError, ParseOptions, ProjectError};
use std::fs;
use std::path::Path;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}

fn opts() -> ParseOptions {
    ParseOptions {
        target_schema: "s".into(),
        ..ParseOptions::default()
    }
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "dbt_project.yml",
        "name: p\nversion: '1'\nconfig-version: 2\nmodels:\n  p:\n    +materialized: table\n",
    );
    write(d, "models/a.sql", "select {{ twice(1) }} as id");
    write(d, "models/b.sql", "select * from {{ ref('a') }}");
    write(d, "models/big.sql", "select 1 as id");
    write(
        d,
        "macros/m.sql",
        "{% macro twice(x) %}{{ x }} * 2{% endmacro %}",
    );
    dir
}

/// Parses with the engine, checks the list equals a fresh parse's and holds no absolute
/// path, and returns it as (file, message) pairs.
fn errors_after(engine: &mut Engine, dir: &Path, outside: &Path, step: &str) -> Vec<NodeError> {
    let got = engine.parse(dir).unwrap().errors.clone();
    let fresh = parse_project(dir, &opts()).unwrap().errors;
    assert_eq!(
        got, fresh,
        "{step}: engine errors differ from a fresh parse"
    );
    let canonical = dir.canonicalize().unwrap();
    for e in &got {
        for root in [dir, canonical.as_path(), outside] {
            let root = root.to_string_lossy();
            assert!(
                !e.message.contains(root.as_ref()) && !e.file.contains(root.as_ref()),
                "{step}: error names an absolute path: {e:?}"
            );
        }
    }
    got
}

fn files(errors: &[NodeError]) -> Vec<&str> {
    errors.iter().map(|e| e.file.as_str()).collect()
}

#[cfg(unix)]
#[test]
fn error_list_follows_each_change_on_one_engine() {
    let dir = project();
    let d = dir.path();
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path();
    write(o, "secret.sql", "select 'secret'");
    let mut engine = Engine::new(opts());

    assert_eq!(errors_after(&mut engine, d, o, "clean"), Vec::new());

    // a model file grows over the size limit
    let big = "x".repeat(MAX_FILE_BYTES as usize + 1);
    write(d, "models/big.sql", &big);
    let errs = errors_after(&mut engine, d, o, "file too big");
    assert_eq!(files(&errs), ["models/big.sql"], "{errs:?}");
    assert_eq!(
        errs[0].message,
        format!(
            "file models/big.sql is {} bytes, over the limit of {MAX_FILE_BYTES} bytes",
            MAX_FILE_BYTES + 1
        )
    );
    assert!(!engine.catalog().unwrap().nodes.contains_key("model.p.big"));

    // nothing changed: the error stays
    let again = errors_after(&mut engine, d, o, "no change");
    assert_eq!(again, errs);

    // an unrelated model edit (the in-place path) keeps the file error
    write(d, "models/b.sql", "select id from {{ ref('a') }}");
    assert_eq!(errors_after(&mut engine, d, o, "model edit"), errs);

    // a new symlink out of the checkout
    std::os::unix::fs::symlink(o.join("secret.sql"), d.join("models/escape.sql")).unwrap();
    let errs = errors_after(&mut engine, d, o, "escaping symlink");
    assert_eq!(
        files(&errs),
        ["models/escape.sql", "models/big.sql"],
        "{errs:?}"
    );
    assert_eq!(
        errs[0].message,
        "symlink models/escape.sql points outside the project checkout; refusing to follow it"
    );

    // a symlinked directory out of the checkout
    std::os::unix::fs::symlink(o, d.join("macros/vendored")).unwrap();
    let errs = errors_after(&mut engine, d, o, "escaping directory symlink");
    assert_eq!(
        files(&errs),
        ["macros/vendored", "models/escape.sql", "models/big.sql"],
        "{errs:?}"
    );

    // the big file is fixed
    write(d, "models/big.sql", "select 2 as id");
    let errs = errors_after(&mut engine, d, o, "big file fixed");
    assert_eq!(
        files(&errs),
        ["macros/vendored", "models/escape.sql"],
        "{errs:?}"
    );
    assert!(engine.catalog().unwrap().nodes.contains_key("model.p.big"));

    // the symlinks are removed
    fs::remove_file(d.join("models/escape.sql")).unwrap();
    fs::remove_file(d.join("macros/vendored")).unwrap();
    assert_eq!(
        errors_after(&mut engine, d, o, "symlinks removed"),
        Vec::new()
    );

    // broken Jinja in a model: a node error (the in-place model-edit path)
    write(d, "models/a.sql", "select {{ twice(1 }} as id");
    let errs = errors_after(&mut engine, d, o, "broken jinja");
    assert_eq!(files(&errs), ["models/a.sql"], "{errs:?}");
    assert_eq!(errs[0].unique_id.as_deref(), Some("model.p.a"));

    // fixed again
    write(d, "models/a.sql", "select {{ twice(2) }} as id");
    assert_eq!(errors_after(&mut engine, d, o, "jinja fixed"), Vec::new());

    // a macro file grows over the limit: the model calling it fails too
    write(d, "macros/m.sql", &big);
    let errs = errors_after(&mut engine, d, o, "macro too big");
    assert_eq!(errs[0].file, "macros/m.sql", "{errs:?}");
    assert!(errs
        .iter()
        .any(|e| e.unique_id.as_deref() == Some("model.p.a")));
    write(
        d,
        "macros/m.sql",
        "{% macro twice(x) %}{{ x }} * 2{% endmacro %}",
    );
    assert_eq!(errors_after(&mut engine, d, o, "macro fixed"), Vec::new());

    // broken YAML, then fixed
    write(d, "models/schema.yml", "version: 2\nmodels: [\n");
    let errs = errors_after(&mut engine, d, o, "broken yaml");
    assert_eq!(files(&errs), ["models/schema.yml"], "{errs:?}");
    write(d, "models/schema.yml", "version: 2\nmodels: []\n");
    assert_eq!(errors_after(&mut engine, d, o, "yaml fixed"), Vec::new());
}

#[test]
fn whole_project_errors_name_no_absolute_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::new(opts());
    let err = engine.parse(dir.path()).unwrap_err();
    assert!(matches!(err, ProjectError::NotADbtProject(_)), "{err:?}");
    let root = dir.path().canonicalize().unwrap();
    assert!(
        !err.to_string().contains(root.to_string_lossy().as_ref())
            && !err
                .to_string()
                .contains(dir.path().to_string_lossy().as_ref()),
        "{err}"
    );
}
