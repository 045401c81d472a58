//! Helpers the `backflow` binary's integration tests share (each test uses some).

#![allow(dead_code)]

pub mod cli;
pub mod http;
pub mod retl;

use std::collections::BTreeSet;

/// The service names gRPC reflection lists on `addr` (what `grpcurl list` shows).
pub async fn reflected_services(addr: &str) -> anyhow::Result<BTreeSet<String>> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let mut names = BTreeSet::new();
    while let Some(response) = responses.message().await? {
        if let Some(MessageResponse::ListServicesResponse(list)) = response.message_response {
            names.extend(list.service.into_iter().map(|service| service.name));
        }
    }
    Ok(names)
}
