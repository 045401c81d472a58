//! The local stand-ins `make demo` (scripts/demo.sh) runs beside `backflow dev`, so the
//! demo needs nothing but this machine:
//!
//! - `demo_parts git --root DIR --token-file FILE --addr-file FILE`: a smart-HTTP Git
//!   server for the bare repositories under DIR (`git http-backend`, Basic auth with the
//!   token), as GitHub would serve the dbt project; writes its `127.0.0.1:port` to
//!   `--addr-file` once it listens.
//! - `demo_parts receiver --addr-file FILE [--secret-file FILE]`: a webhook receiver that
//!   checks the Standard Webhooks signature (when given the secret), prints every batch
//!   that arrives (operation, record count, each record's key and fields) on stdout, and
//!   answers 200.
//!
//! Both run until killed.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use backflow_retl_scheduler::destinations::standard_webhooks::SigningKey;
use serde_json::Value;

fn usage() -> ! {
    eprintln!(
        "usage: demo_parts git --root DIR --token-file FILE --addr-file FILE\n       demo_parts receiver --addr-file FILE [--secret-file FILE]"
    );
    std::process::exit(2)
}

/// `--name VALUE` pairs after the subcommand.
fn flags(args: &[String]) -> std::collections::HashMap<String, String> {
    let mut flags = std::collections::HashMap::new();
    let mut args = args.iter();
    while let Some(name) = args.next() {
        let (Some(name), Some(value)) = (name.strip_prefix("--"), args.next()) else {
            usage()
        };
        flags.insert(name.to_string(), value.clone());
    }
    flags
}

fn read_trimmed(path: &str) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
    Ok(text.trim().to_string())
}

/// Writes `addr` to `path` through a temporary file, so a reader never sees half of it.
fn publish_addr(path: &str, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let partial = format!("{path}.partial");
    std::fs::write(&partial, addr.to_string())?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        usage()
    };
    let flags = flags(rest);
    let flag = |name: &str| flags.get(name).cloned().unwrap_or_else(|| usage());
    match command.as_str() {
        "git" => {
            let root = PathBuf::from(flag("root"));
            let token = read_trimmed(&flag("token-file"))?;
            let server = backflow_test_git::http::GitHttpServer::start(&root, &token);
            publish_addr(&flag("addr-file"), server.addr)?;
            eprintln!("demo git server: http://{}/<repo>", server.addr);
            std::future::pending::<()>().await;
            drop(server);
            Ok(())
        }
        "receiver" => {
            let key = match flags.get("secret-file") {
                Some(path) => Some(
                    SigningKey::from_secret(&read_trimmed(path)?)
                        .map_err(|e| anyhow::anyhow!("the signing secret: {e}"))?,
                ),
                None => None,
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            publish_addr(&flag("addr-file"), listener.local_addr()?)?;
            let app = axum::Router::new()
                .route("/hook", post(receive))
                .with_state(Arc::new(key));
            axum::serve(listener, app).await?;
            Ok(())
        }
        _ => usage(),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn receive(
    State(key): State<Arc<Option<SigningKey>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let id = header(&headers, "webhook-id");
    let timestamp = header(&headers, "webhook-timestamp");
    let signed = match key.as_ref() {
        Some(key) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let signature = header(&headers, "webhook-signature");
            if let Err(error) = key.verify(id, timestamp, &body, signature, now) {
                println!("receiver: refused a request with a bad signature: {error}");
                return (StatusCode::UNAUTHORIZED, "bad signature");
            }
            "signature ok"
        }
        None => "unsigned",
    };
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        println!("receiver: refused a body that is not json");
        return (StatusCode::BAD_REQUEST, "not json");
    };
    let data = &payload["data"];
    let operation = data["operation"].as_str().unwrap_or("?");
    let records = data["records"].as_array().cloned().unwrap_or_default();
    if records.is_empty() {
        // The destination test (`backflow destinations create`) posts an empty batch.
        println!("receiver: {} (test request, {signed})", payload["type"]);
        return (StatusCode::OK, "OK");
    }
    println!(
        "receiver: {operation} batch {} with {} record(s), {signed}",
        data["batch"].as_str().unwrap_or("?"),
        records.len()
    );
    for record in &records {
        println!("receiver:   {} {}", record["key"], record["fields"]);
    }
    (StatusCode::OK, "OK")
}
