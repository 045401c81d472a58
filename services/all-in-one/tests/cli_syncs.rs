//! Issue 10, CLI: `backflow destinations …` and `backflow syncs …` with the built binary
//! as a subprocess against a running `backflow dev` (empty data dir, ports chosen by the
//! OS, its own NATS namespace), with the harness `cli_walkthrough.rs` uses
//! (`support::cli`): a webhook destination tested against a local HTTP receiver, refused
//! settings, update, list, `--output json` compared whole, delete; sync commands' usage
//! errors exit 2 and refused calls exit 1 with the server's message.

use serde_json::{json, Value};
use std::io::Write;

mod support;

use support::cli::{admin_token, fails, field, ok, ok_json, Dev};

/// A local HTTP receiver that answers 200 to every request (the webhook's test POST).
fn start_receiver() -> anyhow::Result<(String, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = support::http::read_json_body(&mut stream);
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    Ok((url, seen))
}

#[test]
fn destinations_and_syncs_from_the_cli() -> anyhow::Result<()> {
    let root =
        std::env::temp_dir().join(format!("backflow-cli-retl-{}", backflow_platform::new_id()));
    let workdir = root.join("work");
    std::fs::create_dir_all(&workdir)?;
    let dev = Dev::start(&workdir)?;
    let token = admin_token(&dev)?;
    let token = Some(token.as_str());
    let (url, seen) = start_receiver()?;

    // a webhook destination, tested against the receiver on create
    let url_setting = format!("url={url}");
    let created = ok_json(
        &dev,
        token,
        &[
            "destinations",
            "create",
            "hook",
            "--kind",
            "webhook",
            "--setting",
            &url_setting,
        ],
    )?;
    let id = field(&created, "id")?;
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the test reached the receiver"
    );
    assert_eq!(created["last_test"]["ok"], json!(true));
    let shown = ok_json(&dev, token, &["destinations", "get", &id])?;
    assert_eq!(
        shown,
        json!({
            "id": id,
            "workspace_id": "default",
            "name": "hook",
            "kind": "webhook",
            "settings": {"url": url},
            "credential_id": "",
            "rate_limit_per_second": 0.0,
            "version": 1,
            "created_at_unix_ms": created["created_at_unix_ms"],
            "updated_at_unix_ms": created["updated_at_unix_ms"],
            "last_test": created["last_test"],
        })
    );
    let table = ok(&dev, token, &["destinations", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("hook") && table.contains("webhook") && table.contains("ok"),
        "{table}"
    );

    // a failing test refuses the destination with the reason; secrets never go in settings
    let stderr = fails(
        &dev,
        token,
        &[
            "destinations",
            "create",
            "nowhere",
            "--kind",
            "webhook",
            "--setting",
            "url=http://127.0.0.1:1/in",
        ],
        1,
    );
    assert!(stderr.contains("destination test failed"), "{stderr}");
    let stderr = fails(
        &dev,
        token,
        &[
            "destinations",
            "create",
            "leaky",
            "--kind",
            "webhook",
            "--setting",
            &url_setting,
            "--setting",
            "password=hunter2",
            "--skip-test",
        ],
        1,
    );
    assert!(stderr.contains("would hold a secret"), "{stderr}");
    let stderr = fails(
        &dev,
        token,
        &["destinations", "create", "x", "--kind", "fax"],
        2,
    );
    assert!(stderr.contains("fax"), "{stderr}");

    // update without a test forgets the old result; test records a new one
    let updated = ok_json(
        &dev,
        token,
        &[
            "destinations",
            "update",
            &id,
            "--setting",
            "batch_size=100",
            "--rate-limit",
            "5",
            "--skip-test",
        ],
    )?;
    assert_eq!(updated["version"], json!(2));
    assert_eq!(updated["settings"]["batch_size"], json!("100"));
    assert_eq!(updated["rate_limit_per_second"], json!(5.0));
    assert_eq!(updated["last_test"], Value::Null);
    let tested = ok_json(&dev, token, &["destinations", "test", &id])?;
    assert_eq!(tested["ok"], json!(true));

    // syncs: none yet; flag mistakes are usage errors; the server checks the model
    assert_eq!(ok_json(&dev, token, &["syncs", "list"])?, json!([]));
    let stderr = fails(
        &dev,
        token,
        &[
            "syncs",
            "create",
            "s",
            "--model",
            "m",
            "--destination",
            &id,
            "--mode",
            "upsert",
            "--null-policy",
            "email=omit",
        ],
        2,
    );
    assert!(stderr.contains("--null-policy email"), "{stderr}");
    fails(
        &dev,
        token,
        &[
            "syncs",
            "create",
            "s",
            "--model",
            "m",
            "--destination",
            &id,
            "--mode",
            "upsert",
            "--every",
            "1h",
            "--cron",
            "0 * * * *",
        ],
        2,
    );
    fails(
        &dev,
        token,
        &[
            "syncs",
            "create",
            "s",
            "--model",
            "m",
            "--destination",
            &id,
            "--mode",
            "upsert",
            "--every",
            "5w",
        ],
        2,
    );
    let stderr = fails(
        &dev,
        token,
        &[
            "syncs",
            "create",
            "s",
            "--model",
            "no-such-model",
            "--destination",
            &id,
            "--mode",
            "upsert",
            "--map",
            "email=email_address",
            "--constant",
            "source=backflow",
        ],
        1,
    );
    assert!(stderr.contains("no-such-model"), "{stderr}");
    let stderr = fails(&dev, token, &["syncs", "get", "no-such-sync"], 1);
    assert!(stderr.contains("not found"), "{stderr}");
    let stderr = fails(&dev, token, &["syncs", "approve", "no-such-run"], 1);
    assert!(!stderr.is_empty());

    // delete; then it is gone
    let deleted = ok_json(&dev, token, &["destinations", "delete", &id])?;
    assert_eq!(deleted, json!({"deleted": id}));
    let stderr = fails(&dev, token, &["destinations", "get", &id], 1);
    assert!(stderr.contains("not found"), "{stderr}");
    Ok(())
}
