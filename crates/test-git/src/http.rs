//! A real smart-HTTP Git server: axum on 127.0.0.1 checking Basic auth, running
//! `git http-backend` as a CGI program for every request. It can be told to stall
//! fetches (hold every pack request until released), to catch a sync mid-fetch.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// Basic-auth user name GitHub uses for installation tokens.
pub const TOKEN_USER: &str = "x-access-token";

struct Shared {
    root: PathBuf,
    token: String,
    requests: Mutex<Vec<String>>,
    /// While set, `POST .../git-upload-pack` (the pack download) waits.
    stall: AtomicBool,
    released: tokio::sync::Notify,
    /// Pack requests waiting right now.
    held: AtomicUsize,
}

/// Counts a held request while it waits (also when the client goes away).
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running server; stops when dropped.
pub struct GitHttpServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl GitHttpServer {
    /// Serves the repositories under `root` to clients presenting `token`.
    pub fn start(root: &Path, token: &str) -> Self {
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            token: token.to_string(),
            requests: Mutex::new(Vec::new()),
            stall: AtomicBool::new(false),
            released: tokio::sync::Notify::new(),
            held: AtomicUsize::new(0),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let state = shared.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let app = Router::new().fallback(handle).with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = shutdown_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx.recv().expect("server address");
        Self {
            addr,
            shared,
            shutdown: Some(shutdown_tx),
        }
    }

    /// `http://127.0.0.1:<port>/<name>.git`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}.git", self.addr)
    }

    /// From now on, pack downloads hang until [`Self::release_fetches`] (ref
    /// listings still answer, so access checks pass).
    pub fn stall_fetches(&self) {
        self.shared.stall.store(true, Ordering::SeqCst);
    }

    /// Lets held and later pack downloads proceed.
    pub fn release_fetches(&self) {
        self.shared.stall.store(false, Ordering::SeqCst);
        self.shared.released.notify_waiters();
    }

    /// How many pack downloads are being held right now.
    pub fn held_fetches(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// `METHOD path?query` of every request seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().expect("requests").clone()
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn authorized(shared: &Shared, req: &Request) -> Option<String> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (user == TOKEN_USER && password == shared.token).then(|| user.to_string())
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut response = Response::new(Body::from(text.to_string()));
    *response.status_mut() = status;
    response
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    shared
        .requests
        .lock()
        .expect("requests")
        .push(format!("{} {path}?{query}", req.method()));

    let Some(user) = authorized(&shared, &req) else {
        let mut response = plain(StatusCode::UNAUTHORIZED, "authentication required\n");
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"backflow-test\""),
        );
        return response;
    };

    if req.method() == axum::http::Method::POST
        && path.ends_with("/git-upload-pack")
        && shared.stall.load(Ordering::SeqCst)
    {
        shared.held.fetch_add(1, Ordering::SeqCst);
        let _held = Held(&shared.held);
        loop {
            let released = shared.released.notified();
            if !shared.stall.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
    }

    let headers = req.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let method = req.method().to_string();
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", &query)
        .env("REQUEST_METHOD", &method)
        .env("CONTENT_TYPE", header("content-type"))
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let length = header("content-length");
    if !length.is_empty() {
        cmd.env("CONTENT_LENGTH", length);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("spawn: {e}")),
    };
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "no pipes");
    };
    let mut body = req.into_body().into_data_stream();
    let writer = tokio::spawn(async move {
        while let Some(Ok(chunk)) = body.next().await {
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        // dropping stdin closes it: end of request body
    });
    let mut output = Vec::new();
    let read = stdout.read_to_end(&mut output).await;
    let _ = writer.await;
    let _ = child.wait().await;
    if let Err(e) = read {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("read: {e}"));
    }
    cgi_response(&output)
}

/// Splits CGI output into headers (with `Status:`) and body.
fn cgi_response(output: &[u8]) -> Response {
    let (head, body) = match find(output, b"\r\n\r\n") {
        Some(i) => (&output[..i], &output[i + 4..]),
        None => match find(output, b"\n\n") {
            Some(i) => (&output[..i], &output[i + 2..]),
            None => return plain(StatusCode::BAD_GATEWAY, "malformed cgi output"),
        },
    };
    let mut response = Response::new(Body::from(body.to_vec()));
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            *response.status_mut() = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
