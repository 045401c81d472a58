//! A TCP proxy in front of a local server that can drop a connection mid-request: once
//! armed ([`CutProxy::cut_next`]), the next bytes a client sends on any connection are
//! read up to a limit, never forwarded, and the socket is closed (with the rest of the
//! request unread). The client sees exactly what it sees when a server, a load balancer
//! or the network dies while a batch is being uploaded; the server behind never hears
//! of the request. Works for any protocol (HTTP/1 keep-alive included).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
struct Shared {
    /// Cuts still to make, and the bytes each reads before closing.
    armed: std::sync::Mutex<std::collections::VecDeque<usize>>,
    cuts: AtomicU64,
    connections: AtomicU64,
}

/// A running proxy; stops accepting when dropped (open connections end with it).
#[derive(Debug)]
pub struct CutProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// Listens on 127.0.0.1 (port 0) and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accepting.connections.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(&accepting);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = relay(client, server, &shared).await;
                    }
                });
            }
        });
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next request (on whichever connection sends first) is read for `bytes`
    /// bytes at most, not forwarded, and its connection closed.
    pub fn cut_next(&self, bytes: usize) {
        if let Ok(mut armed) = self.shared.armed.lock() {
            armed.push_back(bytes.max(1));
        }
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn take_cut(shared: &Shared) -> Option<usize> {
    shared
        .armed
        .lock()
        .ok()
        .and_then(|mut armed| armed.pop_front())
}

async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    shared: &Shared,
) -> std::io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_server = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = client.read(&mut from_client) => {
                let read = read?;
                if read == 0 {
                    return Ok(());
                }
                if let Some(limit) = take_cut(shared) {
                    // read a part of the request (what arrives within a moment), then close
                    let mut got = read;
                    while got < limit {
                        let want = (limit - got).min(from_client.len());
                        match tokio::time::timeout(
                            Duration::from_millis(200),
                            client.read(&mut from_client[..want]),
                        )
                        .await
                        {
                            Ok(Ok(more)) if more > 0 => got += more,
                            _ => break,
                        }
                    }
                    shared.cuts.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                server.write_all(&from_client[..read]).await?;
            }
            read = server.read(&mut from_server) => {
                let read = read?;
                if read == 0 {
                    return Ok(());
                }
                client.write_all(&from_server[..read]).await?;
            }
        }
    }
}
