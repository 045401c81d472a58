//! SQL API answers that are not results → [`WarehouseError`], in one place.
//!
//! By status (fixtures/wire/snowflake-sql-api.md): 401 and 403 are authentication
//! (`390303` invalid OAuth token, `390144` invalid JWT); 404 a wrong endpoint/account or
//! a statement the server no longer knows; 408 the statement timeout (the statement was
//! cancelled); 422 QueryFailureStatus, classified by `code`, `sqlState` and message;
//! 429 a rate limit (`Retry-After` honoured if present: it is not documented); 5xx and
//! anything else a protocol failure (the caller retries 5xx on submit).
//!
//! The 422 classification beyond the fixtures (`000904` / `42000` compile error,
//! `000604` cancelled, `000630` timeout, `000008` statement count) uses the messages
//! Snowflake's drivers report for missing objects (`... does not exist or not
//! authorized.`, code `002003`; `390201` at session set-up), privileges (`42501`,
//! `Insufficient privileges`) and warehouses (`No active warehouse selected`, `000606`).
//! Those are not in the fixtures and are matched loosely; anything else is
//! [`WarehouseError::QueryFailed`] with Snowflake's code and message.

use std::time::Duration;

use reqwest::StatusCode;

use super::wire::StatusBody;
use crate::WarehouseError;

/// What the request was for, to name things in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub endpoint: &'a str,
    pub database: &'a str,
    pub warehouse: &'a str,
    pub statement_timeout: Duration,
}

/// Classifies a non-200/202 answer.
pub(crate) fn from_status(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    context: Context<'_>,
) -> WarehouseError {
    let parsed: StatusBody = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed
        .message
        .clone()
        .unwrap_or_else(|| format!("http {}", status.as_u16()));
    match status.as_u16() {
        401 | 403 => WarehouseError::Authentication {
            detail: with_code(&parsed, &message),
        },
        404 => WarehouseError::Protocol {
            detail: format!(
                "the sql api answered 404 not found ({}); check settings.account and settings.endpoint",
                with_code(&parsed, &message)
            ),
        },
        408 => WarehouseError::Timeout {
            after: context.statement_timeout,
        },
        422 => query_failure(&parsed, &message, context),
        429 => WarehouseError::RateLimited {
            retry_after,
            detail: with_code(&parsed, &message),
        },
        500..=599 => WarehouseError::Unreachable {
            endpoint: context.endpoint.to_string(),
            detail: format!("http {}: {}", status.as_u16(), with_code(&parsed, &message)),
        },
        _ => WarehouseError::Protocol {
            detail: format!("http {}: {}", status.as_u16(), with_code(&parsed, &message)),
        },
    }
}

/// A 422 QueryFailureStatus.
pub(crate) fn query_failure(
    body: &StatusBody,
    message: &str,
    context: Context<'_>,
) -> WarehouseError {
    let code = body.code.as_deref().unwrap_or("");
    let sql_state = body.sql_state.as_deref().unwrap_or("");
    let lower = message.to_lowercase();
    if code == "000604" || lower.contains("sql execution canceled") {
        return WarehouseError::Cancelled;
    }
    if code == "000630" || (sql_state == "57014" && lower.contains("timeout")) {
        return WarehouseError::Timeout {
            after: context.statement_timeout,
        };
    }
    if code == "000008" || lower.contains("did not match the desired statement count") {
        return WarehouseError::NotSingleStatement {
            detail: message.to_string(),
        };
    }
    let missing = lower.contains("does not exist");
    let names = |what: &str| {
        lower.contains(&format!("{what} '")) || lower.contains(&format!("requested {what}"))
    };
    if lower.contains("no active warehouse") || (missing && names("warehouse")) {
        return WarehouseError::UnknownWarehouse {
            name: context.warehouse.to_string(),
        };
    }
    if missing {
        if names("database") {
            return WarehouseError::UnknownDatabase {
                name: quoted_name(message).unwrap_or_else(|| context.database.to_string()),
            };
        }
        if let Some(name) = quoted_name(message) {
            return WarehouseError::UnknownRelation { name };
        }
    }
    if sql_state == "42501" || lower.contains("insufficient privileges") {
        return WarehouseError::MissingPrivilege {
            detail: message.to_string(),
        };
    }
    WarehouseError::QueryFailed {
        code: body.code.clone().filter(|c| !c.is_empty()),
        message: message.to_string(),
    }
}

/// The first `'...'` in a message (`Object 'DB.S.T' does not exist ...`).
fn quoted_name(message: &str) -> Option<String> {
    let start = message.find('\'')? + 1;
    let len = message[start..].find('\'')?;
    Some(message[start..start + len].to_string())
}

fn with_code(body: &StatusBody, message: &str) -> String {
    match body.code.as_deref() {
        Some(code) if !code.is_empty() => format!("{message} (code {code})"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: Context<'static> = Context {
        endpoint: "https://x.snowflakecomputing.com",
        database: "ANALYTICS",
        warehouse: "WH",
        statement_timeout: Duration::from_secs(10),
    };

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../fixtures/wire/snowflake/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn status(code: u16, body: &[u8]) -> WarehouseError {
        from_status(StatusCode::from_u16(code).unwrap(), None, body, CONTEXT)
    }

    #[test]
    fn documented_bodies() {
        let e = status(401, &fixture("error-401-invalid-oauth.json"));
        assert!(
            matches!(e, WarehouseError::Authentication { ref detail } if detail.contains("390303"))
        );
        let e = status(422, &fixture("post-statements-422-compile-error.json"));
        assert!(
            matches!(e, WarehouseError::QueryFailed { code: Some(ref c), ref message } if c == "000904" && message.contains("invalid identifier 'AFAF'")),
            "{e:?}"
        );
        let e = status(
            422,
            &fixture("post-statements-422-multi-statement-failed.json"),
        );
        assert!(
            matches!(e, WarehouseError::QueryFailed { code: Some(ref c), .. } if c == "100132")
        );
        let e = status(408, &fixture("post-statements-408-timeout.json"));
        assert_eq!(
            e,
            WarehouseError::Timeout {
                after: Duration::from_secs(10)
            }
        );
        let e = from_status(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(3)),
            &fixture("error-429-too-many-requests.json"),
            CONTEXT,
        );
        assert!(
            matches!(e, WarehouseError::RateLimited { retry_after: Some(d), ref detail } if d == Duration::from_secs(3) && detail.contains("390505"))
        );
        let e = status(400, &fixture("error-400-invalid-payload.json"));
        assert!(matches!(e, WarehouseError::Protocol { ref detail } if detail.contains("390142")));
        let e = status(405, b"");
        assert!(matches!(e, WarehouseError::Protocol { ref detail } if detail.contains("405")));
        let e = status(503, b"");
        assert!(matches!(e, WarehouseError::Unreachable { .. }));
    }

    fn failure(code: &str, sql_state: &str, message: &str) -> WarehouseError {
        let body = serde_json::json!({"code": code, "sqlState": sql_state, "message": message, "statementHandle": "h"});
        status(422, body.to_string().as_bytes())
    }

    #[test]
    fn classified_failures() {
        assert_eq!(
            failure("000604", "57014", "SQL execution canceled"),
            WarehouseError::Cancelled
        );
        assert!(matches!(
            failure(
                "000008",
                "0A000",
                "Actual statement count 2 did not match the desired statement count 1."
            ),
            WarehouseError::NotSingleStatement { .. }
        ));
        assert_eq!(
            failure("002003", "02000", "SQL compilation error:\nObject 'ANALYTICS.PUBLIC.NOPE' does not exist or not authorized."),
            WarehouseError::UnknownRelation { name: "ANALYTICS.PUBLIC.NOPE".into() }
        );
        assert_eq!(
            failure(
                "002003",
                "02000",
                "SQL compilation error:\nDatabase 'NOPE' does not exist or not authorized."
            ),
            WarehouseError::UnknownDatabase {
                name: "NOPE".into()
            }
        );
        assert_eq!(
            failure("000606", "57P03", "No active warehouse selected in the current session.  Select an active warehouse with the 'use warehouse' command."),
            WarehouseError::UnknownWarehouse { name: "WH".into() }
        );
        assert!(matches!(
            failure(
                "003001",
                "42501",
                "SQL access control error:\nInsufficient privileges to operate on schema 'S'"
            ),
            WarehouseError::MissingPrivilege { .. }
        ));
    }
}
