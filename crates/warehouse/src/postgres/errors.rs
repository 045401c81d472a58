//! sqlx errors → [`WarehouseError`], by SQLSTATE where the server sent one, so a user
//! sees "authentication failed" rather than a driver's debug string.

use std::time::Duration;

use crate::WarehouseError;

/// What the caller knew when the error happened (a server-side cancel reads the same
/// as a timeout on Redshift, so whether we cancelled decides).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorContext<'a> {
    pub endpoint: &'a str,
    pub database: &'a str,
    pub statement_timeout: Duration,
    pub cancelled_by_us: bool,
}

pub(crate) fn map_error(e: sqlx::Error, ctx: ErrorContext<'_>) -> WarehouseError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string());
            map_sqlstate(code.as_deref(), db.message(), ctx)
        }
        sqlx::Error::Io(io) => WarehouseError::Unreachable {
            endpoint: ctx.endpoint.into(),
            detail: lower(&io.to_string()),
        },
        sqlx::Error::Tls(tls) => WarehouseError::Unreachable {
            endpoint: ctx.endpoint.into(),
            detail: format!("tls: {}", lower(&tls.to_string())),
        },
        sqlx::Error::Protocol(p) => WarehouseError::Protocol { detail: lower(&p) },
        other => WarehouseError::Protocol {
            detail: lower(&other.to_string()),
        },
    }
}

pub(crate) fn map_sqlstate(
    code: Option<&str>,
    message: &str,
    ctx: ErrorContext<'_>,
) -> WarehouseError {
    let message = message.to_string();
    match code {
        Some("28P01" | "28000") => WarehouseError::Authentication { detail: message },
        Some("3D000") => WarehouseError::UnknownDatabase {
            name: ctx.database.into(),
        },
        Some("42P01") => WarehouseError::UnknownRelation {
            name: relation_in(&message),
        },
        Some("42501") => WarehouseError::MissingPrivilege { detail: message },
        Some("25006") => WarehouseError::ReadOnlyViolation { detail: message },
        Some("0A000") if message.contains("data-modifying") => {
            WarehouseError::ReadOnlyViolation { detail: message }
        }
        Some("57014") if ctx.cancelled_by_us || message.contains("user request") => {
            if ctx.cancelled_by_us {
                WarehouseError::Cancelled
            } else {
                // a cancel we did not send (an operator's pg_cancel_backend)
                WarehouseError::QueryFailed {
                    code: Some("57014".into()),
                    message,
                }
            }
        }
        Some("57014") => WarehouseError::Timeout {
            after: ctx.statement_timeout,
        },
        Some("57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006" | "08001" | "08004") => {
            WarehouseError::Unreachable {
                endpoint: ctx.endpoint.into(),
                detail: message,
            }
        }
        code => WarehouseError::QueryFailed {
            code: code.map(str::to_string),
            message,
        },
    }
}

/// `relation "public.t" does not exist` → `public.t`.
fn relation_in(message: &str) -> String {
    message
        .split('"')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| message.to_string())
}

fn lower(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: ErrorContext<'static> = ErrorContext {
        endpoint: "db:5432",
        database: "analytics",
        statement_timeout: Duration::from_millis(300),
        cancelled_by_us: false,
    };

    #[test]
    fn sqlstates_map_to_classes() {
        let m = |code: &str, msg: &str| map_sqlstate(Some(code), msg, CTX);
        assert!(matches!(
            m("28P01", "password authentication failed"),
            WarehouseError::Authentication { .. }
        ));
        assert!(matches!(
            m("28000", "role \"x\" does not exist"),
            WarehouseError::Authentication { .. }
        ));
        assert_eq!(
            m("3D000", "x"),
            WarehouseError::UnknownDatabase {
                name: "analytics".into()
            }
        );
        assert_eq!(
            m("42P01", "relation \"public.t\" does not exist"),
            WarehouseError::UnknownRelation {
                name: "public.t".into()
            }
        );
        assert!(matches!(
            m("42501", "permission denied"),
            WarehouseError::MissingPrivilege { .. }
        ));
        assert!(matches!(
            m("25006", "cannot execute DELETE in a read-only transaction"),
            WarehouseError::ReadOnlyViolation { .. }
        ));
        assert_eq!(
            m("57014", "canceling statement due to statement timeout"),
            WarehouseError::Timeout {
                after: Duration::from_millis(300)
            }
        );
        assert!(
            matches!(m("22012", "division by zero"), WarehouseError::QueryFailed { code: Some(c), .. } if c == "22012")
        );
    }

    #[test]
    fn a_cancel_we_sent_is_cancelled_even_with_redshift_wording() {
        let ctx = ErrorContext {
            cancelled_by_us: true,
            ..CTX
        };
        assert_eq!(
            map_sqlstate(Some("57014"), "Query (150) canceled on user's request", ctx),
            WarehouseError::Cancelled
        );
        // without our cancel, Redshift's wording for a statement timeout is a timeout
        assert!(matches!(
            map_sqlstate(Some("57014"), "Query (150) canceled on user's request", CTX),
            WarehouseError::Timeout { .. }
        ));
    }
}
