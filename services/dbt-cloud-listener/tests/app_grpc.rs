//! The listener as deployed: `App::build` on port 0, real NATS and SQLite, called
//! over gRPC. Hosts outside dbt's domains are refused with InvalidArgument, and every
//! call sees only its own workspace.

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
    let config = Config {
        database_url: testing::fresh_sqlite_url("dbtcloud"),
        grpc_listen: "127.0.0.1:0".into(),
        http_listen: "127.0.0.1:0".into(),
        credentials_url: authority.url.clone(),
        service_token: authority.service_token.clone().into(),
        tls: Default::default(),
    };
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

    let connection = client
        .create_connection(create_request("prod", "acme"))
        .await?
        .into_inner()
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?;
    assert_eq!(connection.access_url, "https://acme.getdbt.com");

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
    assert_eq!(listed, vec![connection.clone()]);
    let missing = client
        .get_connection(pb::GetConnectionRequest {
            workspace_id: "other".into(),
            connection_id: connection.id.clone(),
        })
        .await;
    assert_eq!(
        missing.err().map(|status| status.code()),
        Some(Code::NotFound)
    );
    let events = client
        .list_received_events(pb::ListReceivedEventsRequest {
            workspace_id: "ws".into(),
            connection_id: connection.id.clone(),
        })
        .await?
        .into_inner()
        .events;
    assert!(events.is_empty());
    client
        .delete_connection(pb::DeleteConnectionRequest {
            workspace_id: "ws".into(),
            connection_id: connection.id.clone(),
        })
        .await?;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server).await???;
    Ok(())
}
