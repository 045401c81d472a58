//! A webhook endpoint answering 410 Gone, from the CLI with the built `backflow` binary
//! against a running `backflow dev` (setup `support::retl`): the run ends failed after
//! one request naming the destination and the 410, `syncs get` and `syncs list` show the
//! sync paused with the reason (table and `--output json`), a trigger is refused with it,
//! and after `syncs resume` a healthy endpoint gets every record.

use serde_json::json;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

mod support;

use support::cli::{fails, field, ok, ok_json};
use support::retl::retl_setup;

/// A webhook receiver that answers 410 Gone while `gone`, else accepts every record;
/// counts requests and accepted records.
struct Endpoint {
    url: String,
    gone: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
}

fn start_endpoint() -> anyhow::Result<Endpoint> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let endpoint = Endpoint {
        url: format!("http://{}/hook", listener.local_addr()?),
        gone: Arc::new(AtomicBool::new(false)),
        requests: Arc::new(AtomicUsize::new(0)),
        accepted: Arc::new(AtomicUsize::new(0)),
    };
    let (gone, requests, accepted) = (
        endpoint.gone.clone(),
        endpoint.requests.clone(),
        endpoint.accepted.clone(),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = support::http::read_json_body(&mut stream);
            requests.fetch_add(1, Ordering::SeqCst);
            if gone.load(Ordering::SeqCst) {
                let _ = stream.write_all(
                    b"HTTP/1.1 410 Gone\r\ncontent-length: 12\r\nconnection: close\r\n\r\nunsubscribed",
                );
                continue;
            }
            let records = body["data"]["records"].as_array().map_or(0, Vec::len);
            accepted.fetch_add(records, Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    Ok(endpoint)
}

#[test]
fn a_gone_webhook_endpoint_pauses_its_syncs_until_resumed() -> anyhow::Result<()> {
    let setup = retl_setup("cli-gone")?;
    let (dev, token) = (&setup.dev, setup.token());
    let endpoint = start_endpoint()?;
    let url_setting = format!("url={}", endpoint.url);
    let destination = ok_json(
        dev,
        token,
        &[
            "destinations",
            "create",
            "gone-hook",
            "--kind",
            "webhook",
            "--setting",
            &url_setting,
            "--setting",
            "batch_size=2",
            "--setting",
            "max_concurrency=1",
        ],
    )?;
    let destination_id = field(&destination, "id")?;
    let sync = ok_json(
        dev,
        token,
        &[
            "syncs",
            "create",
            "customers to a gone hook",
            "--model",
            &setup.model_id,
            "--destination",
            &destination_id,
            "--mode",
            "upsert",
            "--map",
            "email=email",
            "--every",
            "1h",
        ],
    )?;
    let sync_id = field(&sync, "id")?;
    assert_eq!(
        (&sync["paused"], &sync["paused_reason"]),
        (&json!(false), &json!(""))
    );
    let before = endpoint.requests.load(Ordering::SeqCst);

    endpoint.gone.store(true, Ordering::SeqCst);
    let queued = ok_json(dev, token, &["syncs", "trigger", &sync_id])?;
    let run_id = field(&queued, "id")?;
    let watched = dev.cli(&["sync-runs", "watch", &run_id], token);
    assert_eq!(watched.status.code(), Some(1), "the run failed");
    let run = ok_json(dev, token, &["sync-runs", "get", &run_id])?;
    assert_eq!(field(&run, "status")?, "failed", "{run}");
    let authority = endpoint
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/hook");
    assert_eq!(
        field(&run, "error")?,
        format!(
            "destination {destination_id} answered 410 gone at {authority} (unsubscribed): the \
             run stopped sending and committed nothing; paused its syncs {sync_id} until they \
             are resumed (backflow syncs resume)"
        ),
        "{run}"
    );
    assert_eq!(
        endpoint.requests.load(Ordering::SeqCst) - before,
        1,
        "one batch of three was sent"
    );
    assert_eq!(
        (
            &run["counts"]["delivered"],
            &run["counts"]["failed"],
            &run["counts"]["given_up"]
        ),
        (&json!(0), &json!(2), &json!(0)),
        "{run}"
    );

    let reason = format!(
        "destination {destination_id} answered 410 gone at {authority} in run {run_id} \
         (unsubscribed); fix or replace the endpoint, then resume the sync"
    );
    let got = ok_json(dev, token, &["syncs", "get", &sync_id])?;
    assert_eq!(
        (&got["paused"], &got["paused_reason"]),
        (&json!(true), &json!(reason)),
        "{got}"
    );
    let shown = ok(dev, token, &["syncs", "get", &sync_id]);
    assert!(shown.contains(&format!("true ({reason})")), "{shown}");
    let listed = ok_json(dev, token, &["syncs", "list"])?;
    let row = listed
        .as_array()
        .and_then(|syncs| syncs.iter().find(|s| s["id"] == json!(sync_id)))
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["paused_reason"], json!(reason), "{listed}");
    let table = ok(dev, token, &["syncs", "list"]);
    let line = table
        .lines()
        .find(|line| line.contains(&sync_id))
        .unwrap_or_default();
    assert!(line.contains(&format!("true ({reason})")), "{table}");
    let refused = fails(dev, token, &["syncs", "trigger", &sync_id], 1);
    assert!(refused.contains(&reason), "{refused}");

    // fixed and resumed: the next run delivers every record
    let resumed = ok_json(dev, token, &["syncs", "resume", &sync_id])?;
    assert_eq!(
        (&resumed["paused"], &resumed["paused_reason"]),
        (&json!(false), &json!(""))
    );
    endpoint.gone.store(false, Ordering::SeqCst);
    let queued = ok_json(dev, token, &["syncs", "trigger", &sync_id])?;
    let run_id = field(&queued, "id")?;
    let watched = dev.cli(&["sync-runs", "watch", &run_id], token);
    assert_eq!(watched.status.code(), Some(0), "the run succeeded");
    let run = ok_json(dev, token, &["sync-runs", "get", &run_id])?;
    assert_eq!(
        (&run["counts"]["delivered"], &run["counts"]["failed"]),
        (&json!(5), &json!(0)),
        "{run}"
    );
    assert_eq!(endpoint.accepted.load(Ordering::SeqCst), 5);
    Ok(())
}
