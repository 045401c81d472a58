//! The executor's (and the scheduler's) door to the model catalog: `ResolveRetlModelRun`
//! with this service's token, giving the Reverse ETL model, its source (settings,
//! credential id, backflow schema), the one unwrapped statement it runs and its columns.
//! Connects lazily (the catalog may start later); errors say whether a retry may help.

use crate::executor::error::ExecError;
use backflow_proto::catalog::v1 as pb;
use pb::model_catalog_service_client::ModelCatalogServiceClient;
use secrecy::{ExposeSecret, SecretString};
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, Debug)]
pub struct CatalogClient {
    client: ModelCatalogServiceClient<Channel>,
    bearer: SecretString,
}

impl CatalogClient {
    pub fn new(
        url: &str,
        service_token: &str,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<Self, ExecError> {
        let invalid = |message: String| ExecError::Catalog {
            message: format!("retl_scheduler.catalog_url {url:?} is invalid: {message}"),
            transient: false,
        };
        let mut endpoint =
            Endpoint::from_shared(url.to_string()).map_err(|err| invalid(err.to_string()))?;
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|err| invalid(err.to_string()))?;
        }
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(60))
            .connect_lazy();
        Ok(Self {
            client: ModelCatalogServiceClient::new(channel),
            bearer: SecretString::from(format!("Bearer {service_token}")),
        })
    }

    /// What a run of Reverse ETL model `retl_model_id` extracts.
    pub async fn resolve_run(
        &self,
        workspace_id: &str,
        retl_model_id: &str,
    ) -> Result<pb::ResolveRetlModelRunResponse, ExecError> {
        self.call(workspace_id, retl_model_id)
            .await
            .map_err(|status| status_error(retl_model_id, &status))
    }

    async fn call(
        &self,
        workspace_id: &str,
        retl_model_id: &str,
    ) -> Result<pb::ResolveRetlModelRunResponse, tonic::Status> {
        let mut request = tonic::Request::new(pb::ResolveRetlModelRunRequest {
            workspace_id: workspace_id.to_string(),
            retl_model_id: retl_model_id.to_string(),
        });
        let value = self.bearer.expose_secret().parse().map_err(|_| {
            tonic::Status::invalid_argument(
                "retl_scheduler.service_token contains characters not allowed in a header",
            )
        })?;
        request.metadata_mut().insert("authorization", value);
        backflow_platform::trace_grpc::inject(&mut request);
        let response = self.client.clone().resolve_retl_model_run(request).await?;
        Ok(response.into_inner())
    }
}

/// The scheduler checks a sync's mapping against the model's shape through the same call.
#[async_trait::async_trait]
impl crate::sync::RetlModelLookup for CatalogClient {
    async fn resolve(
        &self,
        workspace_id: &str,
        retl_model_id: &str,
    ) -> Result<crate::sync::ModelShape, crate::error::RetlError> {
        match self.call(workspace_id, retl_model_id).await {
            Ok(resolved) => {
                let model = resolved.model.unwrap_or_default();
                Ok(crate::sync::ModelShape {
                    warehouse_diff: resolved.source.as_ref().map(|source| {
                        crate::warehouse_diff::strategy::warehouse_side_possible(
                            source.kind,
                            &source.backflow_schema,
                        )
                    }),
                    primary_key: model.primary_key,
                    columns: resolved.columns.into_iter().map(|c| c.name).collect(),
                    broken_reason: None,
                    unique_id: model.model_unique_id,
                    test_unique_ids: resolved.test_unique_ids,
                })
            }
            Err(status) => match status.code() {
                tonic::Code::NotFound => Err(crate::sync::model::model_not_found(retl_model_id)),
                tonic::Code::FailedPrecondition => Ok(crate::sync::ModelShape {
                    broken_reason: Some(status.message().to_string()),
                    ..Default::default()
                }),
                tonic::Code::InvalidArgument => Err(crate::error::RetlError::InvalidArgument(
                    status.message().to_string(),
                )),
                _ => Err(crate::error::RetlError::Unavailable(format!(
                    "the catalog could not check reverse etl model {retl_model_id}: {}",
                    status.message()
                ))),
            },
        }
    }
}

fn status_error(retl_model_id: &str, status: &tonic::Status) -> ExecError {
    ExecError::Catalog {
        message: format!(
            "reverse etl model {retl_model_id}: {}",
            if status.code() == tonic::Code::FailedPrecondition
                || status.code() == tonic::Code::NotFound
            {
                status.message().to_string()
            } else {
                format!("{:?}: {}", status.code(), status.message()).to_lowercase()
            }
        ),
        transient: matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::ResourceExhausted
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_models_say_why_and_outages_are_transient() {
        let broken = status_error(
            "m1",
            &tonic::Status::failed_precondition("model x is broken at commit c2: removed"),
        );
        assert!(
            matches!(&broken, ExecError::Catalog { transient: false, message } if message.ends_with("broken at commit c2: removed"))
        );
        let down = status_error("m1", &tonic::Status::unavailable("connection refused"));
        assert!(matches!(
            down,
            ExecError::Catalog {
                transient: true,
                ..
            }
        ));
    }
}
