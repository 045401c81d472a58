//! HTTP plumbing shared by the HTTP destinations (webhook, Segment, HubSpot, Salesforce):
//! one client shape (timeouts, rustls, no redirects followed — a 3xx is a failure per
//! Standard Webhooks and never what a tracking/CRM API answers), one classification of
//! statuses and transport failures into [`DestinationError`], `Retry-After` parsing, and
//! short body excerpts for messages, so every kind reports the same failure the same way.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::DestinationError;

/// `User-Agent` on every request.
pub const USER_AGENT: &str = concat!("backflow/", env!("CARGO_PKG_VERSION"));

/// Connect timeout and whole-request timeout (Standard Webhooks suggests 15–30 s).
pub fn client(request_timeout: Duration) -> Result<reqwest::Client, DestinationError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .gzip(true)
        .build()
        .map_err(|e| DestinationError::Settings(format!("cannot build an http client: {e}")))
}

/// A request that got no (complete) answer: refused or dropped connection, timeout, a
/// body cut off. Worth retrying; the idempotency key makes a resend harmless.
pub fn transport_error(endpoint: &str, error: &reqwest::Error) -> DestinationError {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    let mut detail = parts.join(": ");
    if let (Some(start), Some(end)) = (detail.find(" for url ("), detail.find(')')) {
        if end > start {
            detail = format!("{}{}", &detail[..start], &detail[end + 1..]);
        }
    }
    let what = if error.is_timeout() {
        "timed out"
    } else {
        "no answer"
    };
    DestinationError::Transient {
        message: format!("{what} from {endpoint}: {detail}"),
        status: 0,
        retry_after: None,
    }
}

/// The `Retry-After` of a response, if present and readable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// `Retry-After` per RFC 9110: delay seconds or an HTTP-date (past → zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The usual meaning of a non-2xx status: 401/403 credentials, 429 rate limit, 408 and
/// 5xx transient, other statuses (3xx, 4xx) a refusal of the batch. `message` is what
/// the destination said (an excerpt of its body).
pub fn status_error(status: u16, headers: &HeaderMap, message: String) -> DestinationError {
    let retry_after = retry_after(headers);
    match status {
        401 | 403 => DestinationError::Authentication(format!("{status}: {message}")),
        429 => DestinationError::RateLimited {
            retry_after,
            status,
            message: format!("{status}: {message}"),
        },
        408 | 500..=599 => DestinationError::Transient {
            message: format!("{status}: {message}"),
            status,
            retry_after,
        },
        _ => DestinationError::Rejected {
            message: format!("{status}: {message}"),
            status,
        },
    }
}

/// At most 500 characters of a body, for error messages.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Parses a base URL setting: absolute http(s), no credentials, no query or fragment.
pub fn base_url(name: &str, value: &str) -> Result<reqwest::Url, DestinationError> {
    let url = reqwest::Url::parse(value.trim())
        .map_err(|e| DestinationError::Settings(format!("{name} is not a url: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DestinationError::Settings(format!(
            "{name} must be http or https, not {}",
            url.scheme()
        )));
    }
    if url.host_str().is_none() {
        return Err(DestinationError::Settings(format!("{name} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Settings(format!(
            "{name} must not hold credentials (they belong in the secret)"
        )));
    }
    Ok(url)
}

/// `host:port` of a URL, the account key of endpoints that have no better one.
pub fn authority(url: &reqwest::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// A short, stable, non-reversible fingerprint of a secret (rate-limit keys never hold
/// the secret itself).
pub fn fingerprint(secret: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(secret.as_bytes());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let h = HeaderMap::new();
        assert!(matches!(
            status_error(401, &h, "x".into()),
            DestinationError::Authentication(_)
        ));
        assert!(matches!(
            status_error(429, &h, "x".into()),
            DestinationError::RateLimited {
                retry_after: None,
                status: 429,
                ..
            }
        ));
        assert!(matches!(
            status_error(503, &h, "x".into()),
            DestinationError::Transient { status: 503, .. }
        ));
        assert!(matches!(
            status_error(302, &h, "x".into()),
            DestinationError::Rejected { status: 302, .. }
        ));
        assert!(matches!(
            status_error(410, &h, "x".into()),
            DestinationError::Rejected { status: 410, .. }
        ));
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon", now), None);
        let at = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", at),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(base_url("url", "https://example.com/hook").is_ok());
        for bad in ["ftp://x", "not a url", "https://user:pw@example.com"] {
            assert!(
                matches!(base_url("url", bad), Err(DestinationError::Settings(_))),
                "{bad}"
            );
        }
        assert_eq!(fingerprint("a").len(), 16);
    }
}
