//! The one place a service's request error becomes a `tonic::Status`.
//!
//! Each service keeps its own `thiserror` enum and says, per variant, which
//! [`RequestErrorKind`] it is; [`to_status`] turns that into the gRPC code. Client errors
//! carry the error's own message back to the caller; anything internal is logged here,
//! with the service's name, and the caller sees only "internal error", so storage and I/O
//! details never leave the process. A new variant must pick a kind, so no error reaches a
//! client unmapped.

use tonic::Status;

/// What kind of failure a request error is, as a caller should see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestErrorKind {
    /// The request itself is wrong (a missing field, invalid settings).
    InvalidArgument,
    /// A named resource does not exist (in the caller's workspace).
    NotFound,
    /// A resource with that name or key already exists.
    AlreadyExists,
    /// An optimistic-concurrency check failed; the caller should re-read and retry.
    Conflict,
    /// The request is valid but the system is not in a state to do it (e.g. an unreachable
    /// repository, a GitHub App that rejected the exchange).
    FailedPrecondition,
    /// The caller is not who it must be.
    Unauthenticated,
    /// A dependency is down for now; retrying later may work.
    Unavailable,
    /// A bug or an infrastructure failure; details stay in the logs.
    Internal,
}

/// A service's request error: every variant names its kind.
pub trait RequestError: std::error::Error {
    /// The service's name, for the log line of internal errors.
    const SERVICE: &'static str;

    fn kind(&self) -> RequestErrorKind;
}

/// Maps a request error to the status its caller gets.
pub fn to_status<E: RequestError>(error: &E) -> Status {
    let message = error.to_string();
    match error.kind() {
        RequestErrorKind::InvalidArgument => Status::invalid_argument(message),
        RequestErrorKind::NotFound => Status::not_found(message),
        RequestErrorKind::AlreadyExists => Status::already_exists(message),
        RequestErrorKind::Conflict => Status::aborted(message),
        RequestErrorKind::FailedPrecondition => Status::failed_precondition(message),
        RequestErrorKind::Unauthenticated => Status::unauthenticated(message),
        RequestErrorKind::Unavailable => {
            tracing::warn!(service = E::SERVICE, error = %message, "request failed on a dependency");
            Status::unavailable(message)
        }
        RequestErrorKind::Internal => {
            tracing::error!(service = E::SERVICE, error = %message, "request failed");
            Status::internal("internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Sample {
        #[error("connection c1 not found")]
        Missing,
        #[error("storage: disk /var/lib/x is full")]
        Storage,
    }

    impl RequestError for Sample {
        const SERVICE: &'static str = "sample";
        fn kind(&self) -> RequestErrorKind {
            match self {
                Sample::Missing => RequestErrorKind::NotFound,
                Sample::Storage => RequestErrorKind::Internal,
            }
        }
    }

    #[test]
    fn client_errors_keep_their_message_and_internal_ones_hide_it() {
        let missing = to_status(&Sample::Missing);
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert_eq!(missing.message(), "connection c1 not found");
        let storage = to_status(&Sample::Storage);
        assert_eq!(storage.code(), tonic::Code::Internal);
        assert_eq!(storage.message(), "internal error");
    }
}
