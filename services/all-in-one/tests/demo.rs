//! Issue 10, point 8: `make demo` (demo/run.sh) run as a user runs it, with the built
//! `backflow` binary and the `demo_parts` example (local Git server, webhook receiver),
//! so the demo cannot rot: a dbt project in a local Git repository → the catalog → a
//! Reverse ETL model → an upsert sync to the receiver; the first run delivers every row
//! with an email, signed; after a change in the warehouse the second run delivers only
//! the updated and the added row.
//!
//! The example binary is built by `cargo test` for the whole workspace (`make test`);
//! alone, build it first: `cargo build -p backflow --example demo_parts`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn demo_parts() -> anyhow::Result<PathBuf> {
    // target/<profile>/deps/demo-<hash> → target/<profile>/examples/demo_parts
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow::anyhow!("no target directory above {}", exe.display()))?;
    let parts = profile_dir.join("examples/demo_parts");
    anyhow::ensure!(
        parts.exists(),
        "{} is missing: build it with `cargo build -p backflow --example demo_parts` (cargo test --workspace does)",
        parts.display()
    );
    Ok(parts)
}

/// The lines of `output` between the headings of steps `from` and `to`.
fn section<'a>(output: &'a str, from: &str, to: &str) -> Vec<&'a str> {
    output
        .lines()
        .skip_while(|line| !line.starts_with(from))
        .take_while(|line| !line.starts_with(to))
        .collect()
}

/// The records the receiver printed, sorted (a batch keeps the extract's order, which a
/// view over an updated table does not fix).
fn received(lines: &[&str]) -> Vec<String> {
    let mut records: Vec<String> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("receiver:   "))
        .map(str::to_string)
        .collect();
    records.sort();
    records
}

#[test]
fn make_demo_runs_end_to_end() -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let database = format!("bf_demo_{}", backflow_platform::new_id().replace('-', ""));
    let output = Command::new("bash")
        .arg(repo.join("demo/run.sh"))
        .env("DEMO_BACKFLOW_BIN", env!("CARGO_BIN_EXE_backflow"))
        .env("DEMO_PARTS_BIN", demo_parts()?)
        .env("DEMO_DB", &database)
        .env("NATS_URL", backflow_platform::testing::nats_url())
        .env_remove("BACKFLOW_CONFIG")
        .env_remove("BACKFLOW_ADDR")
        .env_remove("BACKFLOW_TOKEN")
        .env_remove("BACKFLOW_WORKSPACE")
        .env_remove("BACKFLOW_CLI_CONFIG")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "demo/run.sh failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // The destination test reached the receiver, signed.
    let setup = section(&stdout, "== 7.", "== 8.");
    assert!(
        setup
            .iter()
            .any(|l| l.contains("\"backflow.test\" (test request, signature ok)")),
        "{stdout}"
    );

    // First run: every customer with an email (the model filters id 5 out), one signed batch.
    let first = section(&stdout, "== 8.", "== 9.");
    assert!(
        first.iter().any(|l| l.starts_with("receiver: upsert batch")
            && l.ends_with("with 4 record(s), signature ok")),
        "{stdout}"
    );
    assert_eq!(
        received(&first),
        vec![
            r#"{"id":1} {"email":"ada@example.com","name":"Ada Lovelace","plan":"pro","lifetime_value":"1200.00"}"#,
            r#"{"id":2} {"email":"grace@example.com","name":"Grace Hopper","plan":"team","lifetime_value":"640.50"}"#,
            r#"{"id":3} {"email":"alan@example.com","name":"Alan Turing","plan":"free","lifetime_value":"0.00"}"#,
            r#"{"id":4} {"email":"katherine@example.com","name":"Katherine Johnson","plan":"pro","lifetime_value":"980.25"}"#,
        ]
    );

    // Second run, after the change: only the updated and the added customer.
    let second = section(&stdout, "== 10.", "== done");
    assert_eq!(
        received(&second),
        vec![
            r#"{"id":2} {"email":"grace@example.com","name":"Grace Hopper","plan":"enterprise","lifetime_value":"2400.00"}"#,
            r#"{"id":6} {"email":"edsger@example.com","name":"Edsger Dijkstra","plan":"team","lifetime_value":"310.00"}"#,
        ]
    );
    assert!(
        second
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["delivered:", "2"]),
        "{stdout}"
    );
    assert!(
        stdout.contains("== done: the demo worked end to end"),
        "{stdout}"
    );
    Ok(())
}
