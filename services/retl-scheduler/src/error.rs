//! Errors of the Reverse ETL scheduler; mapped to gRPC status codes once, in `grpc.rs`.

#[derive(Debug, thiserror::Error)]
pub enum RetlError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("retl_scheduler.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("sync {0} not found")]
    NotFound(String),
    #[error("a sync named {0:?} already exists in this workspace")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}
