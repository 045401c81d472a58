//! The listener as deployed: `App::build` on port 0, real NATS and SQLite, called
//! over gRPC. Hosts outside dbt's domains are refused with InvalidArgument before any
//! call to dbt Cloud, a token the credentials service cannot give is
//! FAILED_PRECONDITION (nothing stored), and every call sees only its own workspace.
//! (Connecting for real, against the dbt Cloud stand-in with the credentials service,
//! is `tests/tests/dbt_cloud_subscriptions.rs`.)

use backflow_dbt_cloud_listener::{App, Config};
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::dbtcloud::v1 as pb;
use pb::dbt_cloud_listener_service_client::DbtCloudListenerServiceClient;
use std::time::Duration;
use tonic::Code;

fn create_request(name: &str, access_url: &str) -> pb::CreateConnectionRequest {
    pb::CreateConnectionRequest {
        workspace_id: "ws".into(),
        name: name.into(),
        access_url: access_url.into(),
        account_id: 42,
        api_token_credential_id: "cred".into(),
    }
}

#[tokio::test]
async fn connections_over_grpc() -> anyhow::Result<()> {
    let authority = testing::TokenAuthority::start().await?;
    let config = Config::new(
        &testing::fresh_sqlite_url("dbtcloud"),
        &authority.url,
        &authority.service_token,
    );
    let app = App::build(config, &testing::fresh_nats("dbtapp")).await?;
    let addr = app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no grpc address"))?;
    let shutdown = Shutdown::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let token = authority.mint(None, backflow_platform::auth::Role::Admin);
    let mut client = DbtCloudListenerServiceClient::new(
        testing::authed_channel(&format!("http://{addr}"), &token).await?,
    );

    // The token authority answers tokens only: the api token cannot be read.
    let unreadable = client
        .create_connection(create_request("prod", "acme"))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("connection created without its token"))?;
    assert_eq!(unreadable.code(), Code::FailedPrecondition);
    assert!(
        unreadable
            .message()
            .contains("cannot read the dbt cloud api token"),
        "{}",
        unreadable.message()
    );

    let refused = client
        .create_connection(create_request("evil", "https://attacker.example/dbt.com"))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("foreign host accepted"))?;
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("access_url"),
        "{}",
        refused.message()
    );

    let listed = client
        .list_connections(pb::ListConnectionsRequest {
            workspace_id: "ws".into(),
        })
        .await?
        .into_inner()
        .connections;
    assert!(listed.is_empty(), "{listed:?}");
    for missing in [
        client
            .get_connection(pb::GetConnectionRequest {
                workspace_id: "other".into(),
                connection_id: "nope".into(),
            })
            .await
            .err(),
        client
            .test_connection(pb::TestConnectionRequest {
                workspace_id: "ws".into(),
                connection_id: "nope".into(),
            })
            .await
            .err(),
        client
            .list_jobs(pb::ListJobsRequest {
                workspace_id: "ws".into(),
                connection_id: "nope".into(),
                project_id: 0,
            })
            .await
            .err(),
    ] {
        assert_eq!(missing.map(|status| status.code()), Some(Code::NotFound));
    }
    let bad_limit = client
        .list_job_runs(pb::ListJobRunsRequest {
            workspace_id: "ws".into(),
            connection_id: "nope".into(),
            job_id: 1,
            limit: 101,
        })
        .await
        .err();
    assert_eq!(
        bad_limit.map(|status| status.code()),
        Some(Code::InvalidArgument)
    );
    let subscriptions = client
        .list_subscriptions(pb::ListSubscriptionsRequest {
            workspace_id: "ws".into(),
            connection_id: String::new(),
        })
        .await?
        .into_inner()
        .subscriptions;
    assert!(subscriptions.is_empty());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server).await???;
    Ok(())
}
