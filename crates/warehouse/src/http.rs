//! HTTP plumbing shared by the REST connectors (Snowflake SQL API, BigQuery, Databricks).
//!
//! Each of those APIs needs the same few things: a client with connect and request
//! timeouts that transparently decodes gzip bodies (Snowflake sends result partitions
//! gzip-encoded), one mapping of transport failures to [`WarehouseError::Unreachable`],
//! `Retry-After` parsing (integer seconds or an HTTP-date), JSON bodies read as
//! [`WarehouseError::Protocol`] when they do not parse, and a jittered exponential
//! back-off for polling. Keeping them here means the three connectors classify the same
//! failure the same way.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::WarehouseError;

/// `User-Agent` sent on every request (Snowflake requires one).
pub const USER_AGENT: &str = concat!("backflow/", env!("CARGO_PKG_VERSION"));

/// Timeouts of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// TCP + TLS handshake.
    pub connect_timeout: Duration,
    /// One whole request, body included. Long-running statements are polled, so this
    /// bounds one poll, not the statement.
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// A client with the given timeouts, rustls, gzip decoding and [`USER_AGENT`].
pub fn client(options: ClientOptions) -> Result<reqwest::Client, WarehouseError> {
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .user_agent(USER_AGENT)
        .gzip(true)
        .build()
        .map_err(|e| WarehouseError::Protocol {
            detail: format!("cannot build an http client: {}", error_chain(&e)),
        })
}

/// Classifies a `reqwest` error: a body that did not decode is [`WarehouseError::Protocol`];
/// anything else (DNS, connect, TLS, timeout, reset) is [`WarehouseError::Unreachable`].
/// `endpoint` names what was dialled (a base URL, never with credentials in it).
pub fn transport_error(endpoint: &str, error: &reqwest::Error) -> WarehouseError {
    if error.is_decode() {
        return WarehouseError::Protocol {
            detail: format!("reading the answer of {endpoint}: {}", error_chain(error)),
        };
    }
    let detail = if error.is_timeout() {
        format!("timed out: {}", error_chain(error))
    } else {
        error_chain(error)
    };
    WarehouseError::Unreachable {
        endpoint: endpoint.to_string(),
        detail,
    }
}

/// The error and its sources, `: `-joined, without the URL reqwest adds.
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    // reqwest's own Display puts the URL in parentheses; drop it (query strings may carry
    // request ids, never secrets, but it is noise in a user-facing message).
    let joined = parts.join(": ");
    match (joined.find(" for url ("), joined.find(')')) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{}", &joined[..start], &joined[end + 1..])
        }
        _ => joined,
    }
}

/// The `Retry-After` of a response, if present and readable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// `Retry-After` per RFC 9110 §10.2.3: delay seconds (`"120"`) or an HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, also the obsolete RFC 850 and asctime forms).
/// A date in the past is a zero delay; anything else unreadable is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses a JSON body; a body that is not the documented shape is
/// [`WarehouseError::Protocol`] naming `what` (e.g. `"snowflake result set"`).
pub fn decode_json<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, WarehouseError> {
    serde_json::from_slice(body).map_err(|e| WarehouseError::Protocol {
        detail: format!("{what} is not the documented json: {e}"),
    })
}

/// Reads a whole response body (already gzip-decoded by the client).
pub async fn read_body(
    endpoint: &str,
    response: reqwest::Response,
) -> Result<bytes::Bytes, WarehouseError> {
    response
        .bytes()
        .await
        .map_err(|e| transport_error(endpoint, &e))
}

/// Statuses worth retrying with back-off when the API documents no better answer
/// (500, 502, 503, 504). 429 is a rate limit and handled by each connector.
pub fn is_retryable_status(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// Jittered exponential back-off for polling a running statement: each delay is drawn
/// uniformly from `[d/2, d]`, where `d` starts at `initial` and doubles up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, max }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        if millis < 2 {
            return ceiling;
        }
        Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // RFC 850 and asctime forms are also HTTP-dates.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:10 2015", now),
            Some(Duration::from_secs(10))
        );
        // In the past: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_from_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_max() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let bounds = [(50, 100), (100, 200), (200, 400), (200, 400), (200, 400)];
        for (lo, hi) in bounds {
            let d = b.next_delay().as_millis();
            assert!((lo..=hi).contains(&d), "{d} not in {lo}..={hi}");
        }
    }

    #[test]
    fn decode_json_is_protocol_error() {
        let e = decode_json::<serde_json::Value>("test body", b"{not json").unwrap_err();
        assert!(
            matches!(e, WarehouseError::Protocol { ref detail } if detail.starts_with("test body"))
        );
    }

    #[tokio::test]
    async fn refused_connection_is_unreachable() {
        // A port nothing listens on: bind, read the port, drop the listener.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let endpoint = format!("http://127.0.0.1:{port}");
        let c = client(ClientOptions::default()).unwrap();
        let e = c.get(&endpoint).send().await.unwrap_err();
        let mapped = transport_error(&endpoint, &e);
        assert!(
            matches!(mapped, WarehouseError::Unreachable { endpoint: ref ep, ref detail } if *ep == endpoint && !detail.contains("for url")),
            "{mapped:?}"
        );
    }

    #[tokio::test]
    async fn slow_server_is_unreachable_timed_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accept and never answer.
        let server = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let endpoint = format!("http://127.0.0.1:{port}");
        let c = client(ClientOptions {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_millis(200),
        })
        .unwrap();
        let e = c.get(&endpoint).send().await.unwrap_err();
        let mapped = transport_error(&endpoint, &e);
        assert!(
            matches!(mapped, WarehouseError::Unreachable { ref detail, .. } if detail.starts_with("timed out")),
            "{mapped:?}"
        );
        server.abort();
    }
}
