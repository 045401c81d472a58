//! Which hosts a dbt Cloud connection may point at. Backflow sends the account's API
//! token to this host, so only dbt's own domains are accepted (DESIGN §6).
//!
//! Accepted forms, all normalized to `https://<host>`:
//! - empty: dbt Cloud's default multi-tenant host, `cloud.getdbt.com`;
//! - a bare custom subdomain, one DNS label like `acme`: as in Segment's dbt extension
//!   it replaces `cloud` in `cloud.getdbt.com`, giving `acme.getdbt.com`. Accounts on
//!   the newer cell hosts (`ab123.us1.dbt.com`) give the full host instead, because a
//!   bare label cannot say which cell;
//! - a full host ending in `.getdbt.com` or `.dbt.com`, optionally with `https://` and
//!   a trailing `/`.
//!
//! Everything else is refused: other schemes (`http://` included), ports, paths,
//! queries, user info, and hosts outside those domains — unless the operator lists the
//! exact origin in `dbt_cloud_listener.allowed_access_urls` (a single-tenant or proxied
//! dbt Cloud, or a local stand-in in tests).

/// dbt Cloud's default host, used when no access URL is given.
pub const DEFAULT_HOST: &str = "cloud.getdbt.com";

/// The domain a bare custom subdomain is placed under.
const CUSTOM_SUBDOMAIN_PARENT: &str = "getdbt.com";

const ALLOWED_SUFFIXES: [&str; 2] = [".getdbt.com", ".dbt.com"];

const MAX_HOST_LEN: usize = 253;

/// [`normalize_access_url`], also accepting any origin the operator allowed
/// (compared without case and trailing `/`).
pub fn normalize_access_url_allowing(input: &str, allowed: &[String]) -> Result<String, String> {
    let origin = |text: &str| text.trim().trim_end_matches('/').to_ascii_lowercase();
    let wanted = origin(input);
    if !wanted.is_empty() {
        if let Some(found) = allowed.iter().find(|entry| origin(entry) == wanted) {
            return Ok(origin(found));
        }
    }
    normalize_access_url(input)
}

/// Normalizes what a user typed into `https://<host>`, or says why it is refused.
pub fn normalize_access_url(input: &str) -> Result<String, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(format!("https://{DEFAULT_HOST}"));
    }
    let (has_scheme, rest) = match trimmed.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
        Some((scheme, _)) => {
            return Err(format!(
                "access_url must use https, not {:?}",
                scheme.to_ascii_lowercase()
            ))
        }
        None => (false, trimmed),
    };
    let host = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
    if host.contains(['/', '?', '#', '@', ':', '\\']) {
        return Err(format!(
            "access_url {trimmed:?} must be a host name only, without path, port, user or query"
        ));
    }
    validate_host_syntax(&host)?;
    if !has_scheme && !host.contains('.') {
        return Ok(format!("https://{host}.{CUSTOM_SUBDOMAIN_PARENT}"));
    }
    if ALLOWED_SUFFIXES.iter().any(|suffix| host.ends_with(suffix)) {
        return Ok(format!("https://{host}"));
    }
    Err(format!(
        "access_url host {host:?} is not a dbt Cloud host: give a custom subdomain like \"acme\" \
         or a full host ending in .getdbt.com or .dbt.com"
    ))
}

/// DNS syntax: labels of 1 to 63 letters, digits or inner hyphens.
fn validate_host_syntax(host: &str) -> Result<(), String> {
    if host.len() > MAX_HOST_LEN {
        return Err(format!(
            "access_url host is {} characters long; at most {MAX_HOST_LEN} are allowed",
            host.len()
        ));
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
    };
    if host.split('.').all(valid_label) {
        Ok(())
    } else {
        Err(format!("access_url host {host:?} is not a valid host name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        normalize_access_url(input).unwrap_or_else(|err| panic!("{input:?} refused: {err}"))
    }

    fn refused(input: &str) -> String {
        match normalize_access_url(input) {
            Ok(url) => panic!("{input:?} accepted as {url}"),
            Err(message) => message,
        }
    }

    #[test]
    fn empty_means_the_default_host() {
        assert_eq!(ok(""), "https://cloud.getdbt.com");
        assert_eq!(ok("   "), "https://cloud.getdbt.com");
    }

    #[test]
    fn bare_subdomain_goes_under_getdbt_com() {
        assert_eq!(ok("acme"), "https://acme.getdbt.com");
        assert_eq!(ok(" ACME-corp "), "https://acme-corp.getdbt.com");
    }

    #[test]
    fn full_dbt_hosts_are_accepted() {
        assert_eq!(ok("cloud.getdbt.com"), "https://cloud.getdbt.com");
        assert_eq!(ok("https://acme.us1.dbt.com/"), "https://acme.us1.dbt.com");
        assert_eq!(ok("HTTPS://EMEA.dbt.com"), "https://emea.dbt.com");
        assert_eq!(ok("ab123.au1.dbt.com"), "https://ab123.au1.dbt.com");
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(refused("http://cloud.getdbt.com").contains("https"));
        assert!(refused("ftp://acme.dbt.com").contains("https"));
    }

    #[test]
    fn foreign_hosts_are_refused() {
        for input in [
            "example.com",
            "https://evil.com",
            "dbt.com.evil.com",
            "evildbt.com",
            "notgetdbt.com",
            "dbt.com",
            "getdbt.com",
            "acme.us1",
            "https://acme",
        ] {
            assert!(refused(input).contains("not a dbt Cloud host"), "{input}");
        }
    }

    #[test]
    fn paths_ports_users_and_queries_are_refused() {
        for input in [
            "https://cloud.getdbt.com/api/v2",
            "https://evil.com/.dbt.com",
            "https://cloud.getdbt.com:8443",
            "https://user@cloud.getdbt.com",
            "https://cloud.getdbt.com?x=.dbt.com",
            "evil.com#.dbt.com",
        ] {
            assert!(refused(input).contains("host name only"), "{input}");
        }
    }

    #[test]
    fn operator_allowed_origins_are_accepted_exactly() {
        let allowed = vec![
            "http://127.0.0.1:4567/".to_string(),
            "https://dbt.internal.example".to_string(),
        ];
        assert_eq!(
            normalize_access_url_allowing("HTTP://127.0.0.1:4567", &allowed),
            Ok("http://127.0.0.1:4567".into())
        );
        assert_eq!(
            normalize_access_url_allowing("https://dbt.internal.example/", &allowed),
            Ok("https://dbt.internal.example".into())
        );
        assert!(normalize_access_url_allowing("http://127.0.0.1:4568", &allowed).is_err());
        assert_eq!(
            normalize_access_url_allowing("acme", &allowed),
            Ok("https://acme.getdbt.com".into())
        );
        assert_eq!(
            normalize_access_url_allowing("", &allowed),
            Ok("https://cloud.getdbt.com".into())
        );
    }

    #[test]
    fn malformed_hosts_are_refused() {
        for input in [
            "-acme",
            "acme..dbt.com",
            "ac_me.dbt.com",
            "acme.dbt.com.",
            "äcme",
        ] {
            assert!(refused(input).contains("not a valid host name"), "{input}");
        }
        assert!(refused(&format!("{}.dbt.com", "a".repeat(64))).contains("valid host"));
    }
}
