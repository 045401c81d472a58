//! Reads a catalog snapshot from git-sync by reference (gRPC stream of chunks): large
//! projects don't fit one bus message, so events carry only the reference.

use backflow_proto::catalog::v1 as pb;
use backflow_proto::gitsync::v1 as gitsync;
use gitsync::git_sync_service_client::GitSyncServiceClient;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("model_catalog.git_sync_url {url:?} is invalid: {message}")]
    Url { url: String, message: String },
    #[error("fetching snapshot {snapshot_ref}: {message}")]
    Call {
        snapshot_ref: String,
        message: String,
    },
    #[error("snapshot {snapshot_ref} ended early: {got} of {expected} models")]
    Incomplete {
        snapshot_ref: String,
        got: usize,
        expected: i64,
    },
}

#[derive(Clone, Debug)]
pub struct SnapshotFetcher {
    client: GitSyncServiceClient<Channel>,
    /// `Bearer <model_catalog.service_token>`: FetchSnapshot is for services only.
    bearer: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl SnapshotFetcher {
    /// Connects lazily: git-sync may start after the catalog.
    pub fn new(
        url: &str,
        service_token: &str,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<Self, FetchError> {
        let invalid = |message: String| FetchError::Url {
            url: url.to_string(),
            message,
        };
        let mut endpoint =
            Endpoint::from_shared(url.to_string()).map_err(|err| invalid(err.to_string()))?;
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|err| invalid(err.to_string()))?;
        }
        let bearer = if service_token.is_empty() {
            None
        } else {
            Some(format!("Bearer {service_token}").parse().map_err(|_| {
                invalid(
                    "model_catalog.service_token contains characters not allowed in a header"
                        .into(),
                )
            })?)
        };
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            client: GitSyncServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
            bearer,
        })
    }

    pub async fn fetch(
        &self,
        workspace_id: &str,
        snapshot_ref: &str,
    ) -> Result<Vec<pb::Model>, FetchError> {
        let failed = |message: String| FetchError::Call {
            snapshot_ref: snapshot_ref.to_string(),
            message,
        };
        let mut request = tonic::Request::new(gitsync::FetchSnapshotRequest {
            workspace_id: workspace_id.to_string(),
            snapshot_ref: snapshot_ref.to_string(),
        });
        backflow_platform::trace_grpc::inject(&mut request);
        if let Some(bearer) = &self.bearer {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        let mut stream = self
            .client
            .clone()
            .fetch_snapshot(request)
            .await
            .map_err(|status| failed(status.message().to_string()))?
            .into_inner();
        let mut models = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|status| failed(status.message().to_string()))?
        {
            models.extend(chunk.models);
            if chunk.last {
                if i64::try_from(models.len()).unwrap_or(i64::MAX) != chunk.total_models {
                    return Err(FetchError::Incomplete {
                        snapshot_ref: snapshot_ref.to_string(),
                        got: models.len(),
                        expected: chunk.total_models,
                    });
                }
                return Ok(models);
            }
        }
        Err(FetchError::Incomplete {
            snapshot_ref: snapshot_ref.to_string(),
            got: models.len(),
            expected: -1,
        })
    }
}
