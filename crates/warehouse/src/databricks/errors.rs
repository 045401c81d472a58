//! Databricks failures → [`WarehouseError`].
//!
//! An execution failure is **HTTP 200 with `status.state = "FAILED"`** and
//! `status.error{error_code, message}`, where `error_code` is a coarse ServiceErrorCode
//! (`BAD_REQUEST`, …) and the message starts with the Spark error class in brackets
//! (`[PARSE_SYNTAX_ERROR] …`). A non-200 answer means the request itself was refused; its
//! body is `{"error_code", "message", "details"}`.
//!
//! | answer | error |
//! |---|---|
//! | FAILED `[TABLE_OR_VIEW_NOT_FOUND]`, `[SCHEMA_NOT_FOUND]` | `UnknownRelation` (the backticked name in the message) |
//! | FAILED `[CATALOG_NOT_FOUND]`, `[NO_SUCH_CATALOG_EXCEPTION]` | `UnknownDatabase` |
//! | FAILED `[INSUFFICIENT_PERMISSIONS]`, error_code `PERMISSION_DENIED` | `MissingPrivilege` |
//! | FAILED error_code `CANCELLED` / `DEADLINE_EXCEEDED` / `UNAUTHENTICATED` | `Cancelled` / `Timeout` / `Authentication` |
//! | FAILED error_code `RESOURCE_EXHAUSTED`, `REQUEST_LIMIT_EXCEEDED` | `RateLimited` |
//! | FAILED error_code `TEMPORARILY_UNAVAILABLE`, `SERVICE_UNDER_MAINTENANCE`, `WORKSPACE_TEMPORARILY_UNAVAILABLE` | `Unreachable` |
//! | FAILED anything else | `QueryFailed { code: the bracketed class, else error_code }` |
//! | HTTP 401; HTTP 403 whose message is about the token | `Authentication` |
//! | HTTP 403 | `MissingPrivilege` |
//! | HTTP 429, 503 | `RateLimited { retry_after: Retry-After integer seconds }` |
//! | HTTP 404 on submit, HTTP 400 on submit naming the warehouse | `UnknownWarehouse` |
//! | HTTP 404 on a statement or chunk (removed) | `QueryFailed { code: NOT_FOUND }` |
//! | HTTP 5xx | `Unreachable` |

use std::time::Duration;

use super::wire::{ErrorBody, ServiceError};
use crate::WarehouseError;

/// Which call failed (a 404 means different things).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Submit,
    Statement,
}

#[derive(Debug, Clone)]
pub(crate) struct ErrorContext {
    pub endpoint: String,
    pub warehouse_id: String,
    pub statement_timeout: Duration,
}

/// A non-2xx answer.
pub(crate) fn from_http(
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
    call: Call,
    ctx: &ErrorContext,
) -> WarehouseError {
    let parsed = serde_json::from_str::<ErrorBody>(body).unwrap_or_default();
    let code = parsed.error_code.unwrap_or_default();
    let message = if parsed.message.is_empty() {
        format!("http {status}")
    } else {
        parsed.message
    };
    if matches!(
        code.as_str(),
        "REQUEST_LIMIT_EXCEEDED" | "RESOURCE_EXHAUSTED"
    ) || matches!(status, 429 | 503)
    {
        return WarehouseError::RateLimited {
            retry_after,
            detail: message,
        };
    }
    let mentions = |word: &str| message.to_ascii_lowercase().contains(word);
    match status {
        401 => WarehouseError::Authentication { detail: message },
        403 if mentions("token") => WarehouseError::Authentication { detail: message },
        403 => WarehouseError::MissingPrivilege { detail: message },
        404 if call == Call::Submit => WarehouseError::UnknownWarehouse {
            name: ctx.warehouse_id.clone(),
        },
        400 if call == Call::Submit && mentions("warehouse") => WarehouseError::UnknownWarehouse {
            name: ctx.warehouse_id.clone(),
        },
        400..=499 => WarehouseError::QueryFailed {
            code: Some(if code.is_empty() {
                status.to_string()
            } else {
                code
            }),
            message,
        },
        500..=599 => WarehouseError::Unreachable {
            endpoint: ctx.endpoint.clone(),
            detail: message,
        },
        _ => WarehouseError::Protocol {
            detail: format!("http {status}: {message}"),
        },
    }
}

/// `status.error` of a FAILED statement.
pub(crate) fn from_failed(error: Option<&ServiceError>, ctx: &ErrorContext) -> WarehouseError {
    let code = error.and_then(|e| e.error_code.clone()).unwrap_or_default();
    let message = error.and_then(|e| e.message.clone()).unwrap_or_default();
    let class = error_class(&message);
    match class.as_deref().map(|c| c.split('.').next().unwrap_or(c)) {
        Some("TABLE_OR_VIEW_NOT_FOUND" | "SCHEMA_NOT_FOUND") => {
            return WarehouseError::UnknownRelation {
                name: quoted_name(&message).unwrap_or_else(|| message.clone()),
            }
        }
        Some("CATALOG_NOT_FOUND" | "NO_SUCH_CATALOG_EXCEPTION") => {
            return WarehouseError::UnknownDatabase {
                name: quoted_name(&message).unwrap_or_else(|| message.clone()),
            }
        }
        Some("INSUFFICIENT_PERMISSIONS" | "PERMISSION_DENIED") => {
            return WarehouseError::MissingPrivilege { detail: message }
        }
        _ => {}
    }
    match code.as_str() {
        "PERMISSION_DENIED" => WarehouseError::MissingPrivilege { detail: message },
        "UNAUTHENTICATED" => WarehouseError::Authentication { detail: message },
        "CANCELLED" => WarehouseError::Cancelled,
        "DEADLINE_EXCEEDED" => WarehouseError::Timeout {
            after: ctx.statement_timeout,
        },
        "RESOURCE_EXHAUSTED" | "REQUEST_LIMIT_EXCEEDED" => WarehouseError::RateLimited {
            retry_after: None,
            detail: message,
        },
        "TEMPORARILY_UNAVAILABLE"
        | "SERVICE_UNDER_MAINTENANCE"
        | "WORKSPACE_TEMPORARILY_UNAVAILABLE" => WarehouseError::Unreachable {
            endpoint: ctx.endpoint.clone(),
            detail: message,
        },
        _ => WarehouseError::QueryFailed {
            code: class.or(if code.is_empty() { None } else { Some(code) }),
            message,
        },
    }
}

/// `[PARSE_SYNTAX_ERROR] …` → `PARSE_SYNTAX_ERROR`.
fn error_class(message: &str) -> Option<String> {
    let rest = message.trim_start().strip_prefix('[')?;
    let (class, _) = rest.split_once(']')?;
    let ok = !class.is_empty()
        && class
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    ok.then(|| class.to_string())
}

/// The first backticked name, e.g. `` `main`.`default`.`t` `` → `main.default.t`.
fn quoted_name(message: &str) -> Option<String> {
    let start = message.find('`')?;
    let token: String = message[start..]
        .split_whitespace()
        .next()?
        .trim_end_matches(['.', ',', ';'])
        .to_string();
    let name = token.replace('`', "");
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ErrorContext {
        ErrorContext {
            endpoint: "https://x.cloud.databricks.com".into(),
            warehouse_id: "abc".into(),
            statement_timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn classes_and_names_are_read_from_the_message() {
        assert_eq!(
            error_class("[PARSE_SYNTAX_ERROR] Syntax error"),
            Some("PARSE_SYNTAX_ERROR".into())
        );
        assert_eq!(error_class("no class"), None);
        assert_eq!(
            quoted_name("The table or view `main`.`default`.`nope` cannot be found."),
            Some("main.default.nope".into())
        );
        let e = from_failed(
            Some(&ServiceError {
                error_code: Some("BAD_REQUEST".into()),
                message: Some(
                    "[SCHEMA_NOT_FOUND] The schema `main`.`nope` cannot be found.".into(),
                ),
            }),
            &ctx(),
        );
        assert_eq!(
            e,
            WarehouseError::UnknownRelation {
                name: "main.nope".into()
            }
        );
    }

    #[test]
    fn http_statuses_map() {
        let e = from_http(404, "", None, Call::Submit, &ctx());
        assert_eq!(e, WarehouseError::UnknownWarehouse { name: "abc".into() });
        let e = from_http(
            404,
            r#"{"error_code":"NOT_FOUND","message":"gone"}"#,
            None,
            Call::Statement,
            &ctx(),
        );
        assert!(
            matches!(e, WarehouseError::QueryFailed { code: Some(ref c), .. } if c == "NOT_FOUND")
        );
        let e = from_http(
            403,
            r#"{"error_code":"PERMISSION_DENIED","message":"Invalid access token."}"#,
            None,
            Call::Submit,
            &ctx(),
        );
        assert!(matches!(e, WarehouseError::Authentication { .. }));
        let e = from_http(502, "", None, Call::Statement, &ctx());
        assert!(matches!(e, WarehouseError::Unreachable { .. }));
    }
}
