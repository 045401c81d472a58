//! Where each Backflow gRPC service is served, so that every port can tell a caller
//! who dialled the wrong one: a call for a service a server does not serve answers
//! UNIMPLEMENTED "X is not served here; it is served at ADDR". The process fills the
//! [`Directory`] from its configuration (and, in `backflow dev`, the addresses it
//! actually bound, including the front door that serves all services on one port).
//! Reflection on a port lists exactly the services that port serves.

use std::collections::BTreeMap;
use std::sync::RwLock;

static DIRECTORY: RwLock<BTreeMap<String, Vec<String>>> = RwLock::new(BTreeMap::new());

/// The process-wide map from fully-qualified gRPC service name to the addresses
/// that serve it.
pub struct Directory;

impl Directory {
    /// Records that `service` is served at `addr` (kept in insertion order, no duplicates).
    pub fn add(service: &str, addr: &str) {
        if let Ok(mut map) = DIRECTORY.write() {
            let addrs = map.entry(service.to_string()).or_default();
            if !addrs.iter().any(|known| known == addr) {
                addrs.push(addr.to_string());
            }
        }
    }

    pub fn addresses(service: &str) -> Vec<String> {
        DIRECTORY
            .read()
            .ok()
            .and_then(|map| map.get(service).cloned())
            .unwrap_or_default()
    }
}

/// The message for a call to `path` on a server that does not serve its service.
pub fn not_served_message(path: &str) -> String {
    let service = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    if service.is_empty() {
        return "no grpc service named in the request path".into();
    }
    let addrs = Directory::addresses(service);
    if addrs.is_empty() {
        format!("{service} is not served here")
    } else {
        format!(
            "{service} is not served here; it is served at {}",
            addrs.join(" and at ")
        )
    }
}

/// The router fallback: UNIMPLEMENTED naming where the service is served.
pub async fn not_served(uri: http::Uri) -> http::Response<tonic::body::Body> {
    let status = tonic::Status::unimplemented(not_served_message(uri.path()));
    status.into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_address() {
        Directory::add("test.v1.Elsewhere", "127.0.0.1:9");
        Directory::add("test.v1.Elsewhere", "127.0.0.1:9");
        assert_eq!(
            not_served_message("/test.v1.Elsewhere/Call"),
            "test.v1.Elsewhere is not served here; it is served at 127.0.0.1:9"
        );
        assert_eq!(
            not_served_message("/test.v1.Nowhere/Call"),
            "test.v1.Nowhere is not served here"
        );
    }
}
