//! What a failed check of a dbt Cloud token and account means for the user, decided in
//! one place: each [`ApiError`] of each step of the check becomes a
//! [`ConnectionProblem`] and one lowercase line that names what is wrong and what to do.
//! The gRPC edge turns a [`CheckFailure`] into FAILED_PRECONDITION (the request is fine;
//! the token, account or host is not), and `TestConnection` stores it as `last_test`.
//!
//! The check has three steps, each an endpoint Backflow needs later: the account
//! (`GET /api/v2/accounts/{id}/`), its jobs (one page) and its webhook subscriptions.
//! dbt Cloud answers 404 rather than 403 when a token lacks the permission to see
//! something, so a 404 is reported as a missing permission, naming the step. Pure.

use crate::api::ApiError;
use backflow_proto::dbtcloud::v1::ConnectionProblem;

/// Which endpoint of the check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Account,
    Jobs,
    Webhooks,
}

impl Step {
    fn what(self, account_id: i64) -> String {
        match self {
            Step::Account => format!("read account {account_id}"),
            Step::Jobs => format!("list the jobs of account {account_id}"),
            Step::Webhooks => format!("manage the webhook subscriptions of account {account_id}"),
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Step::Account => "check the account id (the number after /deploy/ in dbt Cloud's urls) and that the token belongs to that account",
            Step::Jobs => "give the service token a permission set that can read jobs (job viewer, job admin or account admin)",
            Step::Webhooks => "give the service token a permission set that can manage webhooks (job admin or account admin)",
        }
    }
}

/// A failed check: the problem kind and the line shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CheckFailure {
    pub problem: ConnectionProblem,
    pub message: String,
}

/// The problem and message for `error` at `step` against `base_url` / `account_id`.
pub fn failure_of(step: Step, error: &ApiError, base_url: &str, account_id: i64) -> CheckFailure {
    let what = step.what(account_id);
    let (problem, message) = match error {
        ApiError::Unauthorized { message } => (
            ConnectionProblem::Unauthenticated,
            format!(
                "dbt cloud at {base_url} refused the api token (401: {}): check the token, or create a new service token in dbt cloud's account settings",
                detail(message)
            ),
        ),
        ApiError::Forbidden { message } => (
            ConnectionProblem::Forbidden,
            format!(
                "the api token may not {what} (403: {}): {}",
                detail(message),
                step.permission()
            ),
        ),
        ApiError::NotFound { message, .. } => (
            ConnectionProblem::MissingPermission,
            format!(
                "dbt cloud at {base_url} answered 404 when asked to {what} ({}): the token lacks a permission or the account id is wrong; {}",
                detail(message),
                step.permission()
            ),
        ),
        ApiError::Unreachable { detail: why, .. } => (
            ConnectionProblem::Unreachable,
            format!(
                "cannot reach dbt cloud at {base_url}: {why}; check the access url (custom subdomain or full host) and that backflow can reach it"
            ),
        ),
        ApiError::RateLimited { attempts } => (
            ConnectionProblem::RateLimited,
            format!(
                "dbt cloud at {base_url} kept rate limiting (429) after {attempts} attempts to {what}; try again in a minute"
            ),
        ),
        ApiError::Status {
            status, message, ..
        } => (
            ConnectionProblem::UnexpectedResponse,
            format!(
                "dbt cloud at {base_url} answered {status} when asked to {what} ({}); try again later, or check dbt cloud's status page",
                detail(message)
            ),
        ),
        ApiError::Protocol { detail: why, .. } => (
            ConnectionProblem::UnexpectedResponse,
            format!(
                "{base_url} did not answer like dbt cloud's api when asked to {what} ({why}); check the access url"
            ),
        ),
    };
    CheckFailure { problem, message }
}

/// dbt's message, or a placeholder when it sent none.
fn detail(message: &str) -> String {
    let message = message.trim();
    if message.is_empty() {
        "no message".into()
    } else {
        message.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://acme.getdbt.com";

    fn of(step: Step, error: ApiError) -> CheckFailure {
        failure_of(step, &error, BASE, 7)
    }

    #[test]
    fn each_status_becomes_its_problem() {
        let unauthorized = of(
            Step::Account,
            ApiError::Unauthorized {
                message: "Invalid token.".into(),
            },
        );
        assert_eq!(unauthorized.problem, ConnectionProblem::Unauthenticated);
        assert!(unauthorized.message.contains("401: Invalid token."));
        let forbidden = of(
            Step::Webhooks,
            ApiError::Forbidden {
                message: String::new(),
            },
        );
        assert_eq!(forbidden.problem, ConnectionProblem::Forbidden);
        assert!(forbidden
            .message
            .contains("manage the webhook subscriptions of account 7"));
        assert!(forbidden.message.contains("job admin"));
        let missing = of(
            Step::Jobs,
            ApiError::NotFound {
                path: "/api/v2/accounts/7/jobs/".into(),
                message: "Not found.".into(),
            },
        );
        assert_eq!(missing.problem, ConnectionProblem::MissingPermission);
        assert!(missing.message.contains("list the jobs of account 7"));
        assert!(missing.message.contains("lacks a permission"));
        let unreachable = of(
            Step::Account,
            ApiError::Unreachable {
                base_url: BASE.into(),
                detail: "dns error".into(),
            },
        );
        assert_eq!(unreachable.problem, ConnectionProblem::Unreachable);
        assert!(unreachable
            .message
            .starts_with("cannot reach dbt cloud at https://acme.getdbt.com: dns error"));
        assert_eq!(
            of(Step::Account, ApiError::RateLimited { attempts: 4 }).problem,
            ConnectionProblem::RateLimited
        );
        for error in [
            ApiError::Status {
                status: 502,
                path: "/".into(),
                message: String::new(),
            },
            ApiError::Protocol {
                path: "/".into(),
                detail: "expected value".into(),
            },
        ] {
            assert_eq!(
                of(Step::Account, error).problem,
                ConnectionProblem::UnexpectedResponse
            );
        }
    }

    #[test]
    fn messages_are_one_line_and_lowercase_at_the_start() {
        let failure = of(
            Step::Account,
            ApiError::Unauthorized {
                message: "x".repeat(500),
            },
        );
        assert!(!failure.message.contains('\n'));
        assert!(failure.message.len() < 500);
        assert!(failure.message.starts_with("dbt cloud"));
    }
}
